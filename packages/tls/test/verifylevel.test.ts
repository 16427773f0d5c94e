import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { createTestPki, run, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServerTls, type StunnelVerifyLevel, stunnelVerifyPolicy } from '../src/index.js';

const tmp = tempDir();
let pki: TestPki;
beforeAll(() => {
  pki = createTestPki(join(tmp.path, 'pki'));
}, 30_000);
afterAll(() => tmp.cleanup());

/** One handshake with openssl s_client presenting `cert` (or none); returns the policy's verdict. */
async function verdict(level: StunnelVerifyLevel, local: string[], cert?: [string, string]) {
  const tls = await loadServerTls({
    CERTFILE: pki.serverChain,
    KEYFILE: pki.serverKey,
    CAFILE: pki.caBundle,
  });
  const policy = stunnelVerifyPolicy(
    level,
    local.map((f) => readFileSync(f, 'utf8')),
  );
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const result = new Promise<{ ok: boolean; reason?: string }>((resolve) => {
    server.once('connection', (raw) => {
      const s = new TLSSocket(raw, { isServer: true, ...tls.serverOptions, requestCert: policy.requestCert });
      s.on('error', () => undefined);
      s.on('secure', () => {
        resolve(policy.check(s));
        s.end();
      });
    });
  });
  const args = ['s_client', '-connect', `127.0.0.1:${(server.address() as AddressInfo).port}`, '-ign_eof'];
  if (cert) args.push('-cert', cert[0], '-key', cert[1]);
  await run('openssl', args, { input: '', timeoutMs: 10_000 });
  server.close();
  return result;
}

describe.runIf(toolAvailable('openssl'))("stunnel's verify levels", () => {
  const client = () => [pki.clientCert, pki.clientKey] as [string, string];
  const self = () => [pki.selfSignedCert, pki.selfSignedKey] as [string, string];

  it('default and 0 accept anything; 1 accepts no certificate but not a bad one', async () => {
    expect(await verdict(undefined, [], self())).toEqual({ ok: true });
    expect(await verdict(0, [], self())).toEqual({ ok: true });
    expect(await verdict(1, [])).toEqual({ ok: true });
    expect((await verdict(1, [], self())).ok).toBe(false);
    expect(await verdict(1, [], client())).toEqual({ ok: true });
  });

  it('2 requires a certificate that verifies', async () => {
    expect(await verdict(2, [])).toEqual({ ok: false, reason: 'No peer certificate received' });
    expect(await verdict(2, [], client())).toEqual({ ok: true });
    expect((await verdict(2, [], self())).reason).toMatch(/^Certificate verification failed: /);
  });

  it('3 also requires a locally installed certificate; 4 only that', async () => {
    expect(await verdict(3, [pki.directClientCert], client())).toEqual({
      ok: false,
      reason: 'Certificate not found in local repository',
    });
    expect(await verdict(3, [pki.clientCert], client())).toEqual({ ok: true });
    expect((await verdict(3, [pki.selfSignedCert], self())).ok).toBe(false);
    expect(await verdict(4, [pki.selfSignedCert], self())).toEqual({ ok: true });
    expect((await verdict(4, [pki.clientCert], self())).ok).toBe(false);
  });

  it('rejects a level outside 0 to 4', () => {
    expect(() => stunnelVerifyPolicy(5 as StunnelVerifyLevel)).toThrow(RangeError);
  });
});

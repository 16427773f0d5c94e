import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { connect, TLSSocket } from 'node:tls';
import { createTestPki, freePort, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientTlsOptions, loadClientTls, loadServerTls, TlsErrorCodes } from '../src/index.js';

const tmp = tempDir();
let pki: TestPki;
beforeAll(() => {
  pki = createTestPki(join(tmp.path, 'pki'));
}, 30_000);
afterAll(() => tmp.cleanup());

/** Connect to port with loadClientTls(opts); returns the client's verdict and what the server saw. */
async function handshake(port: number, opts: ClientTlsOptions) {
  const client = await loadClientTls(opts);
  const s = connect({ host: '127.0.0.1', port, ...client.connectOptions });
  await once(s, 'secureConnect');
  const verdict = client.checkServer(s);
  // A graceful end: with TLS 1.3 the client's Finished must reach the server.
  s.on('error', () => undefined);
  s.end();
  await once(s, 'close');
  return verdict;
}

/** Wait (2 s at most) until the server side has seen what the test expects. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('loadClientTls against our server', () => {
  it('verifies chain and name, presents a client certificate, applies stunnel levels', async () => {
    const tls = await loadServerTls(
      { CERTFILE: pki.serverChain, KEYFILE: pki.serverKey, CAFILE: pki.caBundle },
      { clientCert: 'mail' },
    );
    const peers: Array<{ ok: boolean; reason?: string }> = [];
    const server = createServer((raw) => {
      const s = new TLSSocket(raw, { isServer: true, ...tls.serverOptions });
      s.on('error', () => undefined);
      s.on('secure', () => peers.push(tls.checkPeer(s)));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    try {
      const me = { certFile: pki.clientCert, keyFile: pki.clientKey };
      expect(await handshake(port, { caFile: pki.rootCert, servername: 'localhost', ...me })).toEqual({
        ok: true,
      });
      await until(() => peers.length === 1);
      expect(peers.at(-1)).toEqual({ ok: true });
      expect(await handshake(port, { caFile: pki.rootCert, servername: 'other.test' })).toEqual({
        ok: false,
        reason: 'server certificate does not match other.test',
      });
      await until(() => peers.length === 2);
      expect(peers.at(-1)).toEqual({ ok: false, reason: 'no client certificate' });
      expect((await handshake(port, { caFile: pki.selfSignedCert, servername: 'localhost' })).reason).toMatch(
        /^server certificate not trusted: /,
      );
      expect(await handshake(port, { caFile: pki.selfSignedCert, verify: 'none' })).toEqual({ ok: true });
      expect(
        await handshake(port, { caFile: pki.rootCert, verify: 'chain', servername: 'other.test' }),
      ).toEqual({ ok: true });
      expect(
        await handshake(port, { caFile: pki.rootCert, verify: 3, localCerts: [pki.serverCert] }),
      ).toEqual({ ok: true });
      expect(
        (await handshake(port, { caFile: pki.rootCert, verify: 3, localCerts: [pki.otherCert] })).ok,
      ).toBe(false);
    } finally {
      server.close();
    }
  });
});

describe.runIf(toolAvailable('openssl'))('loadClientTls against openssl s_server', () => {
  it('verifies a second implementation’s server', async () => {
    const port = await freePort();
    const srv = spawn(
      'openssl',
      [
        's_server',
        '-quiet',
        '-accept',
        `127.0.0.1:${port}`,
        '-cert',
        pki.serverCert,
        '-key',
        pki.serverKey,
        '-cert_chain',
        pki.interCert,
      ],
      { stdio: ['pipe', 'ignore', 'ignore'] },
    );
    try {
      for (let i = 0; i < 100; i++) {
        const up = await new Promise<boolean>((r) => {
          const c = createConnection({ port, host: '127.0.0.1' }, () => {
            c.destroy();
            r(true);
          });
          c.on('error', () => r(false));
        });
        if (up) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await handshake(port, { caFile: pki.rootCert, servername: 'localhost' })).toEqual({ ok: true });
    } finally {
      srv.kill('SIGKILL');
    }
  });
});

describe('bad client configuration', () => {
  it('names the problem before connecting', async () => {
    await expect(
      loadClientTls({ caFile: join(tmp.path, 'none.pem'), servername: 'x' }),
    ).rejects.toMatchObject({ code: TlsErrorCodes.FILE });
    await expect(loadClientTls({ caFile: pki.rootCert })).rejects.toMatchObject({
      code: TlsErrorCodes.BAD_OPTION,
    });
    await expect(
      loadClientTls({ servername: 'x', certFile: pki.clientCert, keyFile: pki.mismatchedKey }),
    ).rejects.toMatchObject({ code: TlsErrorCodes.KEY_MISMATCH });
    await expect(loadClientTls({ servername: 'x', crlFiles: [pki.rootCert] })).rejects.toMatchObject({
      code: TlsErrorCodes.BAD_PEM,
    });
  });
});

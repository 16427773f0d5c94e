// ciphersuites (the TLS 1.3 list, OpenSSL's -ciphersuites) reaches OpenSSL: node:tls has no option of
// that name and ignored it silently, so every server and client negotiated OpenSSL's default suite.
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { type ConnectionOptions, connect, TLSSocket } from 'node:tls';
import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadClientTls, loadServerTls, TlsErrorCodes } from '../src/index.js';

const tmp = tempDir();
let pki: TestPki;
const servers: Server[] = [];
beforeAll(() => {
  pki = createTestPki(join(tmp.path, 'pki'));
}, 30_000);
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});
afterAll(() => tmp.cleanup());

/** A TLS server built by loadServerTls with these suites (and CIPHERS); resolves with its port. */
async function serve(ciphersuites: string | undefined, CIPHERS?: string): Promise<number> {
  const tls = await loadServerTls(
    { CERTFILE: pki.serverChain, KEYFILE: pki.serverKey, ...(CIPHERS ? { CIPHERS } : {}) },
    ciphersuites ? { ciphersuites } : {},
  );
  const server = createServer((raw) => {
    const s = new TLSSocket(raw, { isServer: true, ...tls.serverOptions });
    s.on('error', () => undefined);
    s.on('secure', () => s.end());
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** The suite a client with `options` negotiates with the server on `port`, or the error. */
function negotiate(port: number, options: ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve) => {
    const c = connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...options });
    c.on('secureConnect', () => {
      resolve(`${c.getProtocol()} ${c.getCipher().standardName}`);
      c.destroy();
    });
    c.on('error', (e) => resolve(`error ${e.message}`));
  });
}

describe('ciphersuites', () => {
  it('server side: the TLS 1.3 suite is the one configured, CIPHERS still governs TLS 1.2', async () => {
    const port = await serve('TLS_CHACHA20_POLY1305_SHA256', 'ECDHE-RSA-AES128-GCM-SHA256');
    expect(await negotiate(port)).toBe('TLSv1.3 TLS_CHACHA20_POLY1305_SHA256');
    expect(await negotiate(port, { maxVersion: 'TLSv1.2' })).toBe(
      'TLSv1.2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
    );
    // Without it, OpenSSL's default order (AES-256-GCM first).
    expect(await negotiate(await serve(undefined))).toBe('TLSv1.3 TLS_AES_256_GCM_SHA384');
  });

  it('client side: the suites offered are the ones configured', async () => {
    const port = await serve(undefined);
    const tls = await loadClientTls({ verify: 'none', ciphersuites: 'TLS_AES_128_GCM_SHA256' });
    expect(await negotiate(port, tls.connectOptions)).toBe('TLSv1.3 TLS_AES_128_GCM_SHA256');
  });

  it('a name that is no TLS 1.3 suite, or one OpenSSL does not know, is refused at load', async () => {
    await expect(serve('ECDHE-RSA-AES128-GCM-SHA256')).rejects.toMatchObject({
      code: TlsErrorCodes.BAD_OPTION,
      message: expect.stringMatching(/not a TLS 1\.3 cipher suite/),
    });
    await expect(loadClientTls({ verify: 'none', ciphersuites: 'TLS_BOGUS' })).rejects.toThrow(/cipher/i);
  });
});

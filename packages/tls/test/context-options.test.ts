// loadServerTls/loadClientTls's context options: ticket keys given as bytes (two servers with the
// same keys resume each other's sessions), ecdhCurve (the groups offered), secureOptions (OpenSSL
// option bits), sessionIdContext, each with its bad input, over real TLS sockets on loopback.

import { constants } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { type ConnectionOptions, connect, TLSSocket, type TlsOptions } from 'node:tls';
import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadClientTls, loadServerTls, type ServerTlsOptions, TlsErrorCodes } from '../src/index.js';

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

/** A TLS server on 127.0.0.1 built by loadServerTls(opts), answering "ok" to each client. */
async function serve(opts: ServerTlsOptions): Promise<number> {
  const tls = await loadServerTls({ CERTFILE: pki.serverChain, KEYFILE: pki.serverKey }, opts);
  return serveWith(tls.serverOptions);
}

/** A TLS server on 127.0.0.1 with these socket options, answering "ok" to each client. */
async function serveWith(serverOptions: TlsOptions): Promise<number> {
  const server = createServer((raw) => {
    const s = new TLSSocket(raw, { isServer: true, ...serverOptions });
    s.on('error', () => undefined);
    s.on('secure', () => s.end('ok'));
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

interface Outcome {
  reused: boolean;
  /** The session to resume with later (TLS 1.3: the one from the ticket, once it arrived). */
  session: Buffer | undefined;
  ticket: boolean;
}

/** One connection: read until the server's end, report whether it resumed and what it kept. */
function talk(port: number, options: ConnectionOptions = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    const c = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    c.on('session', (s: Buffer) => {
      session = s;
    });
    c.on('error', reject);
    c.resume();
    c.on('end', () => {
      resolve({
        reused: c.isSessionReused(),
        session: session ?? c.getSession(),
        ticket: c.getTLSTicket() !== undefined,
      });
      c.end();
    });
  });
}

const keysA = Buffer.alloc(48, 1);
const keysB = Buffer.alloc(48, 2);

describe('ticketKeys', () => {
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    it(`two servers with the same keys resume each other's ${version} sessions; other keys do not`, async () => {
      const first = await serve({ ticketKeys: keysA });
      const same = await serve({ ticketKeys: keysA });
      const other = await serve({ ticketKeys: keysB });
      const opts = { minVersion: version, maxVersion: version } as const;
      const a = await talk(first, opts);
      expect(a.reused).toBe(false);
      expect(a.session).toBeDefined();
      expect((await talk(same, { ...opts, session: a.session! })).reused).toBe(true);
      expect((await talk(other, { ...opts, session: a.session! })).reused).toBe(false);
    });
  }

  it('refuses keys that are not 48 bytes', async () => {
    await expect(
      loadServerTls({ CERTFILE: pki.serverChain, KEYFILE: pki.serverKey }, { ticketKeys: Buffer.alloc(47) }),
    ).rejects.toMatchObject({ code: TlsErrorCodes.BAD_OPTION, message: /exactly 48 bytes, not 47/ });
  });
});

describe('sessionIdContext', () => {
  it('with client certificates requested, sessions resume only with a context set, and only the same one', async () => {
    const env = { CERTFILE: pki.serverChain, KEYFILE: pki.serverKey, CAFILE: pki.caBundle };
    const serveAsking = async (opts: ServerTlsOptions) => {
      const tls = await loadServerTls(env, { clientCert: 'mail', ticketKeys: keysA, ...opts });
      expect(tls.serverOptions.requestCert).toBe(true);
      return serveWith(tls.serverOptions);
    };
    const withCtx = await serveAsking({ sessionIdContext: 'one' });
    const sameCtx = await serveAsking({ sessionIdContext: 'one' });
    const otherCtx = await serveAsking({ sessionIdContext: 'two' });
    const noCtx = await serveAsking({});
    const v12 = { maxVersion: 'TLSv1.2' } as const;
    const a = await talk(withCtx, v12);
    expect((await talk(sameCtx, { ...v12, session: a.session! })).reused).toBe(true);
    expect((await talk(otherCtx, { ...v12, session: a.session! })).reused).toBe(false);
    // Without one OpenSSL ends the handshake with an alert (session id context uninitialized).
    const b = await talk(noCtx, v12);
    await expect(talk(noCtx, { ...v12, session: b.session! })).rejects.toThrow(/alert|internal error/);
  });
});

describe('ecdhCurve', () => {
  it('a client offering only a group outside the list fails; one inside works', async () => {
    const port = await serve({ ecdhCurve: 'P-384:P-521' });
    await expect(talk(port, { ecdhCurve: 'X25519' })).rejects.toThrow(/handshake failure|alert/);
    expect((await talk(port, { ecdhCurve: 'P-384' })).reused).toBe(false);
  });

  it('refuses a group OpenSSL does not know, server and client side', async () => {
    await expect(
      loadServerTls({ CERTFILE: pki.serverChain, KEYFILE: pki.serverKey }, { ecdhCurve: 'P-256:bogus' }),
    ).rejects.toMatchObject({ code: TlsErrorCodes.BAD_OPTION, message: /ECDH curve/ });
    await expect(loadClientTls({ verify: 'none', ecdhCurve: 'bogus' })).rejects.toMatchObject({
      code: TlsErrorCodes.BAD_OPTION,
    });
  });

  it('the client side offers only its list', async () => {
    const port = await serve({ ecdhCurve: 'P-384' });
    const onlyX = await loadClientTls({ verify: 'none', ecdhCurve: 'X25519' });
    const p384 = await loadClientTls({ verify: 'none', ecdhCurve: 'P-384' });
    await expect(talk(port, onlyX.connectOptions)).rejects.toThrow(/handshake failure|alert/);
    expect((await talk(port, p384.connectOptions)).reused).toBe(false);
  });
});

describe('secureOptions', () => {
  it('NO_TICKET: a TLS 1.2 client gets no ticket (and without it, one does)', async () => {
    const plain = await serve({});
    const noTicket = await serve({ secureOptions: constants.SSL_OP_NO_TICKET });
    const v12 = { maxVersion: 'TLSv1.2' } as const;
    expect((await talk(plain, v12)).ticket).toBe(true);
    expect((await talk(noTicket, v12)).ticket).toBe(false);
  });

  it('NO_TLSv1_3 and bit 31 (SSL_OP_ALL) together: TLS 1.2 is negotiated', async () => {
    const port = await serve({ secureOptions: constants.SSL_OP_NO_TLSv1_3 + constants.SSL_OP_ALL });
    const c = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    await once(c, 'secureConnect');
    expect(c.getProtocol()).toBe('TLSv1.2');
    c.destroy();
  });
});

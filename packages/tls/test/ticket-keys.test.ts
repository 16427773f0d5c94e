// Ticket key rotation (ServerTls.setTicketKeys, readTicketKeysFile) over real TLS sockets on
// loopback: after a rotation new tickets are sealed under the new key, the previous key still
// opens tickets (Node.js's ticket key callback), the one before gets a full handshake; bad keys
// and bad files are refused with their codes.
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { type ConnectionOptions, connect, TLSSocket } from 'node:tls';
import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadServerTls, readTicketKeysFile, type ServerTls, TlsErrorCodes } from '../src/index.js';

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

const keys = (n: number) => Buffer.alloc(48, n);

/** A TLS server on 127.0.0.1 answering "ok"; its port and its ServerTls (to rotate). */
async function serve(ticketKeys?: Buffer): Promise<{ port: number; tls: ServerTls }> {
  const tls = await loadServerTls(
    { CERTFILE: pki.serverChain, KEYFILE: pki.serverKey },
    ticketKeys ? { ticketKeys } : {},
  );
  const server = createServer((raw) => {
    const s = new TLSSocket(raw, { isServer: true, ...tls.serverOptions });
    s.on('error', () => undefined);
    s.on('secure', () => s.end('ok'));
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, tls };
}

/** One connection read to the server's end: whether it resumed, and the session to offer later. */
function talk(port: number, options: ConnectionOptions): Promise<{ reused: boolean; session?: Buffer }> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    let data = '';
    const c = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    c.on('session', (s: Buffer) => {
      session = s;
    });
    c.on('error', reject);
    c.on('data', (b: Buffer) => {
      data += b.toString();
    });
    c.on('end', () => {
      // Resumed or not, the connection itself went through.
      if (data !== 'ok') reject(new Error(`no greeting, got ${JSON.stringify(data)}`));
      resolve({ reused: c.isSessionReused(), session: session ?? c.getSession() });
      c.end();
    });
  });
}

describe('setTicketKeys', () => {
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    it(`${version}: the new key seals, the previous one still opens, the one before does not`, async () => {
      const opts = { minVersion: version, maxVersion: version } as const;
      const server = await serve(keys(1));
      const withSecond = await serve(keys(2));
      expect(server.tls.keepsPreviousTicketKey).toBe(true);
      const before = (await talk(server.port, opts)).session!;
      expect((await talk(withSecond.port, { ...opts, session: before })).reused).toBe(false);

      server.tls.setTicketKeys(keys(2));
      const after = await talk(server.port, opts);
      expect(after.reused).toBe(false);
      expect((await talk(withSecond.port, { ...opts, session: after.session! })).reused).toBe(true);
      expect((await talk(server.port, { ...opts, session: before })).reused).toBe(true);

      server.tls.setTicketKeys(keys(3));
      expect((await talk(server.port, { ...opts, session: before })).reused).toBe(false);
    });
  }

  it('installs keys on a server loaded without any', async () => {
    const server = await serve();
    const withKeys = await serve(keys(4));
    const opts = { maxVersion: 'TLSv1.3' } as const;
    const random = (await talk(server.port, opts)).session!;
    expect((await talk(withKeys.port, { ...opts, session: random })).reused).toBe(false);
    server.tls.setTicketKeys(keys(4));
    const shared = (await talk(server.port, opts)).session!;
    expect((await talk(withKeys.port, { ...opts, session: shared })).reused).toBe(true);
  });

  it('refuses keys that are not 48 bytes and keeps the current ones', async () => {
    const server = await serve(keys(5));
    const same = await serve(keys(5));
    expect(() => server.tls.setTicketKeys(Buffer.alloc(47))).toThrow(
      expect.objectContaining({ code: TlsErrorCodes.BAD_OPTION, message: expect.stringMatching(/not 47/) }),
    );
    const s = (await talk(server.port, {})).session!;
    expect((await talk(same.port, { session: s })).reused).toBe(true);
  });
});

describe('readTicketKeysFile', () => {
  it('reads 48 bytes; a missing file is temporary, a wrong size permanent, both naming the file', async () => {
    const good = join(tmp.path, 'good.keys');
    writeFileSync(good, keys(6));
    expect((await readTicketKeysFile(good)).equals(keys(6))).toBe(true);
    const missing = join(tmp.path, 'missing.keys');
    await expect(readTicketKeysFile(missing, 'TLSTICKETKEYS')).rejects.toMatchObject({
      code: TlsErrorCodes.FILE,
      temporary: true,
      message: `unable to read TLSTICKETKEYS ${missing}: no such file`,
    });
    const short = join(tmp.path, 'short.keys');
    writeFileSync(short, Buffer.alloc(47));
    await expect(readTicketKeysFile(short, 'TLSTICKETKEYS')).rejects.toMatchObject({
      code: TlsErrorCodes.BAD_OPTION,
      temporary: false,
      path: short,
      message: `TLSTICKETKEYS ${short} must hold exactly 48 bytes, not 47`,
    });
  });
});

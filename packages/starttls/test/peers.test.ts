import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { createTestPki, freePort, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartTlsErrorCodes } from '../src/index.js';
import { type Peer, startDovecot, startExim, startTinyproxy } from './_peers.js';
import { readLineFrom, runClient } from './_script.js';

// The client side against real servers started on loopback high ports: exim (SMTP), dovecot
// (IMAP, POP3, LMTP, ManageSieve) and tinyproxy (HTTP CONNECT). Each test goes on talking over
// the TLS socket it got back, so a dialogue that left bytes behind or desynchronised shows.

let pki: TestPki;
const cleanups: Array<() => void | Promise<void>> = [];
beforeAll(() => {
  const dir = tempDir('starttls-peers-');
  cleanups.push(dir.cleanup);
  pki = createTestPki(dir.path);
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Sends `line` over TLS and returns the first reply line that matches `until` (bounded). */
async function say(tls: TLSSocket, line: string, until: RegExp): Promise<string> {
  tls.write(`${line}\r\n`);
  for (let i = 0; i < 50; i++) {
    const got = await readLineFrom(tls);
    if (until.test(got)) return got;
  }
  throw new Error(`no reply matching ${until}`);
}

describe.skipIf(!toolAvailable('exim'))('exim (SMTP)', () => {
  let exim: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-exim-');
    cleanups.push(dir.cleanup);
    exim = await startExim(dir.path, pki, await freePort(), await freePort());
    cleanups.push(() => exim.stop());
  });

  it('EHLO, STARTTLS, EHLO again over TLS; the session goes on (NOOP, QUIT)', async () => {
    const tls = await runClient(exim.ports.smtp as number, 'smtp', pki);
    expect(tls.encrypted).toBe(true);
    expect(await say(tls, 'NOOP', /^\d{3} /)).toMatch(/^250 /);
    expect(await say(tls, 'QUIT', /^\d{3} /)).toMatch(/^221 /);
    tls.destroy();
  });

  it('a server that does not offer STARTTLS is an error, never a plaintext session', async () => {
    await expect(runClient(exim.ports.plain as number, 'smtp', pki)).rejects.toMatchObject({
      code: StartTlsErrorCodes.NOT_OFFERED,
      temporary: false,
    });
  });
});

describe.skipIf(!toolAvailable('dovecot'))('dovecot (IMAP, POP3, LMTP, ManageSieve)', () => {
  let dovecot: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-dovecot-');
    cleanups.push(dir.cleanup);
    const [imap, pop3, lmtp, sieve] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    dovecot = await startDovecot(dir.path, pki, { imap, pop3, lmtp, sieve } as never);
    cleanups.push(() => dovecot.stop());
  });

  it('imap: CAPABILITY, STARTTLS, then tagged commands over TLS', async () => {
    const tls = await runClient(dovecot.ports.imap as number, 'imap', pki);
    expect(await say(tls, 'a3 CAPABILITY', /^a3 /)).toMatch(/^a3 OK/);
    expect(await say(tls, 'a4 LOGOUT', /^a4 /)).toMatch(/^a4 OK/);
    tls.destroy();
  });

  it('pop3: CAPA, STLS, then CAPA over TLS', async () => {
    const tls = await runClient(dovecot.ports.pop3 as number, 'pop3', pki);
    expect(await say(tls, 'CAPA', /^(\+OK|-ERR)/)).toMatch(/^\+OK/);
    expect(await say(tls, 'QUIT', /^(\+OK|-ERR)/)).toMatch(/^\+OK/);
    tls.destroy();
  });

  it('lmtp: LHLO, STARTTLS, LHLO again over TLS', async () => {
    const tls = await runClient(dovecot.ports.lmtp as number, 'lmtp', pki);
    expect(await say(tls, 'NOOP', /^\d{3} /)).toMatch(/^250 /);
    expect(await say(tls, 'QUIT', /^\d{3} /)).toMatch(/^221 /);
    tls.destroy();
  });

  it('sieve: capabilities, STARTTLS, the capabilities re-issued over TLS consumed', async () => {
    const tls = await runClient(dovecot.ports.sieve as number, 'sieve', pki);
    expect(await say(tls, 'CAPABILITY', /^(OK|NO|BYE)/)).toMatch(/^OK/);
    expect(await say(tls, 'LOGOUT', /^(OK|NO|BYE)/)).toMatch(/^OK/);
    tls.destroy();
  });
});

describe.skipIf(!toolAvailable('tinyproxy'))('tinyproxy (HTTP CONNECT)', () => {
  let proxy: Peer;
  let target: number;
  beforeAll(async () => {
    const dir = tempDir('starttls-tinyproxy-');
    cleanups.push(dir.cleanup);
    proxy = await startTinyproxy(dir.path, await freePort(), 'proxyuser', 'proxy-secret');
    cleanups.push(() => proxy.stop());
    // The target behind the proxy: a TLS server that greets and echoes one line.
    const server = createTlsServer(
      { key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverChain) },
      (s) => {
        s.write('hello through the tunnel\r\n');
        s.once('data', (b) => s.end(b));
      },
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    target = (server.address() as { port: number }).port;
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  });

  it('CONNECT with basic proxy authentication, then TLS to the target through the tunnel', async () => {
    const tls = await runClient(proxy.ports.proxy as number, 'connect', pki, {
      host: '127.0.0.1',
      port: target,
      username: 'proxyuser',
      password: 'proxy-secret',
    });
    expect(await readLineFrom(tls)).toBe('hello through the tunnel');
    tls.write('ping\r\n');
    expect(await readLineFrom(tls)).toBe('ping');
    tls.destroy();
  });

  it('wrong credentials: UCSPI_ERR_STARTTLS_PROXY_AUTH', async () => {
    await expect(
      runClient(proxy.ports.proxy as number, 'connect', pki, {
        host: `127.0.0.1:${target}`,
        username: 'proxyuser',
        password: 'wrong',
      }),
    ).rejects.toMatchObject({ code: StartTlsErrorCodes.PROXY_AUTH });
  });

  it('no credentials: UCSPI_ERR_STARTTLS_PROXY_AUTH', async () => {
    await expect(
      runClient(proxy.ports.proxy as number, 'connect', pki, { host: `127.0.0.1:${target}` }),
    ).rejects.toMatchObject({ code: StartTlsErrorCodes.PROXY_AUTH });
  });
});

it('connect: a raw socket helper is not left open by a refused dialogue', async () => {
  // The library destroys the socket on failure: a server that closes at once gives EOF.
  const server = (await import('node:net')).createServer((s) => s.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const { startTlsClient } = await import('../src/index.js');
  await expect(
    startTlsClient(socket, 'smtp', async () => Promise.reject(new Error('unused'))),
  ).rejects.toMatchObject({
    code: StartTlsErrorCodes.EOF,
    temporary: true,
  });
  expect(socket.destroyed).toBe(true);
  server.close();
});

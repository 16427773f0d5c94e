import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { createTestPki, freePort, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartTlsErrorCodes, startTlsClient } from '../src/index.js';
import { type Peer, startDovecot, startExim } from './_peers.js';
import { runClient } from './_script.js';
import { canRunPeer, say } from './_talk.js';

// The client side against real mail servers started on loopback high ports: exim (SMTP) and
// dovecot (IMAP, POP3, LMTP, ManageSieve). Each test goes on talking over the TLS socket it got
// back, so a dialogue that left bytes behind or desynchronised shows.

let pki: TestPki;
const cleanups: Array<() => void | Promise<void>> = [];
beforeAll(() => {
  const dir = tempDir('starttls-peers-mail-');
  cleanups.push(dir.cleanup);
  pki = createTestPki(dir.path);
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe.skipIf(!canRunPeer('exim'))('exim (SMTP)', () => {
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

describe.skipIf(!canRunPeer('dovecot'))('dovecot (IMAP, POP3, LMTP, ManageSieve)', () => {
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

it('a failed dialogue destroys the socket (a server that closes at once: EOF)', async () => {
  // The library destroys the socket on failure: a server that closes at once gives EOF.
  const server = createServer((s) => s.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  await expect(
    startTlsClient(socket, 'smtp', async () => Promise.reject(new Error('unused'))),
  ).rejects.toMatchObject({
    code: StartTlsErrorCodes.EOF,
    temporary: true,
  });
  expect(socket.destroyed).toBe(true);
  server.close();
});

import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { createTestPki, freePort, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartTlsErrorCodes } from '../src/index.js';
import {
  findPostgresBin,
  type Peer,
  startDovecot,
  startExim,
  startInspircd,
  startMariadb,
  startPostgres,
  startProsody,
  startSlapd,
  startTinyproxy,
  startVsftpd,
} from './_peers.js';
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

/** The first chunk the TLS socket delivers (bounded). */
async function firstChunk(tls: TLSSocket): Promise<Buffer> {
  const timer = setTimeout(() => tls.destroy(new Error('no data within 10 s')), 10_000);
  try {
    const [chunk] = (await once(tls, 'data')) as [Buffer];
    return chunk;
  } finally {
    clearTimeout(timer);
  }
}

/** Under CI the PostgreSQL server must be there; locally its absence skips (as toolAvailable). */
function postgresAvailable(): boolean {
  if (findPostgresBin()) return true;
  if (process.env.CI === 'true')
    throw new Error('the PostgreSQL server is not installed (.ci/run installs postgresql)');
  process.stderr.write('starttls tests: postgresql not installed; skipping its tests\n');
  return false;
}

describe.skipIf(!postgresAvailable())('postgres', () => {
  let pg: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-pg-');
    cleanups.push(dir.cleanup);
    pg = await startPostgres(dir.path, pki, await freePort());
    cleanups.push(() => pg.stop());
  }, 90_000);

  it('SSLRequest, S, TLS; the startup message over TLS is answered', async () => {
    const tls = await runClient(pg.ports.postgres as number, 'postgres', pki);
    const params = Buffer.from('user\0postgres\0database\0postgres\0\0', 'latin1');
    const head = Buffer.alloc(8);
    head.writeInt32BE(8 + params.length, 0);
    head.writeInt32BE(196608, 4); // protocol 3.0
    tls.write(Buffer.concat([head, params]));
    const answer = await firstChunk(tls);
    expect(String.fromCharCode(answer[0] as number)).toBe('R'); // AuthenticationOk (trust)
    tls.destroy();
  });
});

describe.skipIf(!toolAvailable('slapd'))('slapd (LDAP)', () => {
  let slapd: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-slapd-');
    cleanups.push(dir.cleanup);
    slapd = await startSlapd(dir.path, pki, await freePort());
    cleanups.push(() => slapd.stop());
  });

  it('StartTLS extended operation, then an anonymous bind over TLS succeeds', async () => {
    const tls = await runClient(slapd.ports.ldap as number, 'ldap', pki);
    // SEQUENCE { messageID 2, BindRequest { version 3, name "", simple "" } }
    tls.write(Buffer.from('300c020102600702010304008000', 'hex'));
    const answer = await firstChunk(tls);
    // SEQUENCE { messageID 2, BindResponse { resultCode success ... } }
    expect(answer.subarray(0, 10).toString('hex')).toBe('300c02010261070a0100');
    tls.destroy();
  });
});

describe.skipIf(!toolAvailable('vsftpd'))('vsftpd (FTP)', () => {
  let ftp: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-vsftpd-');
    cleanups.push(dir.cleanup);
    ftp = await startVsftpd(dir.path, pki, await freePort());
    cleanups.push(() => ftp.stop());
  });

  it('AUTH TLS, then FEAT and QUIT over TLS', async () => {
    const tls = await runClient(ftp.ports.ftp as number, 'ftp', pki);
    expect(await say(tls, 'FEAT', /^\d{3} /)).toMatch(/^211 /);
    expect(await say(tls, 'QUIT', /^\d{3} /)).toMatch(/^221 /);
    tls.destroy();
  });
});

describe.skipIf(!toolAvailable('prosody'))('prosody (XMPP)', () => {
  let xmpp: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-prosody-');
    cleanups.push(dir.cleanup);
    xmpp = await startProsody(dir.path, pki, await freePort(), await freePort());
    cleanups.push(() => xmpp.stop());
  });

  for (const [protocol, port, ns] of [
    ['xmpp', 'c2s', 'jabber:client'],
    ['xmpp-server', 's2s', 'jabber:server'],
  ] as const) {
    it(`${protocol}: stream features, starttls, proceed; the stream restarts over TLS`, async () => {
      const tls = await runClient(xmpp.ports[port] as number, protocol, pki, { host: 'chat.test' });
      // RFC 6120 section 5.4.3.3: the client opens a new stream over TLS; features follow.
      tls.write(
        `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='${ns}' to='chat.test' version='1.0'>`,
      );
      let seen = '';
      while (!seen.includes('</stream:features>')) seen += (await firstChunk(tls)).toString();
      expect(seen).not.toContain('urn:ietf:params:xml:ns:xmpp-tls');
      tls.destroy();
    });
  }

  it('xmpp: an unknown host ends the stream: GREETING, never plaintext', async () => {
    await expect(
      runClient(xmpp.ports.c2s as number, 'xmpp', pki, { host: 'nobody.test' }),
    ).rejects.toMatchObject({
      code: StartTlsErrorCodes.GREETING,
    });
  });
});

describe.skipIf(!toolAvailable('mariadbd'))('mariadb (MySQL protocol)', () => {
  let db: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-mariadb-');
    cleanups.push(dir.cleanup);
    db = await startMariadb(dir.path, pki, await freePort());
    cleanups.push(() => db.stop());
  }, 90_000);

  it('greeting with CLIENT_SSL, SSLRequest, TLS; the login packet over TLS is answered', async () => {
    const tls = await runClient(db.ports.mysql as number, 'mysql', pki);
    // HandshakeResponse41 (sequence 2): the SSLRequest's flags and fields, user "nobody", no password.
    const payload = Buffer.concat([
      Buffer.from(`85ae7f000000000121${'00'.repeat(23)}`, 'hex'),
      Buffer.from('nobody\0', 'latin1'),
      Buffer.from([0]),
      Buffer.from('mysql_native_password\0', 'latin1'),
      Buffer.from([0]),
    ]);
    tls.write(Buffer.concat([Buffer.from([payload.length, 0, 0, 2]), payload]));
    const answer = await firstChunk(tls);
    expect(answer[3]).toBe(3); // the server's reply has the next sequence id
    expect([0x00, 0xfe, 0xff]).toContain(answer[4]); // OK, auth switch, or "access denied"
    tls.destroy();
  });
});

describe.skipIf(!toolAvailable('inspircd'))('inspircd (IRC)', () => {
  let irc: Peer;
  beforeAll(async () => {
    const dir = tempDir('starttls-inspircd-');
    cleanups.push(dir.cleanup);
    irc = await startInspircd(dir.path, pki, await freePort());
    cleanups.push(() => irc.stop());
  });

  it('STARTTLS (notices before 670 skipped), then registration over TLS', async () => {
    const tls = await runClient(irc.ports.irc as number, 'irc', pki);
    tls.write('NICK tester\r\nUSER tester 0 * :Test\r\n');
    let welcomed = false;
    for (let i = 0; i < 50 && !welcomed; i++) {
      const line = await readLineFrom(tls);
      welcomed = / 001 tester /.test(line);
      if (/^PING (.*)$/.test(line)) tls.write(`PONG ${line.slice(5)}\r\n`);
    }
    expect(welcomed).toBe(true);
    tls.destroy();
  });
});

it('a failed dialogue destroys the socket (a server that closes at once: EOF)', async () => {
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

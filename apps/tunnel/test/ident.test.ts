// `ident = USERNAME` (RFC 1413) against an identd started by the test on 127.0.0.1 (a free port,
// given to the tunnel in UCSPI_TUNNEL_IDENT_PORT: port 113 would need root): the matching user
// admitted and relayed, in server, client and inetd mode; another user, an ERROR reply, a
// malformed or cut reply, no identd and a silent one refused before TLS with stunnel 5.68's lines;
// a slow lookup holds up no other client; the combinations that cannot work refused at start.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import {
  createTestPki,
  freePort,
  type LogWatch,
  type TestPki,
  tempDir,
  toolAvailable,
  watchLog,
} from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backend, plainTalk, reap, startDaemon, stopAll, TUNNEL, tlsTalk, writeConfig } from './_helpers.js';

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
const started: ChildProcess[] = [];
const servers: Server[] = [];

beforeAll(() => {
  tmp = tempDir('ucspi-tunnel-ident-');
  pki = createTestPki(join(tmp.path, 'pki'));
});
afterEach(async () => {
  for (const p of started.splice(0)) await reap(p);
  for (const s of servers.splice(0)) s.close();
  await stopAll();
});
afterAll(() => tmp.cleanup());

/** How the test identd answers one query (`CLIENTPORT , SERVERPORT`): a reply, or silence. */
type Reply = (query: string) => string | undefined;

/** A one-connection-at-a-time identd on 127.0.0.1; records each query line. */
async function identd(reply: Reply): Promise<{ port: number; queries: string[] }> {
  const queries: string[] = [];
  const server = createServer((s) => {
    let q = '';
    s.on('error', () => undefined);
    s.on('data', (b: Buffer) => {
      q += b.toString('latin1');
      if (!q.includes('\n')) return;
      queries.push(q);
      const r = reply(q.trim());
      if (r !== undefined) s.end(r);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, queries };
}

const user =
  (name: string): Reply =>
  (q) =>
    `${q} : USERID : UNIX : ${name}\r\n`;

/** Start the tunnel on `text` with the identd's port; resolves once it accepts connections. */
async function tunnel(text: string, identPort: number): Promise<{ proc: ChildProcess; log: LogWatch }> {
  // LOG6 for `Accepting new connections`.
  const conf = writeConfig(tmp.path, `t${started.length}-${Date.now()}.conf`, `debug = info\n${text}`);
  const proc = spawn(process.execPath, [TUNNEL, conf], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, UCSPI_TUNNEL_IDENT_PORT: String(identPort) },
  });
  started.push(proc);
  const log = watchLog(proc.stderr!);
  await log.waitFor(/Accepting new connections/, 15_000);
  return { proc, log };
}

const serverSection = (accept: number, connect: number, extra = '') =>
  `[svc]\naccept = 127.0.0.1:${accept}\nconnect = 127.0.0.1:${connect}\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n${extra}`;

/** A plain client that sends nothing: resolves with how the tunnel ended it, and its port. */
function refusedClient(
  port: number,
  localAddress = '127.0.0.1',
): Promise<{ localPort: number; how: string }> {
  return new Promise((resolve) => {
    const c: Socket = netConnect({ port, host: '127.0.0.1', localAddress });
    let localPort = 0;
    let got = '';
    c.on('connect', () => {
      localPort = c.localPort ?? 0;
    });
    c.on('data', (b: Buffer) => {
      got += b.toString('latin1');
    });
    c.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ localPort, how: `${e.code} after ${got.length} bytes` }),
    );
    c.on('close', () => resolve({ localPort, how: `close after ${got.length} bytes` }));
    // Bounded: a client left waiting (a check that never came) fails the test, not the run.
    setTimeout(() => {
      c.destroy();
      resolve({ localPort, how: 'still open after 10 s' });
    }, 10_000).unref();
  });
}

describe('ident = USERNAME', () => {
  it("server mode: the user named admitted and relayed, after stunnel 5.68's lines", async () => {
    const id = await identd(user('alice'));
    const b = await backend();
    const port = await freePort();
    const t = await tunnel(
      `foreground = yes\ndebug = info\n${serverSection(port, b.port, 'ident = alice\n')}`,
      id.port,
    );
    expect(await tlsTalk(port, 'hello')).toBe('HELLO');
    await t.log.waitFor(/Connection closed: 5 byte\(s\) sent to TLS, 5 byte\(s\) sent to socket/);
    // RFC 1413's query: the client's port, then the port it reached.
    expect(id.queries).toHaveLength(1);
    expect(id.queries[0]).toMatch(new RegExp(`^\\d+ , ${port}\\r\\n$`));
    const clientPort = id.queries[0]!.split(' ')[0];
    expect(t.log.text()).toMatch(
      new RegExp(
        [
          `LOG6\\[0\\]: s_connect: connecting 127\\.0\\.0\\.1:${id.port}`,
          `.*LOG5\\[0\\]: s_connect: connected 127\\.0\\.0\\.1:${id.port}`,
          '.*LOG6\\[0\\]: IDENT authentication passed',
          `.*LOG5\\[0\\]: Service \\[svc\\] accepted connection from 127\\.0\\.0\\.1:${clientPort}`,
        ].join('\n'),
      ),
    );
  });

  it("another user: refused before TLS (a reset, no backend), stunnel's LOG4 line", async () => {
    const id = await identd(user('bob'));
    const b = await backend();
    const port = await freePort();
    const t = await tunnel(`foreground = yes\n${serverSection(port, b.port, 'ident = alice\n')}`, id.port);
    const r = await refusedClient(port);
    expect(r.how).toBe('ECONNRESET after 0 bytes');
    await t.log.waitFor(/Connection reset: 0 byte\(s\) sent to TLS, 0 byte\(s\) sent to socket/);
    const text = t.log.text();
    expect(text).toMatch(
      new RegExp(
        `LOG4\\[0\\]: Connection from 127\\.0\\.0\\.1:${r.localPort} REFUSED by IDENT \\(user "bob"\\)\n`,
      ),
    );
    expect(text).not.toMatch(/accepted connection/);
    expect(b.connections()).toBe(0);
  });

  it("bad replies and no identd: each refused with stunnel's line", async () => {
    let reply: Reply = () => undefined;
    const id = await identd((q) => reply(q));
    const b = await backend();
    const port = await freePort();
    const t = await tunnel(
      `foreground = yes\ndebug = info\n${serverSection(port, b.port, 'ident = alice\nTIMEOUTbusy = 1\n')}`,
      id.port,
    );
    const cases: Array<[Reply, RegExp]> = [
      [(q) => `${q} : ERROR : NO-USER\r\n`, /LOG3\[\d+\]: Incorrect IDENT response type\n/],
      [() => 'garbage\r\n', /LOG3\[\d+\]: Malformed IDENT response\n/],
      [(q) => `${q} : USERID : UNIX\r\n`, /LOG3\[\d+\]: Malformed IDENT response\n/],
      // Compared as stunnel does: no space taken out but the leading ones.
      [
        (q) => `${q} : USERID : UNIX : alice \r\n`,
        /LOG4\[\d+\]: Connection from [^ ]+ REFUSED by IDENT \(user "alice "\)\n/,
      ],
      // The type exactly ` USERID `, as stunnel reads it.
      [(q) => `${q}:USERID:UNIX:alice\r\n`, /LOG3\[\d+\]: Incorrect IDENT response type\n/],
      [(q) => `${q} : USERID : UNIX : ali`, /LOG3\[\d+\]: s_read: Unexpected socket close\n/],
      // Silent: TIMEOUTbusy (1 s) ends the wait.
      [() => undefined, /LOG6\[\d+\]: s_read_eof: s_poll_wait: TIMEOUTbusy exceeded: sending reset\n/],
    ];
    let n = 0;
    for (const [r, line] of cases) {
      reply = r;
      const c = await refusedClient(port);
      expect(c.how).toBe('ECONNRESET after 0 bytes');
      n++;
      await t.log.waitForCount(/Connection reset: 0 byte/, n);
      expect(t.log.text()).toMatch(line);
    }
    // No identd at all.
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
    expect((await refusedClient(port)).how).toBe('ECONNRESET after 0 bytes');
    await t.log.waitForCount(/Connection reset: 0 byte/, n + 1);
    expect(t.log.text()).toMatch(
      new RegExp(
        `LOG3\\[${n}\\]: s_connect: connect 127\\.0\\.0\\.1:${id.port}: Connection refused \\(111\\)\n`,
      ),
    );
    expect(t.log.text()).not.toMatch(/accepted connection|IDENT authentication passed/);
    expect(b.connections()).toBe(0);
  }, 30_000);

  it('a lookup waiting on a silent identd holds up no other client', async () => {
    // The first query goes unanswered; the next ones are answered at once.
    let asked = 0;
    const id = await identd((q) => (asked++ === 0 ? undefined : `${q} : USERID : UNIX : alice\r\n`));
    const b = await backend();
    const port = await freePort();
    const t = await tunnel(
      `foreground = yes\n${serverSection(port, b.port, 'ident = alice\nTIMEOUTbusy = 2\n')}`,
      id.port,
    );
    const slow = refusedClient(port);
    await new Promise<void>((r) => {
      const poll = () => (id.queries.length === 1 ? r() : setTimeout(poll, 10));
      poll();
    });
    expect(await tlsTalk(port, 'meanwhile')).toBe('MEANWHILE');
    await t.log.waitFor(/LOG5\[1\]: Connection closed: 9 byte/);
    // The slow one is still waiting, then refused at its deadline.
    expect(t.log.text()).not.toMatch(/LOG5\[0\]: Connection reset/);
    expect((await slow).how).toBe('ECONNRESET after 0 bytes');
    await t.log.waitFor(/LOG5\[0\]: Connection reset: 0 byte/);
  }, 20_000);

  it('client mode: checked on the plain side, then relayed through TLS', async () => {
    const id = await identd(user('carol'));
    const b = await backend();
    const [plainPort, tlsPort] = [await freePort(), await freePort()];
    const t = await tunnel(
      `foreground = yes\n[plain]\nclient = yes\naccept = 127.0.0.1:${plainPort}\nconnect = 127.0.0.1:${tlsPort}\nident = carol\n` +
        serverSection(tlsPort, b.port),
      id.port,
    );
    expect(await plainTalk(plainPort, 'through')).toBe('THROUGH');
    await t.log.waitFor(/Service \[plain\] accepted connection/);
    expect(id.queries).toHaveLength(1);
    expect(id.queries[0]).toMatch(new RegExp(`^\\d+ , ${plainPort}\\r\\n$`));
    // The TLS section has no ident: its client (the tunnel itself) is not asked about.
    expect(t.log.text()).toMatch(/Service \[svc\] accepted connection/);
  });

  it('inetd mode: the connection on stdin is checked, then served', async () => {
    const id = await identd(user('dave'));
    const b = await backend();
    const conf = writeConfig(
      tmp.path,
      'inetd.conf',
      `debug = info\nconnect = 127.0.0.1:${b.port}\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\nident = dave\n`,
    );
    let log: LogWatch | undefined;
    let exited: Promise<number | null> | undefined;
    // The test is the inetd: each connection is handed, unread, to a tunnel of its own.
    const server = createServer({ pauseOnConnect: true }, (s) => {
      const proc = spawn(process.execPath, [TUNNEL, conf], {
        stdio: [s, s, 'pipe'],
        env: { ...process.env, UCSPI_TUNNEL_IDENT_PORT: String(id.port) },
      });
      started.push(proc);
      log = watchLog(proc.stderr!);
      exited = new Promise((r) => proc.once('exit', (code) => r(code)));
      s.destroy();
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    expect(await tlsTalk(port, 'inetd')).toBe('INETD');
    expect(await exited).toBe(0);
    expect(id.queries[0]).toMatch(new RegExp(`^\\d+ , ${port}\\r\\n$`));
    expect(log!.text()).toMatch(
      /LOG6\[0\]: IDENT authentication passed\n.*LOG5\[0\]: Service \[stunnel\] accepted connection/,
    );
    expect(log!.text()).toMatch(/LOG5\[0\]: Connection closed: 5 byte/);
  }, 20_000);

  it('with acceptProxy, or unlike its SNI primary: refused at start, naming the section', async () => {
    const check = async (text: string) => {
      const conf = writeConfig(tmp.path, `bad-${Date.now()}.conf`, text);
      const proc = spawn(process.execPath, [TUNNEL, '-t', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
      started.push(proc);
      const log = watchLog(proc.stderr!);
      const code = await new Promise((r) => proc.once('exit', r));
      return { code, text: log.text() };
    };
    const proxied = await check(
      `${serverSection(await freePort(), 1, 'ident = alice\nacceptProxy = yes\n')}`,
    );
    expect(proxied.code).toBe(1);
    expect(proxied.text).toContain(
      '[!] Service [svc]: ident with acceptProxy is not supported by ucspi-tunnel\n',
    );
    const sni = await check(
      `${serverSection(await freePort(), 1, 'ident = alice\n')}[other]\nsni = svc:other.test\nconnect = 1\ncert = ${pki.otherCert}\nkey = ${pki.otherKey}\n`,
    );
    expect(sni.code).toBe(1);
    expect(sni.text).toContain(
      "[!] Service [other]: ident in an SNI secondary must be the primary's: the client is checked before the server name is known\n",
    );
  });
});

describe('ident against stunnel4 (the real port 113, on 127.0.0.9: needs root)', () => {
  it.runIf(toolAvailable('stunnel4'))(
    'the same lines for a user admitted, another refused, an ERROR reply',
    async () => {
      let who = 'alice';
      // Its own loopback address, so that another test's identd on 127.0.0.1:113 does not collide.
      const server = createServer((sock) => {
        let q = '';
        sock.on('error', () => undefined);
        sock.on('data', (b: Buffer) => {
          q += b.toString('latin1');
          if (q.includes('\n'))
            sock.end(
              who === 'ERROR'
                ? `${q.trim()} : ERROR : NO-USER\r\n`
                : `${q.trim()} : USERID : UNIX : ${who}\r\n`,
            );
        });
      });
      const listening = await new Promise<boolean>((r) => {
        server.once('error', () => r(false));
        server.listen(113, '127.0.0.9', () => r(true));
      });
      if (!listening) {
        if (process.env.CI === 'true') throw new Error('cannot listen on 127.0.0.9:113 for the test identd');
        console.warn('skipped: cannot listen on 127.0.0.9:113 (not root)');
        return;
      }
      servers.push(server);
      const b = await backend();
      const logs: string[][] = [];
      for (const kind of ['stunnel4', 'ucspi-tunnel'] as const) {
        const port = await freePort();
        const conf = writeConfig(
          tmp.path,
          `side-${kind}.conf`,
          `foreground = yes\ndebug = info\n${serverSection(port, b.port, 'ident = alice\n')}`,
        );
        const d = await startDaemon(kind, conf);
        who = 'alice';
        expect(await tlsTalk(port, 'hello', { localAddress: '127.0.0.9' } as ConnectionOptions)).toBe(
          'HELLO',
        );
        await d.log.waitForCount(/Connection closed/, 1);
        who = 'bob';
        expect((await refusedClient(port, '127.0.0.9')).how).toBe('ECONNRESET after 0 bytes');
        who = 'ERROR';
        expect((await refusedClient(port, '127.0.0.9')).how).toBe('ECONNRESET after 0 bytes');
        await d.log.waitForCount(/Connection reset/, 2);
        await d.stop();
        logs.push(
          d.log
            .text()
            .split('\n')
            .filter((l) => /127\.0\.0\.9|IDENT|Connection (closed|reset)/.test(l))
            .map((l) => l.replace(/^[\d.: ]+/, '').replace(/127\.0\.0\.9:(?!113\b)\d+/g, '127.0.0.9:PORT')),
        );
      }
      expect(logs[1]).toEqual(logs[0]);
      expect(logs[0]).toContain('LOG4[1]: Connection from 127.0.0.9:PORT REFUSED by IDENT (user "bob")');
    },
    60_000,
  );
});

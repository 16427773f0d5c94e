// stunnel's local mode: a section with `exec` and `connect` and no `accept`. The program starts
// with the daemon and talks through the tunnel to a peer the test runs (a node:tls server in client
// mode; in server mode the program speaks TLS and the peer is plain); `retry = yes` starts both
// again; HUP, TERM and `pty = yes`; bad input. Debian's stunnel4 runs the same files as the oracle.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type TLSSocket } from 'node:tls';
import { canSpawnPty } from '@ucspi/exec';
import { createTestPki, freePort, run, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backend, type Running, startDaemon, stopAll, TUNNEL, writeConfig } from './_helpers.js';

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
const hasStunnel = toolAvailable('stunnel4');
const KINDS = hasStunnel ? (['ucspi-tunnel', 'stunnel4'] as const) : (['ucspi-tunnel'] as const);
type Kind = (typeof KINDS)[number];

const peers: Array<{ close: () => void }> = [];
beforeAll(() => {
  tmp = tempDir('ucspi-tunnel-local-');
  pki = createTestPki(join(tmp.path, 'pki'));
});
afterEach(async () => {
  await stopAll();
  for (const p of peers.splice(0)) p.close();
});
afterAll(() => tmp.cleanup());

/** A shell script in the temporary folder; returns its path. */
function script(name: string, body: string): string {
  const path = join(tmp.path, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** What the program of most tests does: greet, wait for a line from the peer, answer it, exit. */
const HELLO = 'echo hello\nread x\necho "got $x"';

interface PeerConn {
  socket: TLSSocket;
  received: () => string;
  /** Resolves with everything received once the tunnel ended its side. */
  ended: Promise<string>;
}

/**
 * A TLS server on loopback (the `connect` target of a client section). `auto`: each connection
 * gets `world\n` once it has sent `hello\n`, then (with `close`) the server's end; `manual`: the
 * test answers.
 */
async function tlsPeer(mode: 'auto' | 'close' | 'manual', tag?: { name: string; order: string[] }) {
  const conns: PeerConn[] = [];
  const waiters: Array<() => void> = [];
  const server = createServer(
    { cert: readFileSync(pki.serverChain), key: readFileSync(pki.serverKey), allowHalfOpen: true },
    (socket) => {
      let text = '';
      let answered = false;
      socket.on('error', () => undefined);
      const ended = new Promise<string>((resolve) => {
        socket.on('end', () => {
          socket.end();
          resolve(text);
        });
        socket.on('close', () => resolve(text));
      });
      socket.on('data', (b: Buffer) => {
        text += b.toString('latin1');
        if (mode !== 'manual' && !answered && text.includes('hello')) {
          answered = true;
          if (mode === 'close') socket.end('world\n');
          else socket.write('world\n');
        }
        for (const w of waiters.splice(0)) w();
      });
      conns.push({ socket, received: () => text, ended });
      tag?.order.push(tag.name);
      for (const w of waiters.splice(0)) w();
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const peer = {
    port: (server.address() as { port: number }).port,
    conns,
    /** Resolves once connection `n` (from 0) has received `text`. */
    waitFor: (n: number, text: string, timeoutMs = 15_000) =>
      new Promise<PeerConn>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`peer connection ${n} never got ${text}`)),
          timeoutMs,
        );
        const check = () => {
          const c = conns[n];
          if (c?.received().includes(text)) {
            clearTimeout(timer);
            resolve(c);
          } else waiters.push(check);
        };
        check();
      }),
    close: () => {
      for (const c of conns) c.socket.destroy();
      server.close();
    },
  };
  peers.push(peer);
  return peer;
}

/** A local-mode section: `/bin/sh PROG`, connected to `port`. */
const localSection = (port: number, prog: string, extra = '') =>
  `[local]\nexec = /bin/sh\nexecArgs = sh ${prog}\nconnect = 127.0.0.1:${port}\n${extra}`;

function start(kind: Kind, name: string, text: string): Promise<Running> {
  const conf = writeConfig(tmp.path, `${kind}-${name}.conf`, `foreground = yes\ndebug = 6\n${text}`);
  return startDaemon(kind, conf);
}

/**
 * The lines both daemons write for a local session, comparable: the connection's steps, and the
 * program's end (logged by the daemon, `[ui]`). stunnel4's local end is a loopback TCP pair
 * (Debian's make_sockets), so it names an address where ucspi-tunnel's pipes have none.
 */
function shape(log: string): string[] {
  const keep =
    /LOG\d\[(?!cron)[^\]]+\]: (Local mode child started|Service \[\w+\] (accepted|connected)|s_connect: connect(ed)? |No more addresses|Connection (closed|reset)|Retrying an exec|Child process)/;
  return log
    .split('\n')
    .filter((l) => keep.test(l))
    .map((l) =>
      l
        .replace(/^\S+ \S+ /, '')
        .replace(/PID=\d+/, 'PID=N')
        .replace(/Child process \d+/, 'Child process N')
        .replace(/accepted connection from \S+/, 'accepted connection')
        .replace(/remote server from 127\.0\.0\.1:\d+/, 'remote server from 127.0.0.1:P'),
    );
}

/** The lines of one run (`[0]`, `[0_1]`, ...) of `shape`, the daemon's own set aside. */
const runLines = (log: string, id: string) => shape(log).filter((l) => l.includes(`[${id}]:`));

describe('local mode (connect and exec, no accept)', () => {
  it('client mode: the program talks through TLS to the target at start; no client; stays idle after (retry = no)', async () => {
    const prog = script('hello.sh', HELLO);
    const logs: Record<string, string> = {};
    for (const kind of KINDS) {
      const peer = await tlsPeer('auto');
      const t = await start(kind, 'client', localSection(peer.port, prog, 'client = yes\nretry = no\n'));
      // The peer sees the program's bytes, the program the peer's (it echoes what it read).
      const conn = await peer.waitFor(0, 'got world');
      expect(await conn.ended).toBe('hello\ngot world\n');
      await t.log.waitFor(/Connection closed: 16 byte\(s\) sent to TLS, 6 byte\(s\) sent to socket/);
      await t.log.waitFor(/LOG6\[ui\]: Child process \d+ finished with code 0/);
      // retry = no: nothing starts again, and the daemon stays (as stunnel's, which has no other work).
      await expect(
        t.log.waitFor(/Retrying|Local mode child started[\s\S]*Local mode child started/, 2500),
      ).rejects.toThrow();
      expect(t.proc.exitCode).toBeNull();
      expect(peer.conns).toHaveLength(1);
      expect(await t.stop()).toBe(0);
      logs[kind] = t.log.text();
    }
    expect(runLines(logs['ucspi-tunnel']!, '0')).toEqual([
      'LOG6[0]: Local mode child started (PID=N)',
      'LOG5[0]: Service [local] accepted connection',
      expect.stringMatching(/^LOG5\[0\]: s_connect: connected 127\.0\.0\.1:\d+$/),
      'LOG5[0]: Service [local] connected remote server from 127.0.0.1:P',
      'LOG5[0]: Connection closed: 16 byte(s) sent to TLS, 6 byte(s) sent to socket',
    ]);
    if (logs.stunnel4 !== undefined) {
      const port = (l: string) => l.replace(/127\.0\.0\.1:\d+$/, '127.0.0.1:T');
      expect(shape(logs['ucspi-tunnel']!).map(port).sort()).toEqual(shape(logs.stunnel4).map(port).sort());
    }
  }, 60_000);

  it('retry = yes: once the peer closed, the program and the connection start again', async () => {
    const prog = script('hello-retry.sh', HELLO);
    const logs: Record<string, string> = {};
    for (const kind of KINDS) {
      const peer = await tlsPeer('close');
      const t = await start(kind, 'retry', localSection(peer.port, prog, 'client = yes\nretry = yes\n'));
      expect(await (await peer.waitFor(0, 'got world')).ended).toBe('hello\ngot world\n');
      // A second program, a second connection: the peer sees it all again.
      expect(await (await peer.waitFor(1, 'got world')).ended).toBe('hello\ngot world\n');
      await t.log.waitFor(/LOG5\[0_1\]: Connection closed/);
      await t.stop();
      logs[kind] = t.log.text();
      const first = runLines(logs[kind]!, '0_0');
      expect(first[0]).toBe('LOG6[0_0]: Local mode child started (PID=N)');
      expect(first.at(-1)).toBe('LOG6[0_0]: Retrying an exec+connect section');
      expect(runLines(logs[kind]!, '0_1').slice(0, 5)).toEqual(
        first.slice(0, 5).map((l) => l.replace('[0_0]', '[0_1]')),
      );
    }
    if (logs.stunnel4 !== undefined) {
      const port = (l: string) => l.replace(/127\.0\.0\.1:\d+$/, '127.0.0.1:T');
      for (const id of ['0_0', '0_1'])
        expect(runLines(logs['ucspi-tunnel']!, id).slice(0, 6).map(port)).toEqual(
          runLines(logs.stunnel4, id).slice(0, 6).map(port),
        );
    }
  }, 60_000);

  it('retry = yes with failover = rr: each run starts from the next target', async () => {
    const prog = script('hello-rr.sh', HELLO);
    const orders: Record<string, string[]> = {};
    for (const kind of KINDS) {
      const order: string[] = [];
      const a = await tlsPeer('close', { name: 'a', order });
      const b = await tlsPeer('close', { name: 'b', order });
      const section = `[local]\nclient = yes\nexec = /bin/sh\nexecArgs = sh ${prog}\nconnect = 127.0.0.1:${a.port}\nconnect = 127.0.0.1:${b.port}\nfailover = rr\nretry = yes\n`;
      const t = await start(kind, 'rr', section);
      await t.log.waitForCount(/Connection closed/, 3, 15_000);
      await t.stop();
      orders[kind] = order.slice(0, 3);
      // The runs alternate between the two targets (stunnel starts from a random one).
      expect(orders[kind], kind).toEqual(order[0] === 'a' ? ['a', 'b', 'a'] : ['b', 'a', 'b']);
    }
  }, 60_000);

  it('server mode: the program speaks TLS to the tunnel, the target gets plaintext', async () => {
    const prog = join(tmp.path, 'tls-client.js');
    writeFileSync(
      prog,
      [
        "const tls = require('node:tls');",
        "const { Duplex } = require('node:stream');",
        'const io = Duplex.from({ readable: process.stdin, writable: process.stdout });',
        "const c = tls.connect({ socket: io, rejectUnauthorized: false, servername: 'localhost' }, () => c.write('hello\\n'));",
        "c.on('data', (b) => { process.stderr.write('program got ' + b); c.end(); });",
        "c.on('end', () => setTimeout(() => process.exit(0), 20));",
        "c.on('error', (e) => { process.stderr.write('program error ' + e.message + '\\n'); process.exit(2); });",
      ].join('\n'),
    );
    const logs: Record<string, string> = {};
    for (const kind of KINDS) {
      const plain = await backend((s) => s.toUpperCase(), true);
      const section = `[local]\nexec = ${process.execPath}\nexecArgs = node ${prog}\nconnect = 127.0.0.1:${plain.port}\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n`;
      const t = await start(kind, 'server', section);
      await t.log.waitFor(/program got HELLO/);
      await t.log.waitFor(/Connection closed: 6 byte\(s\) sent to TLS, 6 byte\(s\) sent to socket/);
      await t.log.waitFor(/Child process \d+ finished with code 0/);
      expect(plain.connections()).toBe(1);
      logs[kind] = t.log.text();
    }
    expect(runLines(logs['ucspi-tunnel']!, '0')[1]).toBe('LOG5[0]: Service [local] accepted connection');
    if (logs.stunnel4 !== undefined) {
      const port = (l: string) => l.replace(/127\.0\.0\.1:\d+$/, '127.0.0.1:T');
      expect(shape(logs['ucspi-tunnel']!).map(port).sort()).toEqual(shape(logs.stunnel4).map(port).sort());
    }
  }, 60_000);

  it('HUP: the running session is not restarted, and the section starts afresh (as stunnel)', async () => {
    const prog = script('hello-hup.sh', HELLO);
    for (const kind of KINDS) {
      const peer = await tlsPeer('manual');
      const t = await start(kind, 'hup', localSection(peer.port, prog, 'client = yes\nretry = yes\n'));
      const first = await peer.waitFor(0, 'hello');
      t.proc.kill('SIGHUP');
      // The reloaded configuration's session: a second program and connection, while the first runs.
      const second = await peer.waitFor(1, 'hello');
      first.socket.end('world\n');
      await t.log.waitFor(/LOG5\[0_0\]: Connection closed/);
      second.socket.end('world\n');
      await t.log.waitFor(/LOG6\[1_0\]: Retrying an exec\+connect section/);
      await peer.waitFor(2, 'hello');
      await t.log.waitFor(/LOG6\[1_1\]: Local mode child started/);
      expect(t.log.text(), kind).not.toMatch(/\[0_1\]|LOG6\[0_0\]: Retrying/);
    }
  }, 60_000);

  it('TERM ends the program and the connection, then the daemon exits 0', async () => {
    const prog = script('cat.sh', 'echo hello\nexec cat');
    const peer = await tlsPeer('auto');
    const t = await start(
      'ucspi-tunnel',
      'term',
      localSection(peer.port, prog, 'client = yes\nretry = yes\n'),
    );
    // cat sends back what the peer sent: the relay works both ways while it runs.
    await peer.waitFor(0, 'hello\nworld\n');
    expect(await t.stop('SIGTERM')).toBe(0);
    expect(await peer.conns[0]!.ended).toBe('hello\nworld\n');
    const log = t.log.text();
    expect(log).toMatch(/LOG6\[ui\]: Child process \d+ terminated on SIGTERM/);
    expect(log).toMatch(
      /LOG5\[0_0\]: Connection closed: 12 byte\(s\) sent to TLS, 6 byte\(s\) sent to socket/,
    );
    expect(log).not.toMatch(/Retrying/);
    expect(peer.conns).toHaveLength(1);
  }, 30_000);

  it('TERM: a program that ignores it is killed at drainTimeout and its connection closed', async () => {
    // SIGTERM ignored by the shell is ignored by cat too (exec keeps an ignored signal ignored).
    const prog = script('stubborn.sh', "trap '' TERM\necho hello\nexec cat");
    const peer = await tlsPeer('auto');
    const t = await start(
      'ucspi-tunnel',
      'term-cut',
      `drainTimeout = 1\n${localSection(peer.port, prog, 'client = yes\n')}`,
    );
    await peer.waitFor(0, 'hello\nworld\n');
    expect(await t.stop('SIGTERM')).toBe(0);
    expect(await peer.conns[0]!.ended).toBe('hello\nworld\n');
    expect(t.log.text()).toMatch(/LOG6\[ui\]: Child process \d+ terminated on SIGKILL/);
    expect(t.log.text()).toMatch(
      /LOG5\[0\]: Connection (closed|reset): 12 byte\(s\) sent to TLS, 6 byte\(s\) sent to socket/,
    );
  }, 30_000);

  it.runIf(canSpawnPty)(
    'pty = yes: the program runs on a terminal',
    async () => {
      const prog = script('tty.sh', 'tty\ntest -t 0 && echo stdin-is-a-tty');
      const peer = await tlsPeer('manual');
      const t = await start(
        'ucspi-tunnel',
        'pty',
        localSection(peer.port, prog, 'client = yes\npty = yes\n'),
      );
      const conn = await peer.waitFor(0, 'stdin-is-a-tty');
      expect(conn.received()).toMatch(/^\/dev\/pts\/\d+\r\nstdin-is-a-tty\r\n$/);
      await t.log.waitFor(/LOG5\[0\]: Connection closed/);
      expect(t.log.text()).toMatch(/LOG6\[0\]: Local mode child started/);
    },
    30_000,
  );

  it("bad input: a target that refuses, in stunnel's lines; the program gets SIGPIPE", async () => {
    const prog = script('hello-refused.sh', HELLO);
    const logs: Record<string, string> = {};
    for (const kind of KINDS) {
      const port = await freePort();
      const t = await start(kind, 'refused', localSection(port, prog, 'client = yes\n'));
      await t.log.waitFor(/Connection reset: 0 byte\(s\) sent to TLS, 0 byte\(s\) sent to socket/);
      await t.log.waitFor(/Child process \d+ terminated on SIGPIPE/);
      logs[kind] = t.log.text();
      expect(shape(logs[kind]!)).toEqual([
        'LOG6[0]: Local mode child started (PID=N)',
        'LOG5[0]: Service [local] accepted connection',
        `LOG3[0]: s_connect: connect 127.0.0.1:${port}: Connection refused (111)`,
        'LOG3[0]: No more addresses to connect',
        'LOG5[0]: Connection reset: 0 byte(s) sent to TLS, 0 byte(s) sent to socket',
        'LOG6[ui]: Child process N terminated on SIGPIPE',
      ]);
    }
  }, 60_000);

  it('bad input: what needs an accepted client is refused in a local section, naming it', async () => {
    const conf = writeConfig(
      tmp.path,
      'local-protocol.conf',
      `foreground = yes\n${localSection(1, '/bin/true', 'client = yes\nprotocol = smtp\n')}`,
    );
    const r = await run(process.execPath, [TUNNEL, conf]);
    expect(r.code).toBe(1);
    expect(r.stderr.toString()).toContain(
      '[!] Service [local]: protocol in local mode (connect and exec without accept) is not supported by ucspi-tunnel yet',
    );
  }, 30_000);
});

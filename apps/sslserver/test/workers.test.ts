// TLSWORKERS=N: the TLS side of sslserver in N handler processes, connections dealt to the one
// with the fewest, while accepting, -c, MAXCONIP and the log stay in the server process.
import { mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { dirname, join } from 'node:path';
import { Duplex } from 'node:stream';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { run, tempDir, waitUntil } from '@ucspi/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Running, startServer, stopAll, talkTls } from './_helpers.js';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const ourBin = join(pkgDir, 'dist', 'bin', 'sslserver.js');
const tmp = tempDir();
afterAll(() => tmp.cleanup());
afterEach(stopAll);

/** A program that greets, waits for one line and answers it: a connection held open at will. */
const HOLD = ['sh', '-c', 'echo hi; read x; echo "got $x"'];

function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  // The development certificate, in a cache of this run.
  const { CERTFILE: _c, KEYFILE: _k, TLSWORKERS: _w, MAXCONIP: _m, ...inherited } = process.env;
  return { ...inherited, XDG_CACHE_HOME: join(tmp.path, 'cache'), ...extra };
}

/** Our sslserver with -1 -v -H -R -l localhost and `extra` in its environment. */
function startOurs(args: string[], extra: Record<string, string> = {}): Promise<Running> {
  return startServer(
    process.execPath,
    [ourBin, '-1', '-v', '-H', '-R', '-l', 'localhost', ...args],
    baseEnv(extra),
  );
}

/** The server's children running tls-handler.js. */
function handlersOf(serverPid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== serverPid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('tls-handler')) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found.sort((a, b) => a - b);
}

/** `127.0.0.1:port` as /proc/net/tcp writes it. */
const hexAddr = (port: number) => `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;

/** The rows of /proc/net/tcp: local, remote, state, rx_queue, inode. */
function tcpTable(): { local: string; remote: string; state: string; rxQueue: number; inode: string }[] {
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return {
        local: f[1]!,
        remote: f[2]!,
        state: f[3]!,
        rxQueue: Number.parseInt(f[4]!.split(':')[1]!, 16),
        inode: f[9]!,
      };
    });
}

/** Which of `pids` holds the server's end of the connection from client port `clientPort`. */
function holderOf(serverPort: number, clientPort: number, pids: number[]): number | undefined {
  const row = tcpTable().find((r) => r.local === hexAddr(serverPort) && r.remote === hexAddr(clientPort));
  if (!row) return undefined;
  return pids.find((pid) =>
    readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${row.inode}]`;
      } catch {
        return false;
      }
    }),
  );
}

/** A TLS client whose output can be waited on. */
function client(port: number, options: Partial<ConnectionOptions> = {}) {
  const socket: TLSSocket = tlsConnect({
    port,
    host: '127.0.0.1',
    rejectUnauthorized: false,
    ...options,
  } as ConnectionOptions);
  let out = '';
  const changed: (() => void)[] = [];
  socket.on('data', (b: Buffer) => {
    out += b.toString();
    for (const f of changed.splice(0)) f();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const tcpUp = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return {
    socket,
    closed,
    tcpUp,
    output: () => out,
    /** Resolves once the output so far contains `text`. */
    waitFor(text: string): Promise<void> {
      return new Promise((resolve) => {
        const check = () => (out.includes(text) ? resolve() : changed.push(check));
        check();
      });
    },
  };
}

const exited = (s: Running) =>
  new Promise<number | null>((resolve) => {
    if (s.proc.exitCode !== null) resolve(s.proc.exitCode);
    else s.proc.once('exit', (c) => resolve(c));
  });

/**
 * A TLS client whose first bytes on the wire are `header` and its ClientHello in one write (the
 * TLS socket runs over a stream of ours); sends `input`, half-closes and collects the answer.
 */
function proxiedTls(port: number, header: string, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let first = true;
    const wire = new Duplex({
      read() {
        raw.resume();
      },
      write(chunk: Buffer, _enc, cb) {
        const out = first ? Buffer.concat([Buffer.from(header, 'latin1'), chunk]) : chunk;
        first = false;
        raw.write(out, cb);
      },
      final(cb) {
        raw.end(cb);
      },
    });
    raw.on('data', (b: Buffer) => {
      if (!wire.push(b)) raw.pause();
    });
    raw.on('end', () => wire.push(null));
    raw.on('error', (err) => wire.destroy(err));
    raw.on('connect', () => {
      const c = tlsConnect({
        socket: wire,
        rejectUnauthorized: false,
        allowHalfOpen: true,
      } as ConnectionOptions);
      let out = '';
      c.on('data', (b: Buffer) => {
        out += b.toString();
      });
      c.on('error', reject);
      c.on('close', () => raw.destroy());
      c.on('end', () => {
        c.end();
        resolve(out);
      });
      c.once('secureConnect', () => c.end(input));
    });
  });
}

describe('sslserver with TLSWORKERS', () => {
  it('starts N handlers, names them with -v, and deals concurrent connections to both', async () => {
    const s = await startOurs(['127.0.0.1', '0', ...HOLD], { TLSWORKERS: '2' });
    const [, a, b] = (await s.waitLog(/^sslserver: info: TLS workers (\d+) (\d+)$/m)).map(Number);
    const pids = [a!, b!].sort((x, y) => x - y);
    expect(new Set(pids).size).toBe(2);
    expect(pids).not.toContain(s.proc.pid);
    expect(handlersOf(s.proc.pid!)).toEqual(pids);

    // Two connections at once, both past their handshake with the program running.
    const c1 = client(s.port);
    const c2 = client(s.port);
    await Promise.all([c1.waitFor('hi\n'), c2.waitFor('hi\n')]);
    const h1 = holderOf(s.port, c1.socket.localPort!, pids);
    const h2 = holderOf(s.port, c2.socket.localPort!, pids);
    expect(h1).toBeDefined();
    expect(h2).toBeDefined();
    expect(h1).not.toBe(h2);
    c1.socket.end('one\n');
    c2.socket.end('two\n');
    await Promise.all([c1.closed, c2.closed]);
    expect(c1.output()).toBe('hi\ngot one\n');
    expect(c2.output()).toBe('hi\ngot two\n');

    // openssl s_client is served too (-quiet keeps reading after its input's end).
    const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${s.port}`, '-quiet'], {
      input: 'openssl\n',
      timeoutMs: 10_000,
    });
    expect(r.stdout.toString()).toBe('hi\ngot openssl\n');
    await s.waitLogCount(/^sslserver: ended by \d+ status 0$/gm, 3);
    expect(s.stderr()).toMatch(/^sslserver: status 0\/40\/0$/m);
    expect(await s.stop()).toBe(0);
  });

  it('a session resumes on the other handler (the handlers share their ticket keys)', async () => {
    const s = await startOurs(['127.0.0.1', '0', 'echo', 'hello'], { TLSWORKERS: '2' });
    const first = client(s.port, { maxVersion: 'TLSv1.3' });
    const session = new Promise<Buffer>((resolve) => first.socket.once('session', resolve));
    await first.closed;
    expect(first.output()).toBe('hello\n');
    // The first connection is over and went to one handler: the next goes to the other one.
    const again = client(s.port, { session: await session });
    const reused = new Promise<boolean>((resolve) =>
      again.socket.once('secureConnect', () => resolve(again.socket.isSessionReused())),
    );
    await again.closed;
    expect(again.output()).toBe('hello\n');
    expect(await reused).toBe(true);
  });

  it('-c 1 holds across the handlers: a second client waits in the backlog', async () => {
    const s = await startOurs(['-c', '1', '127.0.0.1', '0', ...HOLD], { TLSWORKERS: '2' });
    const first = client(s.port);
    await first.waitFor('hi\n');
    const second = client(s.port);
    await second.tcpUp;
    // The second connection sits in the listening socket's accept queue, not taken by anyone.
    const listening = () => tcpTable().find((r) => r.local === hexAddr(s.port) && r.state === '0A');
    await waitUntil(() => listening()?.rxQueue === 1, 10_000);
    expect(second.output()).toBe('');
    first.socket.end('one\n');
    await first.closed;
    await second.waitFor('hi\n');
    second.socket.end('two\n');
    await second.closed;
    expect(first.output()).toBe('hi\ngot one\n');
    expect(second.output()).toBe('hi\ngot two\n');
    expect(s.stderr()).not.toMatch(/^sslserver: status 2\//m);
    expect(await s.stop()).toBe(0);
  });

  it('MAXCONIP counts across the handlers', async () => {
    const s = await startOurs(['127.0.0.1', '0', ...HOLD], { TLSWORKERS: '2', MAXCONIP: '1' });
    const first = client(s.port);
    await first.waitFor('hi\n');
    // The second one from the same address would go to the idle handler: it is refused first.
    const second = client(s.port);
    await second.closed;
    expect(second.output()).toBe('');
    await s.waitLog(/^sslserver: deny \d+ .* ip connection limit:1 exceeded$/m);
    first.socket.end('one\n');
    await first.closed;
    expect(first.output()).toBe('hi\ngot one\n');
    expect(await s.stop()).toBe(0);
  });

  it('-n (UCSPI-TLS): STARTTLS through the handlers', async () => {
    const SMTP = `printf '220 test ESMTP\\r\\n'
while IFS= read -r line; do
  case "$line" in
    EHLO*|HELO*) printf '250-test\\r\\n250 STARTTLS\\r\\n';;
    STARTTLS*) printf '220 go ahead\\r\\n'; printf y >&$SSLCTLFD; break;;
  esac
done
IFS= read -r l <&$SSLREADFD; printf 'got %s\\n' "$l" >&$SSLWRITEFD`;
    const s = await startOurs(['-n', '127.0.0.1', '0', 'sh', '-c', SMTP], { TLSWORKERS: '2' });
    const r = await run(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${s.port}`, '-starttls', 'smtp', '-quiet'],
      { input: 'hello-tls\n', timeoutMs: 10_000 },
    );
    expect(r.stdout.toString()).toContain('got hello-tls\n');
    await s.waitLog(/^sslserver: tls \d+ accept$/m);
    expect(await s.stop()).toBe(0);
  });

  it('unset or 0: TLS in the server process, no handler (the default)', async () => {
    const s = await startOurs(['127.0.0.1', '0', 'echo', 'hello'], { TLSWORKERS: '0' });
    expect((await talkTls(s.port)).toString()).toBe('hello\n');
    expect(handlersOf(s.proc.pid!)).toEqual([]);
    expect(s.stderr()).not.toContain('TLS workers');
    expect(await s.stop()).toBe(0);
  });

  it.each(['x', '-1', '1.5', '65'])('TLSWORKERS=%s is refused: exit 100 naming it', async (value) => {
    const r = await run(process.execPath, [ourBin, '127.0.0.1', '0', 'cat'], {
      env: baseEnv({ TLSWORKERS: value }),
    });
    expect(r.code).toBe(100);
    expect(r.stderr.toString()).toBe(
      `sslserver: fatal: TLSWORKERS must be a whole number of processes from 0 to 64, not ${value}\n`,
    );
  });

  it.each([
    ['TLSWORKERS=2', { TLSWORKERS: '2' }] as const,
    // chroot needs root.
    ...(process.getuid?.() === 0
      ? [['SSL_CHROOT (one confined handler)', { SSL_CHROOT: '/' }] as const]
      : []),
  ])('PROXYPROTO with %s: client bytes read with the header reach the handler first', async (_, extra) => {
    const s = await startOurs(['127.0.0.1', '0', 'sh', '-c', 'echo "$SSLREMOTEIP $SSLREMOTEPORT"; cat'], {
      PROXYPROTO: '1',
      ...extra,
    });
    // The header and the ClientHello in one write: both come in the server's first read.
    const header = `PROXY TCP4 192.0.2.7 127.0.0.1 4711 ${s.port}\r\n`;
    expect(await proxiedTls(s.port, header, 'after the header\n')).toBe('192.0.2.7 4711\nafter the header\n');
    await s.waitLog(/^sslserver: pid \d+ from 192\.0\.2\.7$/m);
    // A connection without a header is dropped before TLS; the next one is served.
    expect(await proxiedTls(s.port, '', 'no header\n').catch(() => '')).toBe('');
    await s.waitLog(/^sslserver: warning: dropping connection from 127\.0\.0\.1:\d+, bad PROXY header: /m);
    expect(await proxiedTls(s.port, header, 'again\n')).toBe('192.0.2.7 4711\nagain\n');
  });

  it.runIf(process.getuid?.() === 0)(
    'the handlers drop to -u/-g; with SSL_CHROOT/SSL_UID/SSL_GID, N confined handlers',
    async () => {
      const uidOf = (pid: number) => /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      const plain = await startOurs(['-u', '1', '-g', '1', '127.0.0.1', '0', 'echo', 'hello'], {
        TLSWORKERS: '2',
      });
      const mine = handlersOf(plain.proc.pid!);
      expect(mine).toHaveLength(2);
      expect(mine.map(uidOf)).toEqual(['1', '1']);
      expect((await talkTls(plain.port)).toString()).toBe('hello\n');

      const jail = join(tmp.path, 'jail');
      mkdirSync(jail, { recursive: true });
      const confined = await startOurs(['127.0.0.1', '0', 'echo', 'hello'], {
        TLSWORKERS: '3',
        SSL_CHROOT: jail,
        SSL_UID: '65534',
        SSL_GID: '65534',
      });
      const jailed = handlersOf(confined.proc.pid!);
      expect(jailed).toHaveLength(3);
      expect(jailed.map(uidOf)).toEqual(['65534', '65534', '65534']);
      for (const pid of jailed) expect(readlinkSync(`/proc/${pid}/root`)).toBe(jail);
      expect((await talkTls(confined.port)).toString()).toBe('hello\n');
    },
  );

  it('exits 111 when one handler dies, for the supervisor to restart it', async () => {
    const s = await startOurs(['127.0.0.1', '0', ...HOLD], { TLSWORKERS: '2' });
    const [, a] = (await s.waitLog(/^sslserver: info: TLS workers (\d+) (\d+)$/m)).map(Number);
    // Served before: the handlers work.
    const before = client(s.port);
    await before.waitFor('hi\n');
    before.socket.end('x\n');
    await before.closed;
    process.kill(a!, 'SIGKILL');
    expect(await exited(s)).toBe(111);
    expect(s.stderr()).toMatch(new RegExp(`^sslserver: fatal: TLS handler ${a} died \\(SIGKILL\\)$`, 'm'));
    // Nothing listens any more.
    const refused = await new Promise<boolean>((resolve) => {
      const c = netConnect(s.port, '127.0.0.1');
      c.on('connect', () => {
        c.destroy();
        resolve(false);
      });
      c.on('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});

import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTool, run, tempDir, toolAvailable, waitUntil } from '@ucspi/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { type Running, startServer, stopAll, talk, talkTls } from './_helpers.js';

afterEach(stopAll);

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const ourBin = join(pkgDir, 'dist', 'bin', 'tcpserver.js');
const ENV_PROG = ['sh', '-c', 'env | grep -E "^(TCP|PROTO|RULEVAR)" | sort'];

/**
 * A one-line identd on 127.0.0.1:113 (port 113 needs root: undefined when it cannot listen there).
 * `answer()` says what the user id is (`ERROR` for an error reply).
 */
async function startIdentd(answer: () => string): Promise<Server | undefined> {
  const server = createServer((s) => {
    let q = '';
    s.on('error', () => undefined);
    s.on('data', (b: Buffer) => {
      q += b.toString('latin1');
      if (!q.includes('\n')) return;
      const a = answer();
      s.end(a === 'ERROR' ? `${q.trim()} : ERROR : NO-USER\r\n` : `${q.trim()} : USERID : UNIX : ${a}\r\n`);
    });
  });
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(113, '127.0.0.1', () => resolve(server));
  });
}

/** Log lines with pids and ports replaced, so two servers' logs compare. */
function normalise(log: string, port: number): string[] {
  return log
    .split('\n')
    .filter((l) => l !== '')
    .map((l) =>
      l
        .replace(/\b(pid|ok|deny|end) \d+/, '$1 PID')
        .replace(new RegExp(`:${port}\\b`, 'g'), ':PORT')
        .replace(/:\d+$/, ':RPORT'),
    );
}

function normaliseEnv(out: string, port: number): string[] {
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) =>
      l
        .replace(`TCPLOCALPORT=${port}`, 'TCPLOCALPORT=PORT')
        .replace(/^TCPREMOTEPORT=\d+$/, 'TCPREMOTEPORT=RPORT'),
    );
}

describe('our tcpserver', () => {
  it('fails with the usage line and exit 100 without arguments', async () => {
    const r = await run(process.execPath, [ourBin]);
    expect(r.code).toBe(100);
    expect(r.stderr.toString()).toMatch(/^tcpserver: usage: tcpserver \[ -1UXpPhHrRoOdDqQv \]/);
  });

  it('reports an address already in use with djb wording and exit 111', async () => {
    const a = await startServer(process.execPath, [ourBin, '-1', '-H', '-R', '127.0.0.1', '0', 'true']);
    const r = await run(process.execPath, [ourBin, '-H', '-R', '127.0.0.1', String(a.port), 'true']);
    expect(r.code).toBe(111);
    expect(r.stderr.toString()).toBe('tcpserver: fatal: unable to bind: address already used\n');
  });

  it('-B writes the banner before the program runs; SIGTERM exits 0', async () => {
    const s = await startServer(process.execPath, [
      ourBin,
      '-1',
      '-H',
      '-R',
      '-B',
      'hello ',
      '127.0.0.1',
      '0',
      'echo',
      'there',
    ]);
    expect(await talk(s.port)).toBe('hello there\n');
    expect(await s.stop()).toBe(0);
  });

  it("the program's fd 2 is the server's, a pipe or a file (a supervisor's log gets its messages)", async () => {
    const prog = ['sh', '-c', 'echo "program says" >&2; echo out'];
    // A pipe, as under daemontools or systemd.
    const piped = await startServer(process.execPath, [
      ourBin,
      '-1',
      '-q',
      '-H',
      '-R',
      '-l',
      'x',
      '127.0.0.1',
      '0',
      ...prog,
    ]);
    expect(await talk(piped.port)).toBe('out\n');
    await piped.waitLog(/program says\n/);
    expect(piped.stderr()).toBe('program says\n');
    await piped.stop();
    // A file: Node.js marks its fd 2 close-on-exec then, which the spawner must undo for the program.
    const tmp = tempDir();
    try {
      const log = join(tmp.path, 'log');
      const portFile = join(tmp.path, 'port');
      const sh = `"$NODE" "$BIN" -1 -q -H -R -l x 127.0.0.1 0 sh -c 'echo "program says" >&2; echo out' >"$PORT" 2>"$LOG" & echo $!`;
      const pid = Number(
        (
          await run('sh', ['-c', sh], {
            env: { ...process.env, NODE: process.execPath, BIN: ourBin, LOG: log, PORT: portFile },
          })
        ).stdout.toString(),
      );
      try {
        // The port file fills once the server has bound (the bin runs in the background).
        await waitUntil(() => readFileSync(portFile, 'utf8').endsWith('\n'));
        const port = Number(readFileSync(portFile, 'utf8').trim());
        expect(await talk(port)).toBe('out\n');
        await waitUntil(() => readFileSync(log, 'utf8').length > 0);
        expect(readFileSync(log, 'utf8')).toBe('program says\n');
      } finally {
        process.kill(pid, 'SIGTERM');
      }
    } finally {
      tmp.cleanup();
    }
  });

  it('connections reset before they are accepted start no program and leave no empty address in the log', async () => {
    const s = await startServer(process.execPath, [
      ourBin,
      '-1',
      '-v',
      '-H',
      '-R',
      '-l',
      'x',
      '127.0.0.1',
      '0',
      'echo',
      'hi',
    ]);
    await Promise.all(
      Array.from(
        { length: 20 },
        () =>
          new Promise<void>((resolve) => {
            const c = netConnect(s.port, '127.0.0.1', () => {
              c.resetAndDestroy();
              resolve();
            });
            c.on('error', () => resolve());
          }),
      ),
    );
    expect(await talk(s.port)).toBe('hi\n');
    await s.waitLog(/^tcpserver: end \d+ status 0$/m);
    await s.waitLog(/tcpserver: status: 0\/40\n$/);
    const log = s.stderr();
    // A program started for a connection whose peer was unknown logged `pid N from ` and `:::0`.
    expect(log).not.toMatch(/ from $/m);
    expect(log).not.toMatch(/ :::0$/m);
    expect(log.trim().split('\n').pop()).toBe('tcpserver: status: 0/40');
  });

  it('-c defers the (n+1)th program until one ends', async () => {
    const s = await startServer(process.execPath, [
      ourBin,
      '-1',
      '-H',
      '-R',
      '-c',
      '1',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      'date +%s%N; sleep 0.5',
    ]);
    const outs = await Promise.all([talk(s.port), talk(s.port)]);
    const [first, second] = outs.map((x) => Number(BigInt(x.trim()) / 1_000_000n)).sort((x, y) => x - y);
    // The second program started only after the first had slept 0.5 s.
    expect((second ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(450);
  });
});

describe.runIf(toolAvailable('tcpserver') && toolAvailable('tcprules'))('same as ucspi-tcp tcpserver', () => {
  const debian = () => findTool('tcpserver') ?? 'tcpserver';

  /** Connections waiting in the accept queue of the socket listening on `port` (ss's Recv-Q). */
  async function backlog(port: number): Promise<number> {
    const r = await run('ss', ['-Hltn', `sport = :${port}`]);
    return Number(r.stdout.toString().trim().split(/\s+/)[1]);
  }

  /** The listening socket's accept queue once it holds `n`, or what it holds after 5 s. */
  async function backlogReaches(port: number, n: number): Promise<number> {
    const deadline = Date.now() + 5000;
    let seen = await backlog(port);
    while (seen !== n && Date.now() < deadline) seen = await backlog(port);
    return seen;
  }

  /** Run `body` with ours, then with Debian's, each started with `args` and stopped afterwards. */
  async function withEach(args: string[], body: (who: 'ours' | 'theirs', s: Running) => Promise<void>) {
    for (const [who, cmd, pre] of [
      ['ours', process.execPath, [ourBin]],
      ['theirs', debian(), []],
    ] as const) {
      const s = await startServer(cmd, [...pre, ...args]);
      try {
        await body(who, s);
      } finally {
        await s.stop();
      }
    }
  }

  it('-c: with every slot taken, further clients wait in the kernel backlog, not accepted', async () => {
    const seen: Record<string, number[]> = {};
    const args = [
      '-1',
      '-q',
      '-H',
      '-R',
      '-l',
      'x',
      '-c',
      '1',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      'read x; echo "$x"',
    ];
    await withEach(args, async (who, s) => {
      const clients = [0, 1, 2].map(() => {
        const c = netConnect(s.port, '127.0.0.1');
        c.on('error', () => undefined);
        let out = '';
        c.on('data', (b: Buffer) => {
          out += b.toString();
        });
        return { c, out: () => out };
      });
      // Two clients wait in the kernel's backlog while the first one is served.
      const held = await backlogReaches(s.port, 2);
      // The first program ends: the server accepts the next one.
      clients[0]!.c.write('one\n');
      const after = await backlogReaches(s.port, 1);
      for (const { c } of clients) c.destroy();
      seen[who] = [held, after];
    });
    expect(seen.theirs).toEqual([2, 1]);
    expect(seen.ours).toEqual(seen.theirs);
  });

  async function compare(args: string[], input = '') {
    const ours = await startServer(process.execPath, [ourBin, ...args]);
    const theirs = await startServer(debian(), args);
    const outOurs = await talk(ours.port, input);
    const outTheirs = await talk(theirs.port, input);
    // Both logs complete: the initial status line and the one after the connection ended.
    await ours.waitLogCount(/status: 0\//, 2);
    await theirs.waitLogCount(/status: 0\//, 2);
    await ours.stop();
    await theirs.stop();
    expect(normaliseEnv(outOurs, ours.port)).toEqual(normaliseEnv(outTheirs, theirs.port));
    expect(normalise(ours.stderr(), ours.port)).toEqual(normalise(theirs.stderr(), theirs.port));
    return outOurs;
  }

  it('a rules file that cannot be read drops the connection in the same words and status as ucspi-tcp', async () => {
    const tmp = tempDir();
    try {
      // No such file (without -X), then a file too short to be a cdb. (A directory would crash
      // ucspi-tcp's child with SIGSEGV: not a behaviour to copy.)
      writeFileSync(join(tmp.path, 'short.cdb'), 'x');
      expect(
        await compare([
          '-1',
          '-v',
          '-H',
          '-R',
          '-l',
          'x',
          '-x',
          join(tmp.path, 'none.cdb'),
          '127.0.0.1',
          '0',
          'echo',
          'no',
        ]),
      ).toBe('');
      expect(
        await compare([
          '-1',
          '-v',
          '-H',
          '-R',
          '-l',
          'x',
          '-x',
          join(tmp.path, 'short.cdb'),
          '127.0.0.1',
          '0',
          'echo',
          'no',
        ]),
      ).toBe('');
    } finally {
      tmp.cleanup();
    }
  });

  it("-O (the default) drops the IP options of the client's SYN as the man page says; -o keeps them", async () => {
    // Perl (perl-base, always on Debian) sets a Record Route option on the client's socket; the
    // program reads IP_OPTIONS of its fd 0, the accepted socket: the options echoed back, or none.
    const tmp = tempDir();
    try {
      const client = join(tmp.path, 'client.pl');
      const prog = join(tmp.path, 'prog.pl');
      writeFileSync(
        client,
        `use Socket qw(:all);
socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
setsockopt($s, IPPROTO_IP, IP_OPTIONS, pack('C8', 7, 7, 4, 0, 0, 0, 0, 1)) or die "setsockopt: $!";
connect($s, pack_sockaddr_in($ARGV[0], inet_aton('127.0.0.1'))) or die "connect: $!";
print while <$s>;
`,
      );
      writeFileSync(
        prog,
        `use Socket qw(:all);
open(my $s, '+<&=', 0) or die;
my $o = getsockopt($s, IPPROTO_IP, IP_OPTIONS);
print "options=", (defined $o ? length($o) : "error $!"), "\n";
`,
      );
      const seen: Record<string, string[]> = {};
      for (const flag of ['-O', '-o']) {
        await withEach(
          ['-1', '-q', '-H', '-R', '-l', 'x', flag, '127.0.0.1', '0', 'perl', prog],
          async (who, s) => {
            const r = await run('perl', [client, String(s.port)], { timeoutMs: 10_000 });
            (seen[who] ??= []).push(r.stdout.toString().trim());
          },
        );
      }
      // -o: the options stay, in both. -O: ours drops them, as the man page says; ucspi-tcp's
      // socket_ipoptionskill passes option number 1, which is IP_OPTIONS on BSD but IP_TOS on
      // Linux, so Debian's tcpserver keeps them (strace shows setsockopt(0, SOL_IP, IP_TOS, NULL, 0)).
      expect(seen.theirs?.[1]).toBe('options=8');
      expect(seen.ours).toEqual(['options=0', 'options=8']);
    } finally {
      tmp.cleanup();
    }
  });

  it('sets the same environment and logs the same lines (-v -H -R -l)', async () => {
    const out = await compare(['-1', '-v', '-H', '-R', '-l', 'localhost', '127.0.0.1', '0', ...ENV_PROG]);
    expect(out).toMatch(/^PROTO=TCP$/m);
    expect(out).toMatch(/^TCPLOCALHOST=localhost$/m);
  });

  it('a program that cannot be run: the same warning, pid and exit status 28416', async () => {
    const tmp = tempDir();
    try {
      const notExecutable = join(tmp.path, 'plain-file');
      writeFileSync(notExecutable, 'echo never\n');
      for (const prog of ['no-such-program-anywhere', notExecutable]) {
        const out = await compare(['-1', '-v', '-H', '-R', '-l', '0', '127.0.0.1', '0', prog]);
        expect(out).toBe('');
      }
    } finally {
      tmp.cleanup();
    }
  });

  it('-r (the default): the same TCPREMOTEINFO, ok lines and info@ rules as the original', async () => {
    let who = 'alice';
    const identd = await startIdentd(() => who);
    if (!identd) {
      if (process.env.CI === 'true') throw new Error('cannot listen on 127.0.0.1:113 for the test identd');
      console.warn('skipped: cannot listen on 127.0.0.1:113 (not root)');
      return;
    }
    const tmp = tempDir();
    try {
      const cdb = join(tmp.path, 'info.cdb');
      writeFileSync(
        join(tmp.path, 'info.txt'),
        'alice@127.0.0.1:allow,RULEVAR="alice"\n:allow,RULEVAR="other"\n',
      );
      expect((await run('sh', ['-c', `tcprules ${cdb} ${cdb}.tmp < ${tmp.path}/info.txt`])).code).toBe(0);
      const args = ['-1', '-v', '-H', '-l', '0', '-x', cdb, '127.0.0.1', '0', ...ENV_PROG];
      let out = await compare(args);
      expect(out).toMatch(/^TCPREMOTEINFO=alice$/m);
      expect(out).toMatch(/^RULEVAR=alice$/m);
      who = 'ERROR'; // an error reply: TCPREMOTEINFO is set, empty
      out = await compare(args);
      expect(out).toMatch(/^TCPREMOTEINFO=$/m);
      expect(out).toMatch(/^RULEVAR=other$/m);
      who = 'bob smith\t!'; // spaces and tabs are dropped
      expect(await compare(args)).toMatch(/^TCPREMOTEINFO=bobsmith!$/m);
      await new Promise((r) => identd.close(r)); // nobody answers: unset
      expect(await compare(args)).not.toMatch(/^TCPREMOTEINFO/m);
    } finally {
      identd.close();
      tmp.cleanup();
    }
  });

  it('sslserver -r sets SSLREMOTEINFO and logs it on the ok line (kept in this file: one identd on port 113)', async () => {
    const identd = await startIdentd(() => 'carol');
    if (!identd) {
      if (process.env.CI === 'true') throw new Error('cannot listen on 127.0.0.1:113 for the test identd');
      return;
    }
    const cache = tempDir();
    try {
      const ssl = await startServer(
        process.execPath,
        [
          join(pkgDir, 'dist', 'bin', 'sslserver.js'),
          '-1',
          '-v',
          '-H',
          '-r',
          '-l',
          '0',
          '127.0.0.1',
          '0',
          'sh',
          '-c',
          'echo "$SSLREMOTEINFO"',
        ],
        { ...process.env, XDG_CACHE_HOME: cache.path, CERTFILE: '', KEYFILE: '' },
      );
      expect((await talkTls(ssl.port)).toString()).toBe('carol\n');
      await ssl.waitLog(/^sslserver: ok \d+ 0:127\.0\.0\.1:\d+ :127\.0\.0\.1:carol:\d+$/m);
    } finally {
      identd.close();
      cache.cleanup();
    }
  });

  it('applies rules: variables for an allowed client, the same deny lines', async () => {
    const tmp = tempDir();
    try {
      const allow = join(tmp.path, 'allow.cdb');
      const deny = join(tmp.path, 'deny.cdb');
      writeFileSync(join(tmp.path, 'allow.txt'), '127.0.0.1:allow,RULEVAR="yes"\n:deny\n');
      writeFileSync(join(tmp.path, 'deny.txt'), '127.:deny\n');
      expect((await run('sh', ['-c', `tcprules ${allow} ${allow}.tmp < ${tmp.path}/allow.txt`])).code).toBe(
        0,
      );
      expect((await run('sh', ['-c', `tcprules ${deny} ${deny}.tmp < ${tmp.path}/deny.txt`])).code).toBe(0);
      const out = await compare([
        '-1',
        '-v',
        '-H',
        '-R',
        '-l',
        'localhost',
        '-x',
        allow,
        '127.0.0.1',
        '0',
        ...ENV_PROG,
      ]);
      expect(out).toMatch(/^RULEVAR=yes$/m);
      // Deny: no program output. Log lines compare except the deny's pid/status (see README).
      const ours = await startServer(process.execPath, [
        ourBin,
        '-1',
        '-v',
        '-H',
        '-R',
        '-l',
        'localhost',
        '-x',
        deny,
        '127.0.0.1',
        '0',
        'echo',
        'no',
      ]);
      expect(await talk(ours.port)).toBe('');
      await ours.waitLog(/end \d+ status 25600\ntcpserver: status: 0\/40\n$/);
      await ours.stop();
      expect(normalise(ours.stderr(), ours.port)).toEqual([
        'tcpserver: status: 0/40',
        'tcpserver: status: 1/40',
        'tcpserver: pid PID from 127.0.0.1',
        'tcpserver: deny PID localhost:127.0.0.1:PORT :127.0.0.1::RPORT',
        'tcpserver: end PID status 25600',
        'tcpserver: status: 0/40',
      ]);
      // A missing cdb drops the connection, unless -X.
      const x = await startServer(process.execPath, [
        ourBin,
        '-1',
        '-q',
        '-H',
        '-R',
        '-X',
        '-x',
        join(tmp.path, 'none.cdb'),
        '127.0.0.1',
        '0',
        'echo',
        'yes',
      ]);
      expect(await talk(x.port)).toBe('yes\n');
      const nx = await startServer(process.execPath, [
        ourBin,
        '-1',
        '-q',
        '-H',
        '-R',
        '-x',
        join(tmp.path, 'none.cdb'),
        '127.0.0.1',
        '0',
        'echo',
        'yes',
      ]);
      expect(await talk(nx.port)).toBe('');
    } finally {
      tmp.cleanup();
    }
  });
});

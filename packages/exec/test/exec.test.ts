import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Duplex, PassThrough, Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as nativeExec from '../src/index.js';

// Every test runs twice: with the native spawner (the default on Linux) and with the
// child_process.spawn fallback (UCSPI_EXEC_NATIVE=0, modules loaded afresh).
process.env.UCSPI_EXEC_NATIVE = '0';
vi.resetModules();
const fallbackExec = (await import('../src/index.js')) as typeof nativeExec;
delete process.env.UCSPI_EXEC_NATIVE;

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

/** Listen on 127.0.0.1:0 and hand each accepted socket to onSocket. */
function listen(onSocket: (s: Socket) => unknown, allowHalfOpen = true): Promise<number> {
  return new Promise((resolve) => {
    server = createServer({ allowHalfOpen, pauseOnConnect: true }, onSocket);
    server.listen(0, '127.0.0.1', () => {
      const a = server?.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
}

/** Connect, send input, half-close, collect everything until the server closes. */
function exchange(port: number, input: Buffer | string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const out: Buffer[] = [];
    c.on('data', (b: Buffer) => out.push(b));
    c.on('error', reject);
    c.on('end', () => {
      c.end();
      resolve(Buffer.concat(out));
    });
    c.end(input);
  });
}

const fdCount = () => readdirSync('/proc/self/fd').length;

/** A client for the unread-input test: argv[1] is the port; reports how its connection ended. */
const UNREAD_CLIENT = `
const c = require('node:net').connect({ port: Number(process.argv[1]), host: '127.0.0.1', allowHalfOpen: true });
c.pause();
let failed;
c.on('error', (e) => { failed ??= e; });
const chunk = Buffer.alloc(1 << 20, 'n');
let sent = 0;
const more = () => {
  while (sent < 64) { sent++; if (!c.write(chunk)) return void c.once('drain', more); }
  c.end();
};
c.on('connect', () => { c.write('first\\n'); more(); });
process.stdin.once('data', () => {
  const out = [];
  const report = (how) => {
    const all = Buffer.concat(out).toString();
    process.stdout.write(how + ' ' + all.length + ' ' + all.slice(-4));
    process.exit(0);
  };
  if (failed) report('error ' + failed.code);
  c.on('data', (b) => out.push(b));
  c.on('end', () => report('end'));
  c.on('error', (e) => report('error ' + e.code));
  c.resume();
});
`;

it('uses the native spawner on Linux (required under CI)', () => {
  if (process.platform !== 'linux') return;
  if (!nativeExec.nativeSpawn && process.env.CI !== 'true') {
    console.warn('native spawner not built: only the child_process path is tested');
    return;
  }
  expect(nativeExec.nativeSpawn).toBe(true);
  expect(fallbackExec.nativeSpawn).toBe(false);
});

describe.each([
  ['native', nativeExec],
  ['child_process', fallbackExec],
] as const)('%s', (_mode, { spawnOnSocket, spawnPumped, spawnUcspiTls }) => {
  describe('spawnOnSocket', () => {
    it('gives the program the socket as fd 0 and 1 and reports the exit status', async () => {
      let status: Promise<{ code: number | null; wstat: number }> | undefined;
      const port = await listen((s) => {
        status = spawnOnSocket(s, { argv: ['sh', '-c', 'cat; echo done; exit 3'], env }).then(
          (r) => r.exited,
        );
      });
      const out = await exchange(port, 'hello\n');
      expect(out.toString()).toBe('hello\ndone\n');
      expect(await status).toMatchObject({ code: 3, wstat: 768 });
    });

    it('reports a program that cannot be run as exit 111', async () => {
      let status: Promise<{ code: number | null }> | undefined;
      const port = await listen((s) => {
        status = spawnOnSocket(s, { argv: ['/nonexistent/prog'], env }).then((r) => r.exited);
      });
      await exchange(port, '');
      expect((await status)?.code).toBe(111);
    });
  });

  describe('the program', () => {
    /** Run sh -c script on a connection and return what it printed. */
    async function run(script: string, childEnv: Record<string, string> = env) {
      let status: Promise<nativeExec.ExitStatus> | undefined;
      const port = await listen((s) => {
        status = spawnOnSocket(s, { argv: ['sh', '-c', script], env: childEnv }).then((r) => r.exited);
      });
      const out = await exchange(port, '');
      return { out: out.toString(), status: await status! };
    }

    it('says why it could not be executed: ENOENT, EACCES (exit 111)', async () => {
      let missing: Promise<nativeExec.ExitStatus> | undefined;
      let denied: Promise<nativeExec.ExitStatus> | undefined;
      const port = await listen((s) => {
        const r = spawnOnSocket(s, { argv: [missing ? '/dev/null' : 'no-such-program-here'], env }).then(
          (run) => run.exited,
        );
        if (!missing) missing = r;
        else denied = r;
      });
      const t0 = Date.now();
      await exchange(port, '');
      await exchange(port, '');
      await Promise.all([missing, denied]);
      // Reaped on SIGCHLD, not by the once-a-second safety net.
      expect(Date.now() - t0).toBeLessThan(900);
      expect(await missing).toMatchObject({ code: 111, wstat: 28416, error: { code: 'ENOENT' } });
      expect(await denied).toMatchObject({ code: 111, wstat: 28416, error: { code: 'EACCES' } });
    });

    it('gets only its own environment, found through its own PATH', async () => {
      const { out } = await run('echo "$A/$PATH"; env | wc -l', { A: 'x', PATH: '/usr/bin:/bin' });
      // sh adds PWD (and may add SHLVL and _): a handful at most, none of the server's.
      const [first, count] = out.trim().split('\n');
      expect(first).toBe('x//usr/bin:/bin');
      expect(Number(count)).toBeLessThan(6);
    });

    it('starts with default signal dispositions, no blocked signals, blocking fd 0 and 1', async () => {
      const { out } = await run(
        'grep -E "^Sig(Ign|Blk)" /proc/$$/status; grep flags /proc/$$/fdinfo/0 /proc/$$/fdinfo/1',
      );
      // Node.js ignores SIGPIPE: an ignored signal would survive exec if not reset.
      // The signal mask is checked for the native spawner only: on the CI machine Node.js's own
      // child_process.spawn starts a good share of its programs with every signal blocked (125 of
      // 300 in a plain loop), whatever this package does.
      if (_mode === 'native') expect(out).toMatch(/^SigBlk:\s+0+$/m);
      expect(out).toMatch(/^SigIgn:\s+0+$/m);
      for (const m of out.matchAll(/flags:\s+(\d+)/g)) expect(Number.parseInt(m[1]!, 8) & 0o4000).toBe(0);
    });

    it('inherits none of the descriptors the server opened, only beyond 0, 1 and 2', async () => {
      // Descriptors this process itself inherited without close-on-exec pass on to any program
      // (as with the originals); everything the server opened is close-on-exec and must not.
      const inherited = new Set(
        readdirSync('/proc/self/fd')
          .map(Number)
          .filter((fd) => {
            try {
              const flags = /flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
              return flags !== undefined && (Number.parseInt(flags, 8) & 0o2000000) === 0;
            } catch {
              return false;
            }
          }),
      );
      const { out } = await run('ls /proc/$$/fd');
      const extra = out
        .trim()
        .split(/\s+/)
        .map(Number)
        .filter((fd) => fd > 2 && fd !== 255 && !inherited.has(fd)); // 255: a shell's own copy
      expect(extra).toEqual([]);
    });

    it('reports death by a signal as the signal number in wstat', async () => {
      const { status } = await run('kill -TERM $$');
      expect(status).toMatchObject({ code: null, signal: 'SIGTERM', wstat: 15 });
    });
  });

  describe('spawnPumped', () => {
    it('pumps 16 MiB both ways through cat with backpressure and no hang', async () => {
      const port = await listen((s) => {
        spawnPumped(s, { argv: ['cat'], env });
      });
      const big = Buffer.alloc(16 * 1024 * 1024, 'x');
      const out = await exchange(port, big);
      expect(out.length).toBe(big.length);
    }, 30_000);

    it('a slow reader still gets every byte after the program has ended', async () => {
      const port = await listen((s) => {
        spawnPumped(s, { argv: ['cat'], env });
      });
      const size = 8 * 1024 * 1024;
      const got = await new Promise<number>((resolve, reject) => {
        const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
        let n = 0;
        c.on('error', reject);
        c.on('data', (b: Buffer) => {
          n += b.length;
        });
        c.on('end', () => {
          c.end();
          resolve(n);
        });
        // Send everything, then read nothing for a while: cat has long ended (its output sits in
        // the server's buffers) by the time the client starts reading.
        c.end(Buffer.alloc(size, 'y'));
        c.pause();
        setTimeout(() => c.resume(), 1500);
      });
      expect(got).toBe(size);
    });

    it('a program that exits without reading all its input: the peer is read to its EOF, then closed without a reset', async () => {
      let done: Promise<unknown> | undefined;
      const port = await listen((s) => {
        done = spawnPumped(s, {
          argv: ['sh', '-c', 'read line; head -c 20000 /dev/zero | tr "\\0" x'],
          env,
        }).then((r) => r.done);
      });
      // The client, a process of its own so that its bytes keep arriving while the server works,
      // sends 64 MiB after the line the program reads, and reads nothing until the server has
      // finished with the connection. Closing with its bytes unread would answer them with a reset:
      // ECONNRESET here, and output still queued on the server's side lost.
      const client = spawn(process.execPath, ['-e', UNREAD_CLIENT, String(port)], { stdio: 'pipe' });
      const exited = once(client, 'exit');
      let report = '';
      client.stdout.on('data', (b: Buffer) => {
        report += b.toString();
      });
      await vi.waitFor(() => expect(done).toBeDefined(), { timeout: 10_000 });
      await done;
      client.stdin.end('go\n');
      await exited;
      expect(report).toBe('end 20000 xxxx');
    }, 30_000);

    it('half-close: the peer still gets output written after its EOF, banner first', async () => {
      const port = await listen((s) => {
        spawnPumped(
          s,
          { argv: ['sh', '-c', 'cat >/dev/null; sleep 0.2; echo later'], env },
          { banner: 'B:' },
        );
      });
      const out = await exchange(port, 'ignored');
      expect(out.toString()).toBe('B:later\n');
    });

    it('idle timeout closes a silent connection', async () => {
      let done: Promise<void> | undefined;
      const port = await listen((s) => {
        done = spawnPumped(s, { argv: ['sleep', '5'], env }, { idleTimeoutMs: 200 }).then((r) => r.done);
      });
      const t0 = Date.now();
      await new Promise<void>((resolve) => {
        const c = connect({ port, host: '127.0.0.1' });
        c.on('close', () => resolve());
        c.on('error', () => undefined);
      });
      expect(Date.now() - t0).toBeLessThan(3000);
      // The program (sleep 5) is killed by the timer, so done comes well before 5 s.
      await done;
      expect(Date.now() - t0).toBeLessThan(3000);
    });

    it('leaks no descriptors over many connections', async () => {
      const runs: Promise<unknown>[] = [];
      const port = await listen((s) => {
        runs.push(spawnPumped(s, { argv: ['cat'], env }).then((r) => r.done));
      });
      await exchange(port, 'warm');
      await Promise.all(runs);
      const before = fdCount();
      for (let i = 0; i < 20; i++) await exchange(port, `x${i}`);
      await Promise.all(runs);
      expect(fdCount()).toBeLessThanOrEqual(before);
    }, 20_000);
  });

  describe('spawnUcspiTls', () => {
    it('passes the control, read and write descriptors as fd 3, 4, 5 (bidirectional)', async () => {
      let got: Promise<string> | undefined;
      const port = await listen(async (s) => {
        const r = await spawnUcspiTls(s, {
          argv: ['sh', '-c', 'echo "$SSLCTLFD $SSLREADFD $SSLWRITEFD"; printf y >&3; head -c 2 <&3 >&5'],
          env,
        });
        got = new Promise((resolve) => {
          r.control.once('data', (b: Buffer) => {
            r.control.write('ok');
            r.write.once('data', (w: Buffer) => resolve(`${b}${w}`));
          });
        });
        r.exited.then(() => {
          s.destroy();
          r.control.destroy();
          r.read.destroy();
          r.write.destroy();
        });
      });
      const out = await exchange(port, '');
      expect(out.toString()).toBe('3 4 5\n');
      expect(await got).toBe('yok');
    });
  });
});

describe('pumpStreams', () => {
  /** A connection whose writes complete slowly, as on a congested network. */
  function slowPeer(written: Buffer[]) {
    return new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        setTimeout(() => {
          written.push(chunk);
          cb();
        }, 20);
      },
    });
  }

  it('writes everything to the peer before it destroys the connection', async () => {
    const written: Buffer[] = [];
    const stream = slowPeer(written);
    stream.push(null); // the peer has already sent its EOF
    const from = new PassThrough();
    const to = new PassThrough();
    to.resume();
    const done = nativeExec.pumpStreams(stream, from, to);
    from.write('a');
    from.write('b');
    from.end('c');
    await done;
    expect(Buffer.concat(written).toString()).toBe('abc');
  });

  it("a connection gone before the pump started ends the program's input at once", async () => {
    const stream = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
    stream.destroy();
    await new Promise((r) => setImmediate(r)); // its 'close' is over
    let ended = false;
    const to = new Writable({ write: (_c, _e, cb) => cb() });
    to.on('finish', () => {
      ended = true;
    });
    const from = new PassThrough();
    const done = nativeExec.pumpStreams(stream, from, to);
    await done;
    expect(ended).toBe(true);
  });

  it('writes everything to the program before it closes its input', async () => {
    const received: Buffer[] = [];
    const stream = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
    const to = new Writable({
      write(chunk: Buffer, _enc, cb) {
        setTimeout(() => {
          received.push(chunk);
          cb();
        }, 20);
      },
    });
    const from = new PassThrough();
    const done = nativeExec.pumpStreams(stream, from, to);
    from.end(); // the program has closed its output early
    stream.push('x');
    stream.push('y');
    stream.push('z');
    stream.push(null);
    await done;
    expect(Buffer.concat(received).toString()).toBe('xyz');
  });

  it('lets bufferBytes wait for a peer with a small high-water mark, then pauses the program', async () => {
    // A TLS socket's high-water mark is 16 KiB: pausing there would stop reading the program's
    // output after every 64 KiB read. The pump waits for bufferBytes, and never lets more pile up.
    const pending: Array<() => void> = [];
    const stream = new Duplex({ read() {}, write: (_c, _e, cb) => pending.push(cb) });
    const from = new PassThrough({ highWaterMark: 1 << 20 });
    const to = new PassThrough();
    to.resume();
    const done = nativeExec.pumpStreams(stream, from, to, { bufferBytes: 256 * 1024 });
    const tick = () => new Promise((r) => setImmediate(r));
    const chunk = Buffer.alloc(64 * 1024, 'o');
    for (let i = 0; i < 3; i++) from.write(chunk);
    await tick();
    expect(stream.writableLength).toBe(3 * 65536);
    expect(from.isPaused()).toBe(false);
    for (let i = 0; i < 3; i++) from.write(chunk);
    await tick();
    expect(from.isPaused()).toBe(true);
    expect(stream.writableLength).toBe(4 * 65536); // the rest waits in the program's pipe
    from.end();
    stream.push(null);
    while (!stream.writableFinished) {
      while (pending.length) pending.shift()?.();
      await tick();
    }
    await done;
  });

  it('pauses the peer once bufferBytes wait for a program that does not read', async () => {
    const stream = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
    const to = new Writable({ highWaterMark: 16 * 1024, write() {} }); // never done
    const from = new PassThrough();
    void nativeExec.pumpStreams(stream, from, to, { bufferBytes: 256 * 1024 });
    const chunk = Buffer.alloc(64 * 1024, 'i');
    for (let i = 0; i < 6; i++) stream.push(chunk);
    await new Promise((r) => setTimeout(r, 20));
    expect(stream.isPaused()).toBe(true);
    expect(to.writableLength).toBe(4 * 65536);
    stream.destroy();
  });
});

describe.runIf(nativeExec.nativeSpawn)('pipes under pressure (native addon)', () => {
  it('a bulk transfer grows both pipes once, and their pages return when the program ends', async () => {
    // A peer that sends 8 MiB at once and reads slowly at first: both pipes fill up.
    const sent = Buffer.alloc(8 << 20, 'y');
    const received: Buffer[] = [];
    let slow = true;
    const stream = new Duplex({
      read() {},
      write(chunk: Buffer, _e, cb) {
        received.push(chunk);
        if (slow) setTimeout(cb, 50);
        else cb();
      },
    });
    const before = nativeExec.grownPipePages();
    const run = await nativeExec.spawnPumped(stream, { argv: ['cat'], env });
    stream.push(sent);
    stream.push(null);
    let peak = before;
    const watch = setInterval(() => {
      peak = Math.max(peak, nativeExec.grownPipePages());
    }, 5);
    setTimeout(() => {
      slow = false;
    }, 300);
    await run.done;
    clearInterval(watch);
    expect(Buffer.concat(received).equals(sent)).toBe(true);
    // Two pipes grown from 64 KiB to 256 KiB: 48 extra pages each.
    expect(peak - before).toBe(96);
    await new Promise((r) => setTimeout(r, 50));
    expect(nativeExec.grownPipePages()).toBe(before);
  });

  it('growPipe leaves a socket that is no pipe alone', async () => {
    const run = await nativeExec.spawnHandOver({ argv: ['true'], env });
    expect(nativeExec.growPipe(run.input)).toBe(false);
    expect(nativeExec.grownPipePages()).toBe(0);
    run.input.destroy();
    run.output.destroy();
    await run.exited;
  });
});

describe.runIf(nativeExec.nativeSpawn)('hand-over and confinement (native addon)', () => {
  it("spawnHandOver leaves the program's early output unread, for the process it is sent to", async () => {
    const run = await nativeExec.spawnHandOver({ argv: ['sh', '-c', 'printf early; cat'], env });
    await new Promise((r) => setTimeout(r, 200));
    // Nothing was read into this process: a handle sent now carries every byte with it.
    expect(run.output.readableLength).toBe(0);
    const out: Buffer[] = [];
    run.output.on('data', (b: Buffer) => out.push(b));
    run.output.resume(); // created paused: a 'data' listener alone does not start it
    const ended = new Promise((r) => run.output.once('end', r));
    run.input.end('later');
    await ended;
    expect(Buffer.concat(out).toString()).toBe('earlylater');
    expect((await run.exited).code).toBe(0);
  });

  it('jail() names the step that failed and skips nothing', () => {
    expect(() => nativeExec.jail({ root: '/no/such/dir' })).toThrow(
      expect.objectContaining({
        code: 'UCSPI_ERR_EXEC_JAIL',
        message: 'unable to chroot to /no/such/dir: ENOENT',
      }),
    );
  });
});

it('spawnHandOver without the native addon fails loudly instead of reading the channels', async () => {
  await expect(fallbackExec.spawnHandOver({ argv: ['true'], env })).rejects.toMatchObject({
    code: 'UCSPI_ERR_EXEC_SPAWN',
  });
});

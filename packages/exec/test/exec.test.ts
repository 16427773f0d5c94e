import { readdirSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnOnSocket, spawnPumped, spawnUcspiTls } from '../src/index.js';

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

/** Listen on 127.0.0.1:0 and hand each accepted socket to onSocket. */
function listen(onSocket: (s: Socket) => void, allowHalfOpen = true): Promise<number> {
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

describe('spawnOnSocket', () => {
  it('gives the program the socket as fd 0 and 1 and reports the exit status', async () => {
    let status: Promise<{ code: number | null; wstat: number }> | undefined;
    const port = await listen((s) => {
      status = spawnOnSocket(s, { argv: ['sh', '-c', 'cat; echo done; exit 3'], env }).exited;
    });
    const out = await exchange(port, 'hello\n');
    expect(out.toString()).toBe('hello\ndone\n');
    expect(await status).toMatchObject({ code: 3, wstat: 768 });
  });

  it('reports a program that cannot be run as exit 111', async () => {
    let status: Promise<{ code: number | null }> | undefined;
    const port = await listen((s) => {
      status = spawnOnSocket(s, { argv: ['/nonexistent/prog'], env }).exited;
    });
    await exchange(port, '');
    expect((await status)?.code).toBe(111);
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

  it('half-close: the peer still gets output written after its EOF, banner first', async () => {
    const port = await listen((s) => {
      spawnPumped(s, { argv: ['sh', '-c', 'cat >/dev/null; sleep 0.2; echo later'], env }, { banner: 'B:' });
    });
    const out = await exchange(port, 'ignored');
    expect(out.toString()).toBe('B:later\n');
  });

  it('idle timeout closes a silent connection', async () => {
    let done: Promise<void> | undefined;
    const port = await listen((s) => {
      const r = spawnPumped(s, { argv: ['sleep', '5'], env }, { idleTimeoutMs: 200 });
      done = r.done;
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
      const r = spawnPumped(s, { argv: ['cat'], env });
      runs.push(r.done);
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
    const port = await listen((s) => {
      const r = spawnUcspiTls(s, {
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

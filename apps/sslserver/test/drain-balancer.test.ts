// A rolling restart behind Debian's HAProxy (TCP mode, health checks, redispatch): one of two
// sslservers is sent TERM during a stream of short TLS connections and while long ones are in
// progress on it; no client sees an error and every byte comes back as sent.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { freePort, startHaproxy, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Running, startServer, stopAll } from './_helpers.js';

const binDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin');
const tmp = tempDir();
afterAll(() => tmp.cleanup());
const balancers: ChildProcess[] = [];
afterEach(async () => {
  await stopAll();
  for (const b of balancers.splice(0)) {
    b.kill('SIGKILL');
    if (b.exitCode === null && b.signalCode === null) await once(b, 'exit');
  }
});

/** An sslserver whose program says which instance it is (`name`), then echoes. */
function instance(name: string): Promise<Running> {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: tmp.path, DRAINTIMEOUT: '30' };
  delete env.CERTFILE;
  delete env.KEYFILE;
  return startServer(
    process.execPath,
    [join(binDir, 'sslserver.js'), '-1', '-v', '127.0.0.1', '0', 'sh', '-c', `echo ${name}; exec cat`],
    env,
  );
}

/**
 * HAProxy in front of `backends`: round robin, a TCP health check every 100 ms, and a refused
 * connection retried on the other server (`option redispatch 1`).
 */
async function haproxy(backends: number[]): Promise<number> {
  const front = await freePort();
  const section = [
    `listen front\n  bind 127.0.0.1:${front}\n  balance roundrobin\n  retries 3\n  option redispatch 1`,
    ...backends.map((p, i) => `  server s${i} 127.0.0.1:${p} check inter 100ms fall 1 rise 1`),
  ];
  balancers.push(await startHaproxy(tmp.path, section, [front]));
  return front;
}

/** One TLS connection: sends `input`, half-closes, resolves with the whole answer at a clean end. */
function exchange(port: number, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = tlsConnect({
      port,
      host: '127.0.0.1',
      rejectUnauthorized: false,
      allowHalfOpen: true,
    } as ConnectionOptions);
    const out: Buffer[] = [];
    c.on('data', (b: Buffer) => out.push(b));
    c.on('error', reject);
    c.on('end', () => {
      c.end();
      resolve(Buffer.concat(out));
    });
    c.once('secureConnect', () => c.end(input));
  });
}

/** A long connection: open, the instance's name read; `finish` sends `input` and reads the rest. */
async function longConnection(
  port: number,
): Promise<{ name: string; finish: (input: Buffer) => Promise<Buffer> }> {
  const c: TLSSocket = tlsConnect({
    port,
    host: '127.0.0.1',
    rejectUnauthorized: false,
    allowHalfOpen: true,
  } as ConnectionOptions);
  const out: Buffer[] = [];
  let failed: Error | undefined;
  c.on('error', (err) => {
    failed = err;
  });
  const name = await new Promise<string>((resolve, reject) => {
    c.on('data', (b: Buffer) => {
      out.push(b);
      const text = Buffer.concat(out).toString('latin1');
      if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')));
    });
    c.once('error', reject);
  });
  return {
    name,
    finish: (input) =>
      new Promise((resolve, reject) => {
        if (failed) return reject(failed);
        c.once('error', reject);
        c.once('end', () => {
          c.end();
          resolve(Buffer.concat(out).subarray(name.length + 1));
        });
        c.end(input);
      }),
  };
}

describe.runIf(toolAvailable('haproxy'))('a rolling restart behind HAProxy', () => {
  it('one of two instances is sent TERM: no connection that had started is lost or corrupted', async () => {
    const a = await instance('A');
    const b = await instance('B');
    const front = await haproxy([a.port, b.port]);
    const served = { A: 0, B: 0 } as Record<string, number>;
    const errors: string[] = [];
    let n = 0;
    let stopping = false;
    // Two clients in a loop, each exchange checked byte for byte.
    const stream = async () => {
      while (!stopping) {
        const i = n++;
        const msg = Buffer.from(`message ${i}\n`);
        try {
          const got = await exchange(front, msg);
          const name = got.subarray(0, 2).toString();
          if (!['A\n', 'B\n'].includes(name) || !got.subarray(2).equals(msg))
            errors.push(`${i}: got ${JSON.stringify(got.toString())}`);
          else served[name[0]!]!++;
        } catch (err) {
          errors.push(`${i}: ${(err as Error).message}`);
        }
      }
    };
    const clients = [stream(), stream()];
    await a.waitLogCount(/^sslserver: ended by \d+ status 0$/gm, 10);
    // Long connections until one is on A (round robin: within a few).
    const longs: Array<Awaited<ReturnType<typeof longConnection>>> = [];
    while (!longs.some((l) => l.name === 'A')) longs.push(await longConnection(front));
    a.proc.kill('SIGTERM');
    await a.waitLog(/^sslserver: draining \d+ connections$/m);
    const big = Buffer.alloc(2 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 11)) & 0xff;
    for (const l of longs) expect((await l.finish(big)).equals(big)).toBe(true);
    expect(
      await new Promise((r) => (a.proc.exitCode !== null ? r(a.proc.exitCode) : a.proc.once('exit', r))),
    ).toBe(0);
    // The stream goes on with B alone for a while.
    const bAfter = served.B! + 20;
    await b.waitLogCount(/^sslserver: ended by \d+ status 0$/gm, bAfter);
    stopping = true;
    await Promise.all(clients);
    expect(errors).toEqual([]);
    expect(served.A).toBeGreaterThanOrEqual(10);
    expect(a.stderr()).not.toMatch(/ending \d+ connections/);
  }, 60_000);
});

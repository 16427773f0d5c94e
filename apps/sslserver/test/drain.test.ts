// A TERM that drains: the port refuses at once, a transfer in progress finishes byte for byte,
// what is left at DRAINTIMEOUT is ended visibly (a reset, the program killed), a second TERM ends
// it at once, and tcpserver exits at once while its program goes on serving, as the original.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { run, tempDir } from '@ucspi/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Running, startServer, stopAll } from './_helpers.js';

const binDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin');
const cacheDir = tempDir();
afterAll(() => cacheDir.cleanup());
afterEach(stopAll);

function start(bin: 'sslserver' | 'tcpserver', args: string[], extra: NodeJS.ProcessEnv = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheDir.path };
  delete env.CERTFILE;
  delete env.KEYFILE;
  delete env.DRAINTIMEOUT;
  Object.assign(env, extra);
  return startServer(process.execPath, [join(binDir, `${bin}.js`), ...args], env);
}

/** A client of `cat` behind the server: connected, and one line echoed (the program runs). */
async function echoing(
  port: number,
  tls: boolean,
): Promise<{ socket: Socket; received: () => Buffer; until: (n: number) => Promise<void> }> {
  const socket = tls
    ? tlsConnect({
        port,
        host: '127.0.0.1',
        rejectUnauthorized: false,
        allowHalfOpen: true,
      } as ConnectionOptions)
    : connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const chunks: Buffer[] = [];
  let got = 0;
  socket.on('data', (b: Buffer) => {
    chunks.push(b);
    got += b.length;
  });
  /** Resolves once `n` bytes in all have come back. */
  const until = (n: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (got < n) return;
        socket.off('data', check);
        resolve();
      };
      socket.on('data', check);
      socket.once('error', reject);
      check();
    });
  socket.write('hello\n');
  await until(6);
  return { socket, received: () => Buffer.concat(chunks), until };
}

/** How the client's connection ended: `end` (a clean end) or the error's code. */
function outcome(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    socket.once('end', () => resolve('end'));
  });
}

/** A connection attempt's result: `connected` or the error's code. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = connect({ port, host: '127.0.0.1' });
    c.once('connect', () => {
      c.destroy();
      resolve('connected');
    });
    c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** The server's exit code (bounded by the test's timeout). */
function exitOf(s: Running): Promise<number | null> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return Promise.resolve(s.proc.exitCode);
  return once(s.proc, 'exit').then(([code]) => code as number | null);
}

describe('sslserver drains on TERM', () => {
  it('refuses new connections at once and lets a long transfer finish byte for byte, then exits 0', async () => {
    const s = await start('sslserver', ['-1', '-v', '127.0.0.1', '0', 'cat']);
    const client = await echoing(s.port, true);
    s.proc.kill('SIGTERM');
    await s.waitLog(/^sslserver: draining 1 connections$/m);
    expect(await tryConnect(s.port)).toBe('ECONNREFUSED');
    // 8 MiB through the TLS pump after TERM, echoed back in full.
    const big = Buffer.alloc(8 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 13)) & 0xff;
    const ended = outcome(client.socket);
    client.socket.end(big);
    expect(await ended).toBe('end');
    const got = client.received();
    expect(got.length).toBe(6 + big.length);
    expect(got.subarray(6).equals(big)).toBe(true);
    expect(await exitOf(s)).toBe(0);
    expect(s.stderr()).toMatch(/^sslserver: ended by \d+ status 0$/m);
    expect(s.stderr()).not.toMatch(/ending \d+ connections/);
  });

  it('ends a connection still open at the deadline with a reset and kills its program', async () => {
    const s = await start('sslserver', ['-1', '-v', '127.0.0.1', '0', 'cat'], { DRAINTIMEOUT: '1' });
    const client = await echoing(s.port, true);
    const pid = Number(s.stderr().match(/^sslserver: ok (\d+) /m)?.[1]);
    expect(pid).toBeGreaterThan(0);
    const ended = outcome(client.socket);
    s.proc.kill('SIGTERM');
    // The client sees an error, never the clean end of a truncated stream.
    expect(await ended).toBe('ECONNRESET');
    expect(await exitOf(s)).toBe(0);
    expect(s.stderr()).toMatch(/^sslserver: warning: drain deadline passed, ending 1 connections$/m);
    // cat ended by SIGTERM: wait status 15.
    expect(s.stderr()).toMatch(new RegExp(`^sslserver: ended by ${pid} status 15$`, 'm'));
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('a second TERM ends the connections left at once', async () => {
    // The default deadline (25 s) would outlast this test's bound.
    const s = await start('sslserver', ['-1', '-v', '127.0.0.1', '0', 'cat']);
    const client = await echoing(s.port, true);
    const ended = outcome(client.socket);
    const t0 = Date.now();
    s.proc.kill('SIGTERM');
    await s.waitLog(/^sslserver: draining 1 connections$/m);
    // The connection is still served between the two TERMs.
    client.socket.write('again\n');
    await client.until(12);
    s.proc.kill('SIGTERM');
    expect(await ended).toBe('ECONNRESET');
    expect(await exitOf(s)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(s.stderr()).toMatch(/^sslserver: warning: ending 1 connections$/m);
  }, 20_000);

  it('with nothing in progress exits at once; DRAINTIMEOUT=0 ends connections at once', async () => {
    const idle = await start('sslserver', ['-1', '-v', '127.0.0.1', '0', 'cat']);
    idle.proc.kill('SIGTERM');
    expect(await exitOf(idle)).toBe(0);
    expect(idle.stderr()).not.toMatch(/draining/);

    const s = await start('sslserver', ['-1', '-v', '127.0.0.1', '0', 'cat'], { DRAINTIMEOUT: '0' });
    const client = await echoing(s.port, true);
    const ended = outcome(client.socket);
    s.proc.kill('SIGTERM');
    expect(await ended).toBe('ECONNRESET');
    expect(await exitOf(s)).toBe(0);
    expect(s.stderr()).toMatch(/^sslserver: warning: ending 1 connections$/m);
  });

  it('a bad DRAINTIMEOUT is refused at start with exit 100, by both servers', async () => {
    for (const bin of ['sslserver', 'tcpserver'] as const) {
      const bad = await run(process.execPath, [join(binDir, `${bin}.js`), '-1', '127.0.0.1', '0', 'cat'], {
        env: { ...process.env, XDG_CACHE_HOME: cacheDir.path, DRAINTIMEOUT: '5s' },
      });
      expect(bad.code).toBe(100);
      expect(bad.stderr.toString()).toMatch(
        new RegExp(`^${bin}: fatal: DRAINTIMEOUT must be a whole number of seconds, not 5s$`, 'm'),
      );
    }
  });
});

describe.runIf(process.getuid?.() === 0)('sslserver with its TLS handler (SSL_UID, SSL_GID)', () => {
  it('drains through the handler and ends what is left at the deadline with a reset', async () => {
    const jailed = { SSL_UID: '65534', SSL_GID: '65534' };
    const s = await start('sslserver', ['-1', '-v', '-l', 'localhost', '127.0.0.1', '0', 'cat'], {
      ...jailed,
      DRAINTIMEOUT: '2',
    });
    const finishing = await echoing(s.port, true);
    const lingering = await echoing(s.port, true);
    const ended = outcome(lingering.socket);
    s.proc.kill('SIGTERM');
    await s.waitLog(/^sslserver: draining 2 connections$/m);
    expect(await tryConnect(s.port)).toBe('ECONNREFUSED');
    // One finishes in time, through the handler's pump.
    const done = outcome(finishing.socket);
    finishing.socket.end('bye\n');
    expect(await done).toBe('end');
    expect(finishing.received().toString()).toBe('hello\nbye\n');
    // The other is ended at the deadline: a reset, not a clean end.
    expect(await ended).toBe('ECONNRESET');
    expect(await exitOf(s)).toBe(0);
    expect(s.stderr()).toMatch(/^sslserver: warning: drain deadline passed, ending 1 connections$/m);
  });
});

describe('tcpserver on TERM', () => {
  it('exits at once and its program, which owns the socket, goes on serving', async () => {
    const s = await start('tcpserver', ['-1', '-v', '127.0.0.1', '0', 'cat'], { DRAINTIMEOUT: '30' });
    const client = await echoing(s.port, false);
    s.proc.kill('SIGTERM');
    // Not held by the 30 s deadline: the connection is the program's, as with ucspi-tcp.
    expect(await exitOf(s)).toBe(0);
    expect(s.stderr()).not.toMatch(/draining/);
    expect(await tryConnect(s.port)).toBe('ECONNREFUSED');
    const ended = outcome(client.socket);
    client.socket.end('after\n');
    expect(await ended).toBe('end');
    expect(client.received().toString()).toBe('hello\nafter\n');
  });

  it('drains a connection it pumps (PROXYPROTO, client bytes with the header)', async () => {
    const s = await start('tcpserver', ['-1', '-v', '127.0.0.1', '0', 'cat'], { PROXYPROTO: '1' });
    const c = connect({ port: s.port, host: '127.0.0.1', allowHalfOpen: true });
    let got = '';
    const first = new Promise<void>((resolve) =>
      c.on('data', (b: Buffer) => {
        got += b.toString();
        if (got.includes('\n')) resolve();
      }),
    );
    // The header and the first line in one write: the program reads through pipes.
    c.write(`PROXY TCP4 192.0.2.1 127.0.0.1 5000 ${s.port}\r\nhello\n`);
    await first;
    const ended = outcome(c);
    s.proc.kill('SIGTERM');
    await s.waitLog(/^tcpserver: draining 1 connections$/m);
    c.end('after\n');
    expect(await ended).toBe('end');
    expect(got).toBe('hello\nafter\n');
    expect(await exitOf(s)).toBe(0);
    expect(s.stderr()).toMatch(/^tcpserver: end \d+ status 0$/m);
  });
});

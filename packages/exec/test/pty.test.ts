// spawnPumped's `pty: true`: the program on a new pseudo terminal (its controlling terminal, in a
// session of its own), the terminal's master relayed by the addon's thread and pumped to a real TCP
// connection on loopback. Without the addon the option is refused.
import { readdirSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { waitUntil } from '@ucspi/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as nativeExec from '../src/index.js';

process.env.UCSPI_EXEC_NATIVE = '0';
vi.resetModules();
const fallbackExec = (await import('../src/index.js')) as typeof nativeExec;
delete process.env.UCSPI_EXEC_NATIVE;

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
type Run = Awaited<ReturnType<typeof nativeExec.spawnPumped>>;

let server: Server | undefined;
const clients: Socket[] = [];
afterEach(() => {
  server?.close();
  server = undefined;
  for (const c of clients.splice(0)) c.destroy();
});

/**
 * A connection whose server side runs `argv` on a terminal; resolves with the run and the client
 * socket (reading everything into `out()`).
 */
async function onPty(
  argv: string[],
): Promise<{ run: Run; client: Socket; peer: Socket; out: () => string; ended: Promise<void> }> {
  let peer: Socket | undefined;
  const started = new Promise<Run>((resolve, reject) => {
    server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
      peer = socket;
      nativeExec.spawnPumped(socket, { argv, env }, { pty: true }).then(resolve, reject);
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const port = (server!.address() as { port: number }).port;
  const client = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  clients.push(client);
  const chunks: Buffer[] = [];
  client.on('data', (b: Buffer) => chunks.push(b));
  const ended = new Promise<void>((r) => client.once('end', () => r()));
  const run = await started;
  return { run, client, peer: peer!, out: () => Buffer.concat(chunks).toString('latin1'), ended };
}

/** Within `ms`, or fail naming what was awaited. */
function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe.runIf(nativeExec.canSpawnPty)('spawnPumped with pty: true', () => {
  it('runs the program on a terminal that is its controlling terminal, in a session of its own', async () => {
    const script = [
      'tty',
      'test -t 0 && echo stdin-tty',
      'test -t 1 && echo stdout-tty',
      // The session id (field 6 of /proc/PID/stat) is its own pid: a session leader.
      'set -- $(cut -d" " -f6,7 /proc/$$/stat)',
      '[ "$1" = $$ ] && echo leader',
      // A controlling terminal: tty_nr (field 7) is not 0, and /dev/tty opens.
      '[ "$2" != 0 ] && : </dev/tty && echo ctty',
      'printf "no newline at the end"',
    ].join('\n');
    const { run, client, out, ended } = await onPty(['sh', '-c', script]);
    expect(run.tty).toMatch(/^\/dev\/pts\/\d+$/);
    // The program's end ends the connection, with everything it wrote delivered.
    await within(ended, 'the end of the connection');
    client.end();
    const status = await within(run.exited, 'the exit');
    await within(run.done, 'the pump');
    expect(status.code).toBe(0);
    // The terminal's default settings (as stunnel leaves them): \n is written as \r\n.
    expect(out()).toBe(`${run.tty}\r\nstdin-tty\r\nstdout-tty\r\nleader\r\nctty\r\nno newline at the end`);
  });

  it('passes input through the terminal (echo, canonical lines) and a large output whole', async () => {
    const { run, client, out, ended } = await onPty([
      'sh',
      '-c',
      'read line; echo "got $line"; seq 1 30000; echo done',
    ]);
    client.write('hello\n');
    await within(ended, 'the end of the connection');
    client.end();
    expect((await within(run.exited, 'the exit')).code).toBe(0);
    const text = out();
    // The terminal echoes the line (hello\r\n), then the program's answer.
    expect(text.startsWith('hello\r\ngot hello\r\n1\r\n2\r\n')).toBe(true);
    const numbers = text.split('\r\n').slice(2, -2);
    expect(numbers).toHaveLength(30000);
    expect(numbers.at(-1)).toBe('30000');
    expect(text.endsWith('30000\r\ndone\r\n')).toBe(true);
  });

  it("hangs the terminal up at the peer's EOF: the program gets SIGHUP and the connection ends", async () => {
    const { run, client, out, ended } = await onPty(['sh', '-c', 'echo ready; exec sleep 60']);
    await within(
      new Promise<void>((r) => {
        const check = () => (out().includes('ready\r\n') ? r() : client.once('data', check));
        check();
      }),
      'ready',
    );
    client.end();
    const status = await within(run.exited, 'the exit');
    expect(status.signal).toBe('SIGHUP');
    await within(ended, 'the end of the connection');
    await within(run.done, 'the pump');
  });

  it('does not stall when the program never reads: the connection is paused instead', async () => {
    const { run, client, peer } = await onPty(['sleep', '60']);
    // 16 MiB into a terminal nobody reads: the relay waits on the terminal, the pump pauses the
    // connection once 256 KiB wait for the program, and the rest stays in the socket buffers and
    // with the client.
    client.write(Buffer.alloc(16 * 1024 * 1024, 'x'));
    await waitUntil(() => peer.bytesRead > 256 * 1024 && peer.isPaused(), 10_000);
    expect(peer.bytesRead).toBeLessThan(2 * 1024 * 1024);
    expect(client.writableLength).toBeGreaterThan(0);
    // The event loop is alive: a timer fires at once.
    await within(new Promise((r) => setTimeout(r, 1)), 'a timer', 1000);
    run.kill('SIGKILL');
    expect((await within(run.exited, 'the exit')).signal).toBe('SIGKILL');
    client.destroy();
    await within(run.done, 'the pump');
  });

  it('leaks no descriptor and no thread over many sessions', async () => {
    const count = (dir: string) => readdirSync(dir).length;
    const fds = count('/proc/self/fd');
    const threads = count('/proc/self/task');
    for (let i = 0; i < 20; i++) {
      const { run, client, ended } = await onPty(['sh', '-c', 'echo x']);
      await within(ended, 'the end of the connection');
      client.end();
      await within(run.done, 'the pump');
      server?.close();
    }
    // Each relay thread closes its descriptors and exits once its pipes are closed.
    await waitUntil(() => count('/proc/self/fd') <= fds && count('/proc/self/task') <= threads, 10_000);
  });

  it('a program that cannot be executed exits 111 with the reason, on a terminal too', async () => {
    const { run, client, ended } = await onPty(['/nonexistent/program']);
    const status = await within(run.exited, 'the exit');
    expect(status.code).toBe(111);
    expect(status.error?.code).toBe('ENOENT');
    await within(ended, 'the end of the connection');
    client.end();
    await within(run.done, 'the pump');
  });
});

describe('without the native addon', () => {
  it('refuses pty: true (UCSPI_ERR_EXEC_SPAWN, permanent) instead of running without a terminal', async () => {
    expect(fallbackExec.canSpawnPty).toBe(false);
    const { PassThrough, Duplex } = await import('node:stream');
    const stream = Duplex.from({ readable: new PassThrough(), writable: new PassThrough() });
    const err = await fallbackExec
      .spawnPumped(stream, { argv: ['sh', '-c', 'exit 0'], env }, { pty: true })
      .then(
        () => undefined,
        (e: unknown) => e as { code?: string; temporary?: boolean; message: string },
      );
    expect(err?.code).toBe('UCSPI_ERR_EXEC_SPAWN');
    expect(err?.temporary).toBe(false);
    expect(err?.message).toMatch(/pseudo terminal \(pty\) needs the native addon/);
    // The same call without pty runs (the refusal is the option's, not the fallback's).
    const run = await fallbackExec.spawnPumped(
      Duplex.from({ readable: new PassThrough().end(), writable: new PassThrough().resume() }),
      { argv: ['sh', '-c', 'exit 3'], env },
    );
    expect((await run.exited).code).toBe(3);
  });
});

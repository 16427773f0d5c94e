// Helpers shared by the server tests: start a server that prints its port (-1), talk to it over
// TCP or TLS with a half-close, and stop everything that was started.
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { type LogWatch, watchLog } from '@ucspi/testkit';
import { expect } from 'vitest';

export interface Running {
  proc: ChildProcess;
  port: number;
  stderr: () => string;
  /** Wait until the server's stderr so far matches a pattern (a log line, a status). */
  waitLog: LogWatch['waitFor'];
  waitLogCount: LogWatch['waitForCount'];
  stop: () => Promise<number | null>;
}

const running: Running[] = [];

/** Stop every server started since the last call (use in afterEach). */
export async function stopAll(): Promise<void> {
  for (const r of running.splice(0)) await r.stop();
}

/** Start a server (ours or Debian's) run with -1 and wait for the port line. */
export function startServer(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Running> {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    const log = watchLog(proc.stderr!);
    const err = () => log.text();
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`no port from ${cmd}: ${err()}`));
    }, 15_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      if (!out.includes('\n')) reject(new Error(`${cmd} exited ${code}: ${err()}`));
    });
    proc.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        clearTimeout(timer);
        const exited = new Promise<number | null>((r) => {
          if (proc.exitCode !== null || proc.signalCode !== null) r(proc.exitCode);
          else proc.once('exit', (code) => r(code));
        });
        const r: Running = {
          proc,
          port: Number(line),
          stderr: err,
          waitLog: log.waitFor,
          waitLogCount: log.waitForCount,
          stop: () => {
            proc.kill('SIGTERM');
            // A process that does not end on SIGTERM within 5 s (a program started with the signal
            // blocked, as Node.js's child_process.spawn sometimes does here) is killed: a test may
            // fail, never hang.
            const hard = setTimeout(() => proc.kill('SIGKILL'), 5000);
            return exited.finally(() => clearTimeout(hard));
          },
        };
        running.push(r);
        resolve(r);
      }
    });
  });
}

/** Connect, send input, half-close, return all output. */
export function talk(port: number, input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let out = '';
    c.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.on('error', reject);
    c.on('close', () => resolve(out));
    c.on('end', () => c.end());
    c.end(input);
  });
}

/** TLS connect, send input, half-close, return everything until the server's close_notify/FIN. */
export function talkTls(port: number, input: Buffer | string = ''): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen is passed on to the TLSSocket, although @types/node's ConnectionOptions omits it.
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

/**
 * A TLS client that reads everything the server sends and its end (close_notify, FIN), then stays
 * silent, never ending its own side. Resolves at the server's end with what was read; `refused`
 * resolves once the server has let go of the connection (the client's writes, sent every 20 ms
 * from `probe()` on, meet a reset).
 */
export async function silentClient(port: number): Promise<{ out: string; probe: () => Promise<void> }> {
  const c = tlsConnect({
    port,
    host: '127.0.0.1',
    rejectUnauthorized: false,
    allowHalfOpen: true,
  } as ConnectionOptions);
  let out = '';
  c.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const gone = new Promise<void>((resolve) => {
    c.on('error', () => resolve());
    c.on('close', () => resolve());
  });
  await new Promise<void>((resolve) => c.once('end', () => resolve()));
  return {
    out,
    probe: () => {
      const writes = setInterval(() => c.write('late\n'), 20);
      return gone.finally(() => clearInterval(writes));
    },
  };
}

/**
 * The close deadline seen from a client (CLOSETIMEOUT=1 on the server `s`): it reads `expected`
 * and the server's end, stays silent, and the server lets go of it after the deadline (its end
 * line and the free slot in the log, then a reset for what the client still sends).
 */
export async function expectLetGoWhenSilent(s: Running, expected: string): Promise<void> {
  const client = await silentClient(s.port);
  const t0 = Date.now();
  expect(client.out).toBe(expected);
  await s.waitLog(/sslserver: ended by \d+ status 0\nsslserver: status 0\/40\/0\n$/, 5000);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  await client.probe();
}

// Helpers of the tunnel's tests: start ucspi-tunnel (or Debian's stunnel4) on a configuration
// written to a temporary folder and wait for its log; plain backends; TLS and plain clients.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { binPath, type LogWatch, type ProcessResult, run, watchLog } from '@ucspi/testkit';

export const TUNNEL = binPath('apps/tunnel', 'ucspi-tunnel');

export interface Running {
  proc: ChildProcess;
  log: LogWatch;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

const running: Running[] = [];
const servers: Server[] = [];

/** Stop everything started since the last call (afterEach). */
export async function stopAll(): Promise<void> {
  for (const r of running.splice(0)) await r.stop();
  for (const s of servers.splice(0)) s.close();
}

/** Write `text` as `name` in `dir`; returns the path. */
export function writeConfig(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Start a daemon (`node TUNNEL FILE` or `stunnel4 FILE`) and wait until `ready` shows in its log. */
export async function startDaemon(
  cmd: 'ucspi-tunnel' | 'stunnel4',
  config: string,
  ready: RegExp | null = /Accepting new connections/,
): Promise<Running> {
  const [file, args] = cmd === 'stunnel4' ? ['stunnel4', [config]] : [process.execPath, [TUNNEL, config]];
  const proc = spawn(file as string, args as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = watchLog(proc.stderr!);
  proc.stdout!.resume();
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const r: Running = {
    proc,
    log,
    exited,
    stop: (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const hard = setTimeout(() => proc.kill('SIGKILL'), 5000);
      return exited.finally(() => clearTimeout(hard));
    },
  };
  running.push(r);
  if (ready === null) return r;
  await Promise.race([
    log.waitFor(ready, 15_000),
    exited.then((code) => {
      throw new Error(`${cmd} exited ${code}: ${log.text()}`);
    }),
  ]);
  return r;
}

/** A plain backend on 127.0.0.1: `answer` gets what the client sent (after its end) and returns the reply. */
export async function backend(
  answer: (input: string, socket: Socket) => string = (s) => s.toUpperCase(),
  /** Answer the first chunk at once and close, instead of waiting for the client's end. */
  firstChunk = false,
): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    n++;
    let input = '';
    socket.on('data', (b: Buffer) => {
      input += b.toString();
      if (firstChunk) socket.end(answer(input, socket));
    });
    socket.on('error', () => undefined);
    socket.on('end', () => socket.end(answer(input, socket)));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, connections: () => n };
}

/** TLS client: send `input`, half-close, read until the server's end. */
export function tlsTalk(port: number, input: string, options: ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = tlsConnect({
      port,
      host: '127.0.0.1',
      rejectUnauthorized: false,
      allowHalfOpen: true,
      ...options,
    } as ConnectionOptions);
    let out = '';
    c.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.on('error', reject);
    c.on('end', () => {
      c.end();
      resolve(out);
    });
    c.once('secureConnect', () => c.end(input));
  });
}

/** Plain client: send `input`, half-close, read everything until the close. */
export function plainTalk(port: number, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let out = '';
    c.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.on('error', reject);
    c.on('end', () => c.end());
    c.on('close', () => resolve(out));
    c.end(input);
  });
}

/** Plain client that does not end its side: send `input`, resolve with everything until the server's end. */
export function plainAsk(port: number, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let out = '';
    c.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.on('error', reject);
    c.on('end', () => {
      c.end();
      resolve(out);
    });
    c.write(input);
  });
}

/** TERM a helper process and wait until it is reaped (KILL after 5 s). */
export function reap(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  const gone = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const hard = setTimeout(() => proc.kill('SIGKILL'), 5000);
  return gone.finally(() => clearTimeout(hard));
}

/**
 * openssl s_client speaking `proto` (smtp, pop3, imap) to a tunnel on 127.0.0.1:`port` with
 * STARTTLS, verifying against `caFile`: `input` in CRLF lines, the answers after TLS on stdout.
 */
export function opensslStartTls(
  port: number,
  proto: string,
  caFile: string,
  input: string,
  verifyReturnError = true,
): Promise<ProcessResult> {
  const args = [
    's_client',
    '-connect',
    `127.0.0.1:${port}`,
    '-starttls',
    proto,
    '-quiet',
    '-crlf',
    '-CAfile',
    caFile,
  ];
  return run('openssl', verifyReturnError ? [...args, '-verify_return_error'] : args, { input });
}

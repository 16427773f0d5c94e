// Helpers of the tcpclient tests: start a real server (Debian's tcpserver, openssl s_server, our
// sslserver) and wait for its ready line, run our tcpclient or Debian's, stop everything.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ProcessResult, run, waitForLine } from '@ucspi/testkit';

const here = dirname(fileURLToPath(import.meta.url));
export const tcpclientBin = join(here, '..', 'dist', 'bin', 'tcpclient.js');
export const sslserverBin = join(here, '..', '..', 'sslserver', 'dist', 'bin', 'sslserver.js');

/** A server process and what it printed. */
export interface Server {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** The first match of the ready pattern (e.g. the port from -1). */
  ready: RegExpMatchArray;
}

const started: Server[] = [];

/** Start `cmd` and wait (10 s at most) for a line of its stdout or stderr matching `ready`. */
export async function startServer(
  cmd: string,
  args: readonly string[],
  ready: RegExp,
  opts: { env?: NodeJS.ProcessEnv; stream?: 'stdout' | 'stderr' } = {},
): Promise<Server> {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  proc.stderr!.on('data', (b: Buffer) => {
    err += b.toString();
  });
  const server: Server = {
    proc,
    stdout: () => out,
    stderr: () => err,
    ready: [] as unknown as RegExpMatchArray,
  };
  started.push(server);
  server.ready = await waitForLine(opts.stream === 'stderr' ? proc.stderr! : proc.stdout!, ready, 10_000);
  return server;
}

/** Stop every server started since the last call (SIGTERM, SIGKILL after 5 s) and reap it. */
export async function stopServers(): Promise<void> {
  await Promise.all(
    started.splice(0).map(
      ({ proc }) =>
        new Promise<void>((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
          const hard = setTimeout(() => proc.kill('SIGKILL'), 5000);
          proc.once('exit', () => {
            clearTimeout(hard);
            resolve();
          });
          proc.kill('SIGTERM');
        }),
    ),
  );
}

/** Run our tcpclient. */
export function tcpclient(
  args: readonly string[],
  opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ProcessResult> {
  return run(process.execPath, [tcpclientBin, ...args], { timeoutMs: 20_000, ...opts });
}

/** The environment of the tests: no indimail files, no TLS variables of the machine. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CERTDIR: '/nonexistent/certs', ...extra };
  for (const k of ['TLS_CERTFILE', 'SERVERCA', 'SERVERCRL', 'TLS_CIPHER_LIST', 'TLS_CIPHER_SUITE'])
    if (!(k in extra)) delete env[k];
  return env;
}

/** `NAME=value` lines of a program's `env` output whose names match `pattern`, sorted. */
export function envLines(text: string, pattern: RegExp): string[] {
  return text
    .split('\n')
    .filter((l) => pattern.test(l.split('=')[0] ?? ''))
    .sort();
}

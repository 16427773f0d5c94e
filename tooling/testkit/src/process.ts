import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What a finished process left behind. */
export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** Options of {@link run}. */
export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Bytes written to the child's stdin, which is then closed. */
  input?: string | Buffer;
  /** Kill the child (SIGKILL) after this many milliseconds; the promise then rejects. Default 20 s. */
  timeoutMs?: number;
}

/**
 * Run a command to completion with a hard time limit, collecting its output. The child is always
 * reaped: on timeout it is killed and the promise rejects with the output seen so far.
 */
export function run(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<ProcessResult> {
  const { env = process.env, cwd, input, timeoutMs = 20_000 } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {});
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${command} ${args.join(' ')}: timed out after ${timeoutMs} ms\nstdout: ${Buffer.concat(out)}\nstderr: ${Buffer.concat(err)}`,
        ),
      );
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
    child.stdin.end(input ?? '');
  });
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * Path of a built bin of this monorepo, e.g. `binPath('packages/rules', 'tcprules')` for
 * `packages/rules/dist/bin/tcprules.js`. Tests run after `tsc -b`, so dist exists.
 */
export function binPath(packageDir: string, bin: string): string {
  return join(repoRoot, packageDir, 'dist', 'bin', `${bin}.js`);
}

/** Run one of this monorepo's bins with the current Node.js. */
export function runBin(
  packageDir: string,
  bin: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<ProcessResult> {
  return run(process.execPath, [binPath(packageDir, bin), ...args], options);
}

// Starting a program with one descriptor per slot: the native spawner (a clone sharing memory until
// execve, off the event loop) or child_process.spawn, and reaping with the originals' exit statuses.
// The layouts servers use are in layouts.ts and client.ts; the byte pump in pump.ts; a program's
// pseudo terminal in pty.ts. A little over 300 lines: the two ways of starting share the slot
// handling and the run object, and split apart they would hand that state back and forth.
import { type ChildProcess, spawn } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import {
  FD_DEVNULL,
  FD_INHERIT,
  FD_TTY,
  handleFd,
  listenForChildren,
  native,
  watchChild,
} from './_native.js';
import { ExecError, systemError } from './errors.js';
import { closeTty, type OpenedTty, openTty, startTtyRelay, type TtyEnds } from './pty.js';

const spawnChannel = diagnostics.channel('ucspi:exec:spawn');
const exitChannel = diagnostics.channel('ucspi:exec:exit');

/** How a program ended. */
export interface ExitStatus {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  /** Signal name, or null when it exited. */
  signal: NodeJS.Signals | null;
  /**
   * The raw wait status as djb's tcpserver prints it in `end PID status N`:
   * exit code times 256, or the signal number (plus 128 when it dumped core).
   */
  wstat: number;
  /**
   * Set when the program could not be executed (`code` is then 111, as the originals' child exits
   * after `unable to run`): the system error, with `code` such as `ENOENT` or `EACCES`.
   */
  error?: NodeJS.ErrnoException;
}

/** A program started on a connection. */
export interface ChildRun {
  /** The program's process id (what `pid N from IP` logs). */
  readonly pid: number;
  /** Resolves once the program has been reaped. Never rejects. */
  readonly exited: Promise<ExitStatus>;
  /** Send a signal to the program (default SIGTERM); a no-op once it is reaped. */
  kill(signal?: NodeJS.Signals): void;
}

/** The program to run: argv[0] is looked up in PATH like execvp. */
export interface ProgramSpec {
  argv: readonly string[];
  /**
   * The program's whole environment: an object, or the `NAME=value` list execve takes (as
   * @ucspi/env's childEnvList builds it, the cheaper form for a server).
   */
  env: Record<string, string> | readonly string[];
  /** Where the program's stderr goes; default: inherited from the server (as the originals). */
  stderr?: 'inherit' | 'ignore' | number;
}

/** True when programs are started by the native spawner rather than child_process.spawn. */
export const nativeSpawn: boolean = native !== undefined;

/** Whether a program can be run on a pseudo terminal (`pty: true`): the native addon is loaded. */
export const canSpawnPty: boolean = native !== undefined;

/** The platform's number for a signal name (os.constants.signals). */
function signalNumber(signal: NodeJS.Signals): number {
  return (constants.signals as Record<string, number | undefined>)[signal] ?? 0;
}

/**
 * One descriptor of the program: a connection socket (given as is), a fresh channel whose other
 * end the server keeps (`'pipe'`: a bidirectional socketpair; `'in'`: a pipe the program reads;
 * `'out'`: a pipe the program writes), the server's own descriptor of that number (`'inherit'`),
 * /dev/null (`'ignore'`), a descriptor number of the server, or the slave of a new pseudo terminal
 * that becomes the program's controlling terminal in a session of its own (`'pty'`, native addon
 * only; the server's side comes back as {@link Started.tty}).
 */
export type Slot = Socket | 'pipe' | 'in' | 'out' | 'inherit' | 'ignore' | 'pty' | number;
const isChannel = (slot: Slot) => slot === 'pipe' || slot === 'in' || slot === 'out';

export interface Started {
  run: ChildRun;
  /** The server's end of each channel slot, by child descriptor number. */
  pipes: Array<Socket | undefined>;
  /** The server's side of the terminal, when a slot is `'pty'`. */
  tty?: TtyEnds;
}

/** The `NAME=value` list of an environment given either way. */
function envList(env: ProgramSpec['env']): readonly string[] {
  return Array.isArray(env)
    ? (env as readonly string[])
    : Object.entries(env as Record<string, string>).map(([k, v]) => `${k}=${v}`);
}

/** The environment as an object (what child_process takes). */
export function envObject(env: ProgramSpec['env']): Record<string, string> {
  if (!Array.isArray(env)) return env as Record<string, string>;
  const out: Record<string, string> = {};
  for (const entry of env as readonly string[]) {
    const eq = entry.indexOf('=');
    if (eq > 0) out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

/** One variable of an environment given either way. */
function envGet(env: ProgramSpec['env'], name: string): string | undefined {
  if (!Array.isArray(env)) return (env as Record<string, string>)[name];
  const prefix = `${name}=`;
  const entry = (env as readonly string[]).findLast((e) => e.startsWith(prefix));
  return entry?.slice(prefix.length);
}

/** execvp's candidates: argv[0] itself when it has a slash, else each PATH entry (djb's default PATH). */
function candidates(file: string, path: string | undefined): string[] {
  if (file.includes('/')) return [file];
  return (path ?? '/bin:/usr/bin').split(':').map((dir) => `${dir || '.'}/${file}`);
}

function finishRun(
  pid: number,
  argv: readonly string[],
  exited: Promise<ExitStatus>,
  kill: ChildRun['kill'],
) {
  if (spawnChannel.hasSubscribers) spawnChannel.publish({ pid, argv });
  if (exitChannel.hasSubscribers) exited.then((status) => exitChannel.publish({ pid, ...status }));
  return { pid, exited, kill };
}

/**
 * Start through the addon: a clone that shares memory until execve (see native/spawn.c), made on a
 * threadpool thread so that the event loop never waits for the execve. Undefined when a slot has
 * no descriptor to pass (the caller then uses child_process).
 */
function startNative(
  spec: ProgramSpec,
  slots: Slot[],
  unread: readonly number[] = [],
): Promise<Started> | undefined {
  const n = native!;
  const fds: number[] = [];
  for (const slot of slots) {
    if (slot instanceof Socket) {
      const fd = handleFd(slot);
      if (fd === undefined) return undefined;
      fds.push(fd);
    } else if (slot === 'inherit') fds.push(FD_INHERIT);
    else if (slot === 'ignore') fds.push(FD_DEVNULL);
    else if (typeof slot === 'number') fds.push(slot);
    else fds.push(-3); // a pipe, filled in below
  }
  const childEnds: number[] = [];
  const serverEnds: number[] = [];
  // The terminal (pty.ts): until its relay starts, all its descriptors are closed on failure.
  let tty: OpenedTty | undefined;
  const closeAll = (list: number[]) => {
    for (const fd of list) n.close(fd);
  };
  const [file] = spec.argv as [string];
  try {
    if (slots.includes('pty')) {
      tty = openTty(n);
      slots.forEach((slot, i) => {
        if (slot === 'pty') fds[i] = FD_TTY;
      });
    }
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      if (!isChannel(slot)) continue;
      // Real pipes for the program's input and output, as sslserver's own: they move bulk data
      // with less kernel work than socketpairs.
      const [a, b] = slot === 'pipe' ? n.socketpair() : n.pipe();
      const [mine, theirs] = slot === 'in' ? [b, a] : [a, b];
      serverEnds.push(mine);
      childEnds.push(theirs);
      fds[i] = theirs;
    }
    const envp = envList(spec.env);
    listenForChildren();
    return new Promise<Started>((resolve, reject) => {
      n.spawn(
        candidates(file, envGet(spec.env, 'PATH')),
        [...spec.argv],
        envp as string[],
        fds,
        (pid, errno) => {
          closeAll(childEnds);
          if (pid < 0) {
            closeAll(serverEnds);
            if (tty) closeTty(n, tty);
            const err = systemError(errno, 'execve', file);
            reject(new ExecError('UCSPI_ERR_EXEC_SPAWN', `unable to fork: ${err.code}`, true, err));
            return;
          }
          let ttyEnds: TtyEnds | undefined;
          if (tty) {
            // The child has the slave open (or has exited): the relay may start reading.
            try {
              ttyEnds = startTtyRelay(n, tty, file);
            } catch (err) {
              closeAll(serverEnds);
              // The program lost its terminal (SIGHUP); it is still reaped.
              watchChild(pid, () => {});
              reject(err);
              return;
            }
          }
          const pipes: Array<Socket | undefined> = [];
          let k = 0;
          for (let i = 0; i < slots.length; i++) {
            const slot = slots[i]!;
            if (!isChannel(slot)) continue;
            pipes[i] = new Socket({
              fd: serverEnds[k++]!,
              readable: slot !== 'in',
              writable: slot !== 'out',
              allowHalfOpen: true,
              // A channel to be handed to another process must not be read here: what the
              // program writes early would stay in this socket's buffer.
              pauseOnCreate: unread.includes(i),
            } as ConstructorParameters<typeof Socket>[0]);
          }
          const error = errno ? systemError(errno, 'execve', file) : undefined;
          let reaped = false;
          const exited = new Promise<ExitStatus>((done) => {
            watchChild(pid, (st) => {
              reaped = true;
              done(error ? { ...st, error } : st);
            });
          });
          const kill = (signal: NodeJS.Signals = 'SIGTERM') => {
            if (reaped) return;
            try {
              process.kill(pid, signal);
            } catch {
              // Already gone: nothing to do.
            }
          };
          resolve({
            run: finishRun(pid, spec.argv, exited, kill),
            pipes,
            ...(ttyEnds ? { tty: ttyEnds } : {}),
          });
        },
        tty?.path,
      );
    });
  } catch (cause) {
    closeAll(serverEnds);
    closeAll(childEnds);
    if (tty) closeTty(n, tty);
    throw new ExecError(
      'UCSPI_ERR_EXEC_SPAWN',
      `unable to run ${file}: ${(cause as Error).message}`,
      true,
      cause,
    );
  }
}

/** Start through child_process.spawn (fork of the whole runtime; used where the addon is not built). */
function startFallback(spec: ProgramSpec, slots: Slot[]): Started {
  const [file, ...args] = spec.argv as [string, ...string[]];
  let child: ChildProcess;
  try {
    const stdio = slots.map((slot) => (slot === 'in' || slot === 'out' ? 'pipe' : slot));
    // biome-ignore lint/suspicious/noExplicitAny: spawn's stdio accepts sockets and numbers
    child = spawn(file, args, { env: envObject(spec.env), stdio: stdio as any });
  } catch (cause) {
    throw new ExecError('UCSPI_ERR_EXEC_SPAWN', `unable to run ${file}`, true, cause);
  }
  const exited = new Promise<ExitStatus>((resolve) => {
    let done = false;
    const finish = (status: ExitStatus) => {
      if (done) return;
      done = true;
      resolve(status);
    };
    // A failed exec (ENOENT, EACCES) is reported as 'error' without 'exit': like a child that
    // could not exec, we report exit code 111 (the originals' child exits 111 on exec failure).
    child.once('error', (error: NodeJS.ErrnoException) =>
      finish({ code: 111, signal: null, wstat: 111 * 256, error }),
    );
    child.once('exit', (code, signal) =>
      finish({ code, signal, wstat: signal ? signalNumber(signal) : (code ?? 0) * 256 }),
    );
  });
  const kill = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const pipes = slots.map((slot, i) => (isChannel(slot) ? (child.stdio[i] as Socket) : undefined));
  return { run: finishRun(child.pid ?? -1, spec.argv, exited, kill), pipes };
}

/**
 * Start `spec` with one descriptor per slot (child fd i gets slots[i]); the layouts below and in
 * client.ts are made of this. Not exported from the package.
 */
export async function start(
  spec: ProgramSpec,
  slots: Slot[],
  unread: readonly number[] = [],
): Promise<Started> {
  if (spec.argv[0] === undefined) {
    throw new ExecError('UCSPI_ERR_EXEC_SPAWN', 'no program given', false);
  }
  if (slots.includes('pty')) {
    // No pseudo terminal without the addon: child_process cannot make one the program's.
    const started = native && startNative(spec, slots, unread);
    if (!started)
      throw new ExecError(
        'UCSPI_ERR_EXEC_SPAWN',
        'a pseudo terminal (pty) needs the native addon of @ucspi/exec (Linux x64/arm64)',
        false,
      );
    return started;
  }
  if (unread.length > 0) {
    // child_process starts reading its pipes at once: only the addon can leave them unread.
    const started = native && startNative(spec, slots, unread);
    if (!started)
      throw new ExecError(
        'UCSPI_ERR_EXEC_SPAWN',
        'handing descriptors to another process needs the native addon of @ucspi/exec',
        false,
      );
    return started;
  }
  return (native && startNative(spec, slots)) || startFallback(spec, slots);
}

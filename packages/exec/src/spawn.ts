import { type ChildProcess, spawn } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import type { Duplex } from 'node:stream';
import { getSystemErrorName } from 'node:util';
import { FD_DEVNULL, FD_INHERIT, listenForChildren, native, watchChild } from './_native.js';
import { ExecError } from './errors.js';

const spawnChannel = diagnostics.channel('ucspi:exec:spawn');
const exitChannel = diagnostics.channel('ucspi:exec:exit');
const timeoutChannel = diagnostics.channel('ucspi:exec:timeout');

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
  env: Record<string, string>;
  /** Where the program's stderr goes; default: inherited from the server (as the originals). */
  stderr?: 'inherit' | 'ignore' | number;
}

/** True when programs are started by the native spawner rather than child_process.spawn. */
export const nativeSpawn: boolean = native !== undefined;

/** The platform's number for a signal name (os.constants.signals). */
function signalNumber(signal: NodeJS.Signals): number {
  return (constants.signals as Record<string, number | undefined>)[signal] ?? 0;
}

/**
 * One descriptor of the program: a connection socket (given as is), a fresh bidirectional channel
 * whose other end the server keeps (`'pipe'`), the server's own descriptor of that number
 * (`'inherit'`), /dev/null (`'ignore'`), or a descriptor number of the server.
 */
type Slot = Socket | 'pipe' | 'inherit' | 'ignore' | number;

interface Started {
  run: ChildRun;
  /** The server's end of each `'pipe'` slot, by child descriptor number. */
  pipes: Array<Socket | undefined>;
}

/** execvp's candidates: argv[0] itself when it has a slash, else each PATH entry (djb's default PATH). */
function candidates(file: string, path: string | undefined): string[] {
  if (file.includes('/')) return [file];
  return (path ?? '/bin:/usr/bin').split(':').map((dir) => `${dir || '.'}/${file}`);
}

function execError(file: string, errno: number): NodeJS.ErrnoException {
  const name = getSystemErrorName(-errno);
  return Object.assign(new Error(`execve ${file}: ${name}`), {
    code: name,
    errno: -errno,
    syscall: 'execve',
    path: file,
  });
}

/** The descriptor behind a net.Socket, or undefined when it has none that can be passed on. */
function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
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
function startNative(spec: ProgramSpec, slots: Slot[]): Promise<Started> | undefined {
  const n = native!;
  const fds: number[] = [];
  for (const slot of slots) {
    if (slot instanceof Socket) {
      const fd = socketFd(slot);
      if (fd === undefined) return undefined;
      fds.push(fd);
    } else if (slot === 'inherit') fds.push(FD_INHERIT);
    else if (slot === 'ignore') fds.push(FD_DEVNULL);
    else if (typeof slot === 'number') fds.push(slot);
    else fds.push(-3); // a pipe, filled in below
  }
  const childEnds: number[] = [];
  const serverEnds: number[] = [];
  const closeAll = (list: number[]) => {
    for (const fd of list) n.close(fd);
  };
  const [file] = spec.argv as [string];
  try {
    for (let i = 0; i < slots.length; i++) {
      if (slots[i] !== 'pipe') continue;
      const [mine, theirs] = n.socketpair();
      serverEnds.push(mine);
      childEnds.push(theirs);
      fds[i] = theirs;
    }
    const envp = Object.entries(spec.env).map(([k, v]) => `${k}=${v}`);
    listenForChildren();
    return new Promise<Started>((resolve, reject) => {
      n.spawn(candidates(file, spec.env.PATH), [...spec.argv], envp, fds, (pid, errno) => {
        closeAll(childEnds);
        if (pid < 0) {
          closeAll(serverEnds);
          const err = execError(file, errno);
          reject(new ExecError('UCSPI_ERR_EXEC_SPAWN', `unable to fork: ${err.code}`, true, err));
          return;
        }
        const pipes: Array<Socket | undefined> = [];
        let k = 0;
        for (let i = 0; i < slots.length; i++) {
          if (slots[i] !== 'pipe') continue;
          pipes[i] = new Socket({
            fd: serverEnds[k++]!,
            readable: true,
            writable: true,
            allowHalfOpen: true,
          });
        }
        const error = errno ? execError(file, errno) : undefined;
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
        resolve({ run: finishRun(pid, spec.argv, exited, kill), pipes });
      });
    });
  } catch (cause) {
    closeAll(serverEnds);
    closeAll(childEnds);
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
    // biome-ignore lint/suspicious/noExplicitAny: spawn's stdio accepts sockets and numbers
    child = spawn(file, args, { env: spec.env, stdio: slots as any });
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
  const pipes = slots.map((slot, i) => (slot === 'pipe' ? (child.stdio[i] as Socket) : undefined));
  return { run: finishRun(child.pid ?? -1, spec.argv, exited, kill), pipes };
}

async function start(spec: ProgramSpec, slots: Slot[]): Promise<Started> {
  if (spec.argv[0] === undefined) {
    throw new ExecError('UCSPI_ERR_EXEC_SPAWN', 'no program given', false);
  }
  return (native && startNative(spec, slots)) || startFallback(spec, slots);
}

/**
 * tcpserver's layout: the accepted socket itself becomes the program's fd 0 and fd 1, nothing is
 * copied through the server. The server's copy of the socket is closed right after the spawn, as
 * tcpserver's parent closes its descriptor after fork.
 */
export async function spawnOnSocket(socket: Socket, spec: ProgramSpec): Promise<ChildRun> {
  try {
    return (await start(spec, [socket, socket, spec.stderr ?? 'inherit'])).run;
  } finally {
    socket.destroy();
  }
}

/** Options of {@link spawnPumped}. */
export interface PumpOptions {
  /**
   * sslserver -w: give up when no byte moves in either direction for this many ms
   * (the TLS stream is destroyed, the program's pipes closed). 0 or undefined: no limit.
   */
  idleTimeoutMs?: number;
  /** Bytes sent to the peer before anything the program writes (sslserver -B). */
  banner?: Buffer | string;
  /**
   * Called when the idle timer fires, before the streams are destroyed. {@link spawnPumped}
   * defaults it to killing the program with SIGTERM (sslserver -w gives up on the program too).
   */
  onIdleTimeout?: () => void;
}

/**
 * sslserver's normal layout: the program's fd 0 and fd 1 are pipes, and the server pumps bytes
 * between them and `stream` (the TLS socket) with backpressure and half-close both ways:
 * the peer's EOF ends the program's stdin; the program's stdout EOF ends `stream` (for a
 * TLSSocket, end() sends close_notify). `stream` is destroyed once both directions are done,
 * the program is reaped, or the idle timer fires.
 */
export async function spawnPumped(
  stream: Duplex,
  spec: ProgramSpec,
  options: PumpOptions = {},
): Promise<ChildRun & { readonly done: Promise<void> }> {
  const { run, pipes } = await start(spec, ['pipe', 'pipe', spec.stderr ?? 'inherit']);
  const stdin = pipes[0]!;
  const stdout = pipes[1]!;
  const done = pumpStreams(
    stream,
    stdout,
    stdin,
    { onIdleTimeout: () => run.kill('SIGTERM'), ...options },
    run.exited,
  );
  return Object.assign(run, { done });
}

/**
 * Pump bytes between a connection and a pair of program pipes (`from` is what the program writes,
 * `to` what it reads). ws-style backpressure: pause the source when write() returns false,
 * resume on 'drain'. Resolves once both directions ended (or the idle timer fired) and `exited`
 * has settled; `stream` is destroyed at that point.
 */
export function pumpStreams(
  stream: Duplex,
  from: NodeJS.ReadableStream & { destroy?: () => void },
  to: NodeJS.WritableStream & { destroy?: () => void },
  options: PumpOptions = {},
  exited: Promise<unknown> = Promise.resolve(),
): Promise<void> {
  return new Promise<void>((resolve) => {
    let upDone = false; // peer -> program
    let downDone = false; // program -> peer
    let timer: NodeJS.Timeout | undefined;
    const idle = options.idleTimeoutMs ?? 0;
    const touch = () => {
      if (!idle) return;
      if (timer) timer.refresh();
      else
        timer = setTimeout(() => {
          if (timeoutChannel.hasSubscribers) timeoutChannel.publish({ idleTimeoutMs: idle });
          options.onIdleTimeout?.();
          finishAll();
        }, idle);
    };
    let finished = false;
    const finishAll = () => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      stream.destroy();
      from.destroy?.();
      to.destroy?.();
      exited.then(() => resolve());
    };
    const check = () => {
      if (upDone && downDone) finishAll();
    };
    stream.on('error', () => finishAll());
    to.on('error', () => {
      // The program closed its stdin (EPIPE): drop what the peer still sends.
      upDone = true;
      stream.resume();
      check();
    });
    from.on('error', () => {
      downDone = true;
      check();
    });

    // peer -> program
    stream.on('data', (chunk: Buffer) => {
      touch();
      if (upDone) return;
      if (!to.write(chunk)) {
        stream.pause();
        to.once('drain', () => stream.resume());
      }
    });
    stream.on('end', () => {
      upDone = true;
      to.end();
      check();
    });
    stream.on('close', () => {
      // Reset or destroy: nothing more can come or go.
      if (!upDone) to.end();
      upDone = true;
      downDone = true;
      check();
    });

    // program -> peer
    if (options.banner !== undefined && options.banner.length > 0) stream.write(options.banner);
    from.on('data', (chunk: Buffer) => {
      touch();
      if (downDone) return;
      if (!stream.write(chunk)) {
        from.pause();
        stream.once('drain', () => from.resume());
      }
    });
    from.on('end', () => {
      downDone = true;
      // end() on a TLSSocket sends close_notify, then FIN.
      stream.end();
      check();
    });
    touch();
    // A socket accepted with pauseOnConnect stays paused until resumed explicitly.
    stream.resume();
    (from as NodeJS.ReadableStream).resume();
  });
}

/** The UCSPI-TLS (-n) descriptor numbers given to the program. */
export const UCSPI_TLS_FDS = { SSLCTLFD: 3, SSLREADFD: 4, SSLWRITEFD: 5 } as const;

/** The server's ends of the UCSPI-TLS descriptors. */
export interface UcspiTlsRun extends ChildRun {
  /** Control socket (bidirectional): the program writes `y`/`Y`, the server may answer with the env list. */
  control: Socket;
  /** The server writes decrypted bytes here; the program reads them on SSLREADFD. */
  read: Socket;
  /** The program writes bytes to encrypt on SSLWRITEFD; the server reads them here. */
  write: Socket;
  /**
   * Take the connection back for the TLS handshake once the program asked for it on SSLCTLFD.
   * The program's descriptors 0 and 1 were made blocking at spawn (programs expect that, and the
   * flag belongs to the socket both share); this makes it non-blocking again for the server. A
   * no-op without the native spawner.
   */
  reclaimSocket(): void;
}

/**
 * The UCSPI-TLS layout (sslserver -n): fd 0 and 1 are the raw socket (plaintext dialogue), fd 3 is
 * a control socketpair, fd 4 and 5 are the read and write channels for after the handshake.
 * All three are Unix socketpairs, so they are bidirectional.
 * SSLCTLFD, SSLREADFD and SSLWRITEFD are added to the program's environment. The server keeps
 * its copy of `socket` (it will run the TLS handshake on it).
 */
export async function spawnUcspiTls(socket: Socket, spec: ProgramSpec): Promise<UcspiTlsRun> {
  const env = {
    ...spec.env,
    SSLCTLFD: String(UCSPI_TLS_FDS.SSLCTLFD),
    SSLREADFD: String(UCSPI_TLS_FDS.SSLREADFD),
    SSLWRITEFD: String(UCSPI_TLS_FDS.SSLWRITEFD),
  };
  const { run, pipes } = await start({ ...spec, env }, [
    socket,
    socket,
    spec.stderr ?? 'inherit',
    'pipe',
    'pipe',
    'pipe',
  ]);
  const reclaimSocket = () => {
    const fd = socketFd(socket);
    if (native && fd !== undefined) native.setBlocking(fd, false);
  };
  return Object.assign(run, { control: pipes[3]!, read: pipes[4]!, write: pipes[5]!, reclaimSocket });
}

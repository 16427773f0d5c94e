import { type ChildProcess, spawn } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import type { Duplex } from 'node:stream';
import { FD_DEVNULL, FD_INHERIT, handleFd, listenForChildren, native, watchChild } from './_native.js';
import { ExecError, systemError } from './errors.js';
import { growPipe } from './pipes.js';

const spawnChannel = diagnostics.channel('ucspi:exec:spawn');
const exitChannel = diagnostics.channel('ucspi:exec:exit');
const timeoutChannel = diagnostics.channel('ucspi:exec:timeout');
const closeTimeoutChannel = diagnostics.channel('ucspi:exec:close-timeout');

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

/** The platform's number for a signal name (os.constants.signals). */
function signalNumber(signal: NodeJS.Signals): number {
  return (constants.signals as Record<string, number | undefined>)[signal] ?? 0;
}

/**
 * One descriptor of the program: a connection socket (given as is), a fresh channel whose other
 * end the server keeps (`'pipe'`: a bidirectional socketpair; `'in'`: a pipe the program reads;
 * `'out'`: a pipe the program writes), the server's own descriptor of that number (`'inherit'`),
 * /dev/null (`'ignore'`), or a descriptor number of the server.
 */
export type Slot = Socket | 'pipe' | 'in' | 'out' | 'inherit' | 'ignore' | number;
const isChannel = (slot: Slot) => slot === 'pipe' || slot === 'in' || slot === 'out';

export interface Started {
  run: ChildRun;
  /** The server's end of each channel slot, by child descriptor number. */
  pipes: Array<Socket | undefined>;
}

/** The `NAME=value` list of an environment given either way. */
function envList(env: ProgramSpec['env']): readonly string[] {
  return Array.isArray(env)
    ? (env as readonly string[])
    : Object.entries(env as Record<string, string>).map(([k, v]) => `${k}=${v}`);
}

/** The environment as an object (what child_process takes). */
function envObject(env: ProgramSpec['env']): Record<string, string> {
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
  const closeAll = (list: number[]) => {
    for (const fd of list) n.close(fd);
  };
  const [file] = spec.argv as [string];
  try {
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
            const err = systemError(errno, 'execve', file);
            reject(new ExecError('UCSPI_ERR_EXEC_SPAWN', `unable to fork: ${err.code}`, true, err));
            return;
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
          resolve({ run: finishRun(pid, spec.argv, exited, kill), pipes });
        },
      );
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
  /**
   * Called once the program's first bytes have been handed to the connection's socket. sslserver
   * keeps TCP_NODELAY on during the TLS handshake and until this point (the handshake's trailing
   * records, such as TLS 1.3 session tickets, and the first response then leave at once instead of
   * waiting for a delayed ACK), and turns Nagle's algorithm on here unless -D was given.
   */
  onFirstOutput?: () => void;
  /**
   * Called once per side when it is under pressure: `to` when a write to the program had to wait
   * (its input is full), `from` when a read from the program filled the whole read buffer (its
   * output was full). {@link spawnPumped} grows the pipe then (see growPipe).
   */
  onPressure?: (side: 'to' | 'from') => void;
  /**
   * Called when `stream` fails (a reset, a TLS alert or a bad record), before everything is
   * destroyed: sslserver logs `unable to speak TLS for pid: PID REASON` then.
   */
  onStreamError?: (err: Error) => void;
  /**
   * How many bytes may wait in memory for each destination before its source is paused (default
   * 256 KiB, {@link PUMP_BUFFER_BYTES}). A TLS socket's own high-water mark is 16 KiB: pausing there
   * would stop and restart reading the program's output (two epoll_ctl calls and a JS turn) for
   * every 64 KiB it writes.
   */
  bufferBytes?: number;
  /**
   * The close deadline: once everything the program wrote has been sent and the end sent
   * (close_notify and FIN for TLS), a peer that has not ended its side and sends nothing for this
   * many ms is given up on, as stunnel's TIMEOUTclose. Without it a silent peer would hold the
   * connection until the idle timeout. 0 or undefined: no deadline.
   */
  closeTimeoutMs?: number;
  /** Called when the close deadline passed, before everything is destroyed. */
  onCloseTimeout?: () => void;
}

/** The default of {@link PumpOptions.bufferBytes}. */
export const PUMP_BUFFER_BYTES = 256 * 1024;

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
  const { run, pipes } = await start(spec, ['in', 'out', spec.stderr ?? 'inherit']);
  const stdin = pipes[0]!;
  const stdout = pipes[1]!;
  const done = pumpStreams(
    stream,
    stdout,
    stdin,
    {
      onIdleTimeout: () => run.kill('SIGTERM'),
      // A bulk transfer: larger pipes mean fewer wake-ups of the program and of the server.
      onPressure: (side) => growPipe(side === 'to' ? stdin : stdout),
      ...options,
    },
    run.exited,
  );
  return Object.assign(run, { done });
}

/**
 * Pump bytes between a connection and a pair of program pipes (`from` is what the program writes,
 * `to` what it reads). Backpressure: pause the source when write() returns false with at least
 * `bufferBytes` waiting, resume on 'drain'. Each direction ends gracefully: the peer's EOF ends `to` once everything
 * has been written to the program (then its descriptor is closed: the program reads EOF); the
 * program's EOF ends `stream` once everything has been written to the peer (for TLS: then
 * close_notify and FIN). Resolves once both directions have ended (or the stream failed, or the
 * idle timer fired) and `exited` has settled; everything is destroyed at that point.
 */
export function pumpStreams(
  stream: Duplex,
  from: NodeJS.ReadableStream & { destroy?: () => void },
  to: NodeJS.WritableStream & { destroy?: () => void },
  options: PumpOptions = {},
  exited: Promise<unknown> = Promise.resolve(),
): Promise<void> {
  return new Promise<void>((resolve) => {
    let upDone = false; // peer -> program: `to` flushed and closed
    let downDone = false; // program -> peer: `stream` flushed and ended
    const idle = options.idleTimeoutMs ?? 0;
    // -w: the time of the last byte in either direction; the timer re-arms itself for the rest
    // of the interval instead of being refreshed on every chunk.
    let last = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const onTimer = () => {
      const rest = idle - (performance.now() - last);
      if (rest > 1) {
        timer = setTimeout(onTimer, rest);
        return;
      }
      if (timeoutChannel.hasSubscribers) timeoutChannel.publish({ idleTimeoutMs: idle });
      options.onIdleTimeout?.();
      finishAll();
    };
    if (idle) timer = setTimeout(onTimer, idle);
    // The close deadline, armed once the program's side is done and the peer's is not; like the
    // idle timer it re-arms itself while the peer still sends.
    const closeAfter = options.closeTimeoutMs ?? 0;
    let closeTimer: NodeJS.Timeout | undefined;
    const onCloseTimer = () => {
      // The peer is not silent while it waits for the program to read what it sent.
      if (upPaused) last = performance.now();
      const rest = closeAfter - (performance.now() - last);
      if (rest > 1) {
        closeTimer = setTimeout(onCloseTimer, rest);
        return;
      }
      if (closeTimeoutChannel.hasSubscribers) closeTimeoutChannel.publish({ closeTimeoutMs: closeAfter });
      options.onCloseTimeout?.();
      finishAll();
    };
    let finished = false;
    const finishAll = () => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      if (closeTimer) clearTimeout(closeTimer);
      stream.destroy();
      from.destroy?.();
      to.destroy?.();
      exited.then(() => resolve());
    };
    const upEnded = () => {
      if (upDone) return;
      upDone = true;
      if (downDone) finishAll();
    };
    const downEnded = () => {
      if (downDone) return;
      downDone = true;
      if (upDone) finishAll();
      else if (closeAfter && !finished) {
        last = performance.now();
        closeTimer = setTimeout(onCloseTimer, closeAfter);
      }
    };

    // peer -> program
    let toEnding = false;
    const endTo = () => {
      if (toEnding) return;
      toEnding = true;
      // A pipe cannot be shut down for writing as a socket can: close it once flushed.
      to.end();
    };
    to.on('finish', () => {
      to.destroy?.();
      upEnded();
    });
    to.on('error', () => {
      // The program closed its stdin (EPIPE): what the peer still sends is dropped.
      toEnding = true;
      upEnded();
      stream.resume();
    });
    let upPaused = false;
    const resumeStream = () => {
      upPaused = false;
      stream.resume();
    };
    const limit = options.bufferBytes ?? PUMP_BUFFER_BYTES;
    const pressure = options.onPressure;
    let toPressed = false;
    let fromPressed = false;
    // TLS hands over at most 16 KiB at a time, several per network read: gather the records of one
    // pass of the poll phase into one writev, so the program wakes up once per batch, not per record.
    const w = to as NodeJS.WritableStream & {
      cork?: () => void;
      uncork?: () => void;
      writableLength?: number;
    };
    let corked = false;
    const uncork = () => {
      corked = false;
      w.uncork?.();
    };
    stream.on('data', (chunk: Buffer) => {
      last = performance.now();
      if (toEnding) return;
      if (!corked && w.cork) {
        corked = true;
        w.cork();
        setImmediate(uncork);
      }
      if (!to.write(chunk) && (w.writableLength ?? limit) >= limit) {
        if (pressure && !toPressed) {
          toPressed = true;
          pressure('to');
        }
        upPaused = true;
        stream.pause();
        to.once('drain', resumeStream);
      }
    });
    stream.on('end', endTo);
    // A broken connection (reset, TLS error): nothing more can come or go.
    stream.on('error', (err: Error) => {
      if (!finished) options.onStreamError?.(err);
      finishAll();
    });
    stream.on('close', () => {
      // Closed without an error: the program still gets what was read, then EOF.
      endTo();
      downEnded();
    });

    // program -> peer
    if (options.banner !== undefined && options.banner.length > 0) stream.write(options.banner);
    let streamEnding = false;
    const endStream = () => {
      if (streamEnding) return;
      streamEnding = true;
      // 'finish' once everything has been written and the end sent (close_notify for TLS).
      stream.end(() => downEnded());
    };
    const resumeFrom = () => (from as NodeJS.ReadableStream).resume();
    let firstOutput = options.onFirstOutput;
    from.on('data', (chunk: Buffer) => {
      last = performance.now();
      // libuv reads at most 64 KiB at a time: a full read means the program's output was full.
      if (pressure && !fromPressed && chunk.length >= 65536) {
        fromPressed = true;
        pressure('from');
      }
      if (streamEnding) return;
      let ok: boolean;
      if (firstOutput) {
        const cb = firstOutput;
        firstOutput = undefined;
        ok = stream.write(chunk, () => cb());
      } else ok = stream.write(chunk);
      if (!ok && stream.writableLength >= limit) {
        from.pause();
        stream.once('drain', resumeFrom);
      }
    });
    from.on('end', endStream);
    from.on('error', endStream);
    // A socket accepted with pauseOnConnect stays paused until resumed explicitly.
    stream.resume();
    (from as NodeJS.ReadableStream).resume();
    // The connection may have gone before the pump started (a client that resets right after its
    // handshake, while the program was being started): its 'close' has been emitted already and
    // will not come again. Without this the program would wait for input until -w.
    if (stream.destroyed) {
      if (stream.errored) {
        options.onStreamError?.(stream.errored);
        finishAll();
      } else {
        endTo();
        downEnded();
      }
    }
  });
}

/** The server's ends of the program's input and output, unread, from {@link spawnHandOver}. */
export interface HandOverRun extends ChildRun {
  /** Write here what the program reads on fd 0 (a Unix socket; end() gives it EOF). */
  input: Socket;
  /** Read here what the program writes on fd 1 (a Unix socket). */
  output: Socket;
}

/**
 * sslserver's layout when another process pumps the bytes (its privilege-separated TLS handler):
 * fd 0 and fd 1 are Unix socketpairs, the only channels Node.js can pass over an IPC channel
 * (child.send), and the server's ends are returned paused, with nothing read from them, ready to
 * be sent. Needs the native addon: child_process would start reading them at once.
 */
export async function spawnHandOver(spec: ProgramSpec): Promise<HandOverRun> {
  const { run, pipes } = await start(spec, ['pipe', 'pipe', spec.stderr ?? 'inherit'], [0, 1]);
  return Object.assign(run, { input: pipes[0]!, output: pipes[1]! });
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
 * its copy of `socket` (it will run the TLS handshake on it). With `handOver` (native addon only)
 * the read and write channels are left unread, to be sent to another process (see
 * {@link spawnHandOver}).
 */
export async function spawnUcspiTls(
  socket: Socket,
  spec: ProgramSpec,
  options: { handOver?: boolean } = {},
): Promise<UcspiTlsRun> {
  const fdVars = {
    SSLCTLFD: String(UCSPI_TLS_FDS.SSLCTLFD),
    SSLREADFD: String(UCSPI_TLS_FDS.SSLREADFD),
    SSLWRITEFD: String(UCSPI_TLS_FDS.SSLWRITEFD),
  };
  const env = { ...envObject(spec.env), ...fdVars };
  const { run, pipes } = await start(
    { ...spec, env },
    [socket, socket, spec.stderr ?? 'inherit', 'pipe', 'pipe', 'pipe'],
    options.handOver ? [4, 5] : [],
  );
  const reclaimSocket = () => {
    const fd = handleFd(socket);
    if (native && fd !== undefined) native.setBlocking(fd, false);
  };
  return Object.assign(run, { control: pipes[3]!, read: pipes[4]!, write: pipes[5]!, reclaimSocket });
}

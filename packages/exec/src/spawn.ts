import { type ChildProcess, spawn } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { constants } from 'node:os';
import type { Duplex } from 'node:stream';
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
   * exit code times 256, or the signal number.
   */
  wstat: number;
}

/** A program started on a connection. */
export interface ChildRun {
  /** The program's process id (what `pid N from IP` logs). */
  readonly pid: number;
  /** The underlying child process. */
  readonly child: ChildProcess;
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

/** The platform's number for a signal name (os.constants.signals). */
function signalNumber(signal: NodeJS.Signals): number {
  return (constants.signals as Record<string, number | undefined>)[signal] ?? 0;
}

function start(spec: ProgramSpec, stdio: Array<unknown>): ChildRun {
  const [file, ...args] = spec.argv;
  if (file === undefined) {
    throw new ExecError('UCSPI_ERR_EXEC_SPAWN', 'no program given', false);
  }
  let child: ChildProcess;
  try {
    // biome-ignore lint/suspicious/noExplicitAny: spawn's stdio accepts sockets and numbers
    child = spawn(file, args, { env: spec.env, stdio: stdio as any });
  } catch (cause) {
    throw new ExecError('UCSPI_ERR_EXEC_SPAWN', `unable to run ${file}`, true, cause);
  }
  const exited = new Promise<ExitStatus>((resolve) => {
    let done = false;
    const finish = (status: ExitStatus) => {
      if (done) return;
      done = true;
      if (exitChannel.hasSubscribers) exitChannel.publish({ pid: child.pid, ...status });
      resolve(status);
    };
    // A failed exec (ENOENT, EACCES) is reported as 'error' without 'exit': like a child that
    // could not exec, we report exit code 111 (the originals' child exits 111 on exec failure).
    child.once('error', () => finish({ code: 111, signal: null, wstat: 111 * 256 }));
    child.once('exit', (code, signal) =>
      finish({
        code,
        signal,
        wstat: signal ? signalNumber(signal) : (code ?? 0) * 256,
      }),
    );
  });
  const pid = child.pid ?? -1;
  if (spawnChannel.hasSubscribers) spawnChannel.publish({ pid, argv: spec.argv });
  return {
    pid,
    child,
    exited,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/**
 * tcpserver's layout: the accepted socket itself becomes the program's fd 0 and fd 1, nothing is
 * copied through the server. The server's copy of the socket is closed right after the spawn, as
 * tcpserver's parent closes its descriptor after fork.
 */
export function spawnOnSocket(socket: Socket, spec: ProgramSpec): ChildRun {
  const run = start(spec, [socket, socket, spec.stderr ?? 'inherit']);
  socket.destroy();
  return run;
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
export function spawnPumped(
  stream: Duplex,
  spec: ProgramSpec,
  options: PumpOptions = {},
): ChildRun & { readonly done: Promise<void> } {
  const run = start(spec, ['pipe', 'pipe', spec.stderr ?? 'inherit']);
  const { child } = run;
  const stdin = child.stdin;
  const stdout = child.stdout;
  if (!stdin || !stdout) throw new ExecError('UCSPI_ERR_EXEC_SPAWN', 'no pipes', true);
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
}

/**
 * The UCSPI-TLS layout (sslserver -n): fd 0 and 1 are the raw socket (plaintext dialogue), fd 3 is
 * a control socketpair, fd 4 and 5 are the read and write channels for after the handshake.
 * libuv creates 'pipe' stdio entries as Unix socketpairs, so all three are bidirectional.
 * SSLCTLFD, SSLREADFD and SSLWRITEFD are added to the program's environment. The server keeps
 * its copy of `socket` (it will run the TLS handshake on it).
 */
export function spawnUcspiTls(socket: Socket, spec: ProgramSpec): UcspiTlsRun {
  const env = {
    ...spec.env,
    SSLCTLFD: String(UCSPI_TLS_FDS.SSLCTLFD),
    SSLREADFD: String(UCSPI_TLS_FDS.SSLREADFD),
    SSLWRITEFD: String(UCSPI_TLS_FDS.SSLWRITEFD),
  };
  const run = start({ ...spec, env }, [socket, socket, spec.stderr ?? 'inherit', 'pipe', 'pipe', 'pipe']);
  const control = (run.child.stdio as unknown as Socket[])[3] as Socket;
  const read = (run.child.stdio as unknown as Socket[])[4] as Socket;
  const write = (run.child.stdio as unknown as Socket[])[5] as Socket;
  return Object.assign(run, { control, read, write });
}

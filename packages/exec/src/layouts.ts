// The descriptor layouts a server gives its programs, made of spawn.ts's start(): the accepted
// socket itself (tcpserver), two pipes pumped to a TLS stream (sslserver), the sockets handed to a
// confined TLS handler, and UCSPI-TLS's control descriptors (sslserver -n). tcpclient's is client.ts.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { handleFd, native } from './_native.js';
import { growPipe } from './pipes.js';
import { type PumpOptions, pumpStreams } from './pump.js';
import { type ChildRun, envObject, type ProgramSpec, start } from './spawn.js';

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
  options: PumpOptions & PtyOption = {},
): Promise<ChildRun & { readonly done: Promise<void>; readonly tty?: string }> {
  const { pty, ...pumpOptions } = options;
  if (pty) return spawnOnPty(stream, spec, pumpOptions);
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
      ...pumpOptions,
    },
    run.exited,
  );
  return Object.assign(run, { done });
}

/** {@link spawnPumped}'s `pty` option. */
export interface PtyOption {
  /**
   * Run the program on a new pseudo terminal (stunnel's `pty = yes`): fd 0 and 1 are its slave, the
   * program's controlling terminal in a session of its own; stderr as `spec.stderr` says. The
   * terminal keeps the kernel's default settings (echo, canonical input, output \n as \r\n). The
   * peer's EOF hangs the terminal up (the program gets SIGHUP); the program's end (every descriptor
   * on the terminal closed) ends `stream` once its output is passed on. Native addon only: without
   * it an `UCSPI_ERR_EXEC_SPAWN` error (see `canSpawnPty`).
   */
  pty?: boolean;
}

/** spawnPumped with `pty: true`: the terminal's master, relayed by the addon, pumped to `stream`. */
async function spawnOnPty(
  stream: Duplex,
  spec: ProgramSpec,
  options: PumpOptions,
): Promise<ChildRun & { readonly done: Promise<void>; readonly tty: string }> {
  const { run, tty } = await start(spec, ['pty', 'pty', spec.stderr ?? 'inherit']);
  const done = pumpStreams(
    stream,
    tty!.output,
    tty!.input,
    { onIdleTimeout: () => run.kill('SIGTERM'), ...options },
    run.exited,
  );
  return Object.assign(run, { done, tty: tty!.path });
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

// tcpclient's layout: the program reads the connection on descriptor 6 and writes to it on
// descriptor 7, and keeps the client's own standard input, output and error (ucspi-tcp's
// tcpclient.c: fd_move(6, s), fd_copy(7, 6), then exec).
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { handleFd, native } from './_native.js';
import { growPipe } from './pipes.js';
import { type PumpOptions, pumpStreams } from './pump.js';
import { type ChildRun, type ProgramSpec, type Slot, start } from './spawn.js';

/** The descriptors of tcpclient's program: it reads the connection on 6 and writes it on 7. */
export const CLIENT_PROG_FDS = { read: 6, write: 7 } as const;

/** Options of {@link spawnClientProg}. */
export interface ClientProgOptions extends PumpOptions {
  /**
   * Give the connection's own descriptor to the program as fd 6 and 7 (`connection` must be a
   * plain net.Socket: TCP or UNIX), nothing copied through this process, as ucspi-tcp's tcpclient
   * does; this process's copy is closed after the spawn. Otherwise (TLS) fd 6 and 7 are pipes and
   * the bytes are pumped with backpressure and half-close (see pumpStreams).
   */
  shareSocket?: boolean;
}

/**
 * Run tcpclient's program: fd 0, 1 and 2 inherited, fd 3 to 5 /dev/null (the layout needs every
 * number below 7 filled; the client's own descriptors there are private), fd 6 reading from and fd
 * 7 writing to the connection. `done` resolves once the bytes have stopped moving both ways (with
 * `shareSocket`: at once) and the program has been reaped.
 */
export async function spawnClientProg(
  connection: Duplex,
  spec: ProgramSpec,
  options: ClientProgOptions = {},
): Promise<ChildRun & { readonly done: Promise<void> }> {
  const base: Slot[] = ['inherit', 'inherit', spec.stderr ?? 'inherit', 'ignore', 'ignore', 'ignore'];
  if (options.shareSocket) {
    const socket = connection as Socket;
    // Programs expect blocking descriptors, and the flag belongs to the open file that this
    // process and the program share: this process reads nothing from it any more.
    makeBlocking(socket);
    try {
      const { run } = await start(spec, [...base, socket, socket]);
      return Object.assign(run, { done: run.exited.then(() => undefined) });
    } finally {
      socket.destroy();
    }
  }
  const { run, pipes } = await start(spec, [...base, 'in', 'out']);
  const toProg = pipes[CLIENT_PROG_FDS.read]!;
  const fromProg = pipes[CLIENT_PROG_FDS.write]!;
  const { shareSocket: _share, ...pumpOptions } = options;
  const done = pumpStreams(
    connection,
    fromProg,
    toProg,
    {
      // -a gives up on the program too, as sslserver -w does.
      onIdleTimeout: () => run.kill('SIGTERM'),
      onPressure: (side) => growPipe(side === 'to' ? toProg : fromProg),
      ...pumpOptions,
    },
    run.exited,
  );
  return Object.assign(run, { done });
}

/** Clear O_NONBLOCK on the socket's descriptor (through the addon, else libuv's setBlocking). */
function makeBlocking(socket: Socket): void {
  const fd = handleFd(socket);
  if (native && fd !== undefined) {
    native.setBlocking(fd, true);
    return;
  }
  (socket as unknown as { _handle?: { setBlocking?: (b: boolean) => number } })._handle?.setBlocking?.(true);
}

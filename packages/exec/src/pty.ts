// A program's pseudo terminal (the `'pty'` slot of spawn.ts, native addon only): the master opened
// here, the slave given to the child as its controlling terminal, and a thread of the addon relaying
// between the master and two pipes whose other ends become the server's sockets, so that a program
// that stops reading never blocks the event loop on the terminal.
import { Socket } from 'node:net';
import type { NativeBinding } from './_native.js';
import { ExecError, systemError } from './errors.js';

/** The server's side of a program's pseudo terminal. */
export interface TtyEnds {
  /** The slave's path, such as /dev/pts/3. */
  path: string;
  /** What the program writes to its terminal (with the terminal's own echo and \r\n). EOF once it hung up. */
  output: Socket;
  /** What the program reads from its terminal; end() hangs the terminal up (the program gets SIGHUP). */
  input: Socket;
}

/** A terminal opened for a child that is not started yet. */
export interface OpenedTty {
  path: string;
  /** Go to the relay thread: the master, the read end of the input pipe, the write end of the output pipe. */
  relay: [number, number, number];
  /** Become the server's sockets: the write end of the input pipe, the read end of the output pipe. */
  ours: [number, number];
}

/** Open the master and the relay's two pipes; on a failure, whatever was opened is closed again. */
export function openTty(n: NativeBinding): OpenedTty {
  const opened: number[] = [];
  try {
    const [master, path] = n.openPty();
    opened.push(master);
    const [inRead, inWrite] = n.pipe();
    opened.push(inRead, inWrite);
    const [outRead, outWrite] = n.pipe();
    opened.push(outRead, outWrite);
    return { path, relay: [master, inRead, outWrite], ours: [inWrite, outRead] };
  } catch (err) {
    for (const fd of opened) n.close(fd);
    throw err;
  }
}

/** Close every descriptor of a terminal whose relay never started. */
export function closeTty(n: NativeBinding, tty: OpenedTty): void {
  for (const fd of [...tty.relay, ...tty.ours]) n.close(fd);
}

/**
 * Start the relay once the child has the slave open (or has exited). It owns the master and its
 * pipe ends from then on; ours become the server's sockets. A relay that cannot start is an
 * ExecError, with our ends closed (the program loses its terminal and gets SIGHUP).
 */
export function startTtyRelay(n: NativeBinding, tty: OpenedTty, file: string): TtyEnds {
  const failed = n.relayPty(...tty.relay);
  const [inWrite, outRead] = tty.ours;
  if (failed) {
    n.close(inWrite);
    n.close(outRead);
    const err = systemError(failed, 'pthread_create', file);
    throw new ExecError('UCSPI_ERR_EXEC_SPAWN', `unable to relay the terminal: ${err.code}`, true, err);
  }
  return {
    path: tty.path,
    output: new Socket({ fd: outRead, readable: true, writable: false, allowHalfOpen: true }),
    input: new Socket({ fd: inWrite, readable: false, writable: true, allowHalfOpen: true }),
  };
}

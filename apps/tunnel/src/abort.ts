// How a failed connection ends, as stunnel's `reset` option says (client.c, reset()): with
// `reset = yes`, its default, a TCP reset (SO_LINGER 0; here Node.js's resetAndDestroy), so that
// the peer sees an error rather than an end it could take for the whole stream; with `reset = no`
// a plain close (FIN).
import type { Socket } from 'node:net';

/** End `socket` after a failure: a TCP reset when `reset`, else a close; never throws. */
export function abort(socket: Socket, reset: boolean): void {
  if (socket.destroyed) return;
  if (reset) {
    try {
      socket.resetAndDestroy();
      return;
    } catch {
      // Not a TCP socket (inetd mode on a pipe): it can only be closed, as stunnel's is_socket check.
    }
  }
  socket.destroy();
}

// The `socket` lines Node.js can honour, applied to a TCP socket: SO_KEEPALIVE and TCP_KEEPIDLE
// through setKeepAlive, TCP_NODELAY through setNoDelay. `a:` lines are applied to each accepted
// socket before the `l:` ones: Node.js gives no hold on the listening socket, and Linux copies
// these options from the listening socket to the accepted one, which is where stunnel's `a:`
// settings end up too. `r:` lines go to the socket towards the `connect` target.
import type { Socket } from 'node:net';
import type { SocketOptionLine, SocketSide } from './config/socket-values.js';

/** What to set on one socket (undefined: leave Node.js's and the kernel's default). */
export interface SocketTuning {
  keepAlive?: boolean;
  /** Seconds before the first keep-alive probe. */
  keepIdle?: number;
  noDelay?: boolean;
}

/** The lines of these sides, in order (a later line wins, as a later setsockopt would). */
export function tuningFor(
  lines: readonly SocketOptionLine[],
  sides: readonly SocketSide[],
): SocketTuning | undefined {
  const t: SocketTuning = {};
  let any = false;
  for (const side of sides)
    for (const o of lines) {
      if (o.side !== side) continue;
      if (o.name === 'SO_KEEPALIVE') t.keepAlive = o.value === true;
      else if (o.name === 'TCP_KEEPIDLE') t.keepIdle = Number(o.value);
      else if (o.name === 'TCP_NODELAY') t.noDelay = o.value === true;
      else continue;
      any = true;
    }
  return any ? t : undefined;
}

/** Apply a tuning to a connected (or connecting) socket. */
export function applyTuning(socket: Socket, t: SocketTuning | undefined): void {
  if (!t) return;
  if (t.noDelay !== undefined) socket.setNoDelay(t.noDelay);
  // TCP_KEEPIDLE without SO_KEEPALIVE = yes changes nothing visible (no probe is sent), in stunnel
  // as here; Node.js sets the idle time only together with keep-alive (0: left as it is).
  if (t.keepAlive !== undefined) socket.setKeepAlive(t.keepAlive, t.keepAlive ? (t.keepIdle ?? 0) * 1000 : 0);
}

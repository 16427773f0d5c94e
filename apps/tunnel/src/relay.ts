// The steps every mode ends with: the negotiated TLS logged, the bytes relayed between the TLS side
// and the plain side, and how it ended logged in stunnel's words.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { relayStreams } from '@ucspi/exec';
import { abort } from './abort.js';
import { LOG, safe, type TunnelLog } from './log.js';
import { errnoText } from './targets.js';

/** Bytes a connection has relayed so far (stunnel's counts, which USR2 lists while it runs). */
export interface Traffic {
  toTls: number;
  toSocket: number;
}

/** A service's TIMEOUTidle and TIMEOUTclose, in ms, and where the connection's live counts go. */
export interface RelayTimeouts {
  idleTimeoutMs: number;
  closeTimeoutMs: number;
  traffic?: Traffic;
}

/** Logs `Connection closed|reset: N byte(s) sent to TLS, M byte(s) sent to socket`. */
export type ClosedLog = (how: 'closed' | 'reset', toTls: number, toSocket: number) => void;

/**
 * `TLS accepted: ...` (server side) or `TLS connected: ...` (client side) and the protocol and
 * cipher suite, at LOG6 as stunnel's client.c.
 */
export function logNegotiated(
  log: TunnelLog,
  id: number,
  tls: TLSSocket,
  side: 'accepted' | 'connected' = 'accepted',
): void {
  if (!log.enabled(LOG.info)) return;
  log.write(
    LOG.info,
    id,
    `TLS ${side}: ${tls.isSessionReused() ? 'previous session reused' : 'new session negotiated'}`,
  );
  const c = tls.getCipher();
  log.write(LOG.info, id, `${tls.getProtocol()} ciphersuite: ${c.standardName ?? c.name}`);
}

/**
 * Relay between the TLS side and the plain side until both have ended (or a timer fired), then log
 * how it ended and the `Connection closed` counts (bytes sent to TLS, bytes sent to the socket).
 */
export async function relay(
  log: TunnelLog,
  id: number,
  tls: TLSSocket,
  plain: Socket,
  timeouts: RelayTimeouts,
  closed: ClosedLog,
  /** The TCP connections to reset when the relay gives up (TIMEOUTidle, a failed side): `reset = yes`. */
  resets: readonly Socket[] = [],
): Promise<void> {
  const done = relayStreams(tls, plain, {
    idleTimeoutMs: timeouts.idleTimeoutMs,
    closeTimeoutMs: timeouts.closeTimeoutMs,
    onAbort: () => {
      for (const s of resets) abort(s, true);
    },
  });
  // Counted beside the relay's own listeners (added just after them, before any data can flow),
  // as the relay counts: what was read from one side and handed to the other.
  const t = timeouts.traffic;
  if (t) {
    tls.on('data', (b: Buffer) => {
      t.toSocket += b.length;
    });
    plain.on('data', (b: Buffer) => {
      t.toTls += b.length;
    });
  }
  const r = await done;
  report(log, id, r.reason, r.error);
  closed(r.reason === 'end' ? 'closed' : 'reset', r.bToA, r.aToB);
}

function report(log: TunnelLog, id: number, reason: string, error: Error | undefined): void {
  if (reason === 'idle') log.write(LOG.info, id, 's_poll_wait: TIMEOUTidle exceeded: sending reset');
  else if (reason === 'close-timeout') log.write(LOG.info, id, 's_poll_wait: TIMEOUTclose exceeded: closing');
  else if (reason === 'error' && error) log.write(LOG.err, id, `transfer: ${safe(errnoText(error))}`);
}

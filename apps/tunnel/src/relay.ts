// The steps every mode ends with: the negotiated TLS logged, the bytes relayed between the TLS side
// and the plain side, and how it ended logged in stunnel's words.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { relayStreams } from '@ucspi/exec';
import { LOG, safe, type TunnelLog } from './log.js';
import { errnoText } from './targets.js';

/** A service's TIMEOUTidle and TIMEOUTclose, in ms. */
export interface RelayTimeouts {
  idleTimeoutMs: number;
  closeTimeoutMs: number;
}

/** Logs `Connection closed|reset: N byte(s) sent to TLS, M byte(s) sent to socket`. */
export type ClosedLog = (how: 'closed' | 'reset', toTls: number, toSocket: number) => void;

/** `TLS accepted: ...` and the protocol and cipher suite, at LOG6 as stunnel. */
export function logNegotiated(log: TunnelLog, id: number, tls: TLSSocket): void {
  if (!log.enabled(LOG.info)) return;
  log.write(
    LOG.info,
    id,
    `TLS ${tls.isSessionReused() ? 'accepted: previous session reused' : 'accepted: new session negotiated'}`,
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
): Promise<void> {
  const r = await relayStreams(tls, plain, timeouts);
  report(log, id, r.reason, r.error);
  closed(r.reason === 'end' ? 'closed' : 'reset', r.bToA, r.aToB);
}

function report(log: TunnelLog, id: number, reason: string, error: Error | undefined): void {
  if (reason === 'idle') log.write(LOG.info, id, 's_poll_wait: TIMEOUTidle exceeded: sending reset');
  else if (reason === 'close-timeout') log.write(LOG.info, id, 's_poll_wait: TIMEOUTclose exceeded: closing');
  else if (reason === 'error' && error) log.write(LOG.err, id, `transfer: ${safe(errnoText(error))}`);
}

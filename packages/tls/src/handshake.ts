// The parts of a TLS handshake that both sides share: waiting for it with a deadline, OpenSSL's
// reason for a failure, and TLS errors after the handshake surfaced as errors.
import type { TLSSocket } from 'node:tls';

/** The outcome of {@link waitForHandshake}. */
export interface HandshakeResult {
  ok: boolean;
  /**
   * Why it failed, in OpenSSL's words (ERR_reason_error_string, as the originals log it:
   * `http request`, `wrong version number`, `unexpected eof while reading`); none for a timeout
   * or a reset.
   */
  reason?: string;
  /** True when the deadline passed. */
  timedOut?: boolean;
  /** The error node:tls reported, if any. */
  error?: Error;
}

/**
 * Wait for the handshake of `tlsSocket` (`secure` on a server socket, `secureConnect` on a client
 * one) for at most `timeoutMs`. Never rejects. The peer's EOF before the handshake finished ends
 * the wait at once: with allowHalfOpen there is no 'close' then, and a slot would stay taken until
 * the deadline.
 */
export function waitForHandshake(tlsSocket: TLSSocket, timeoutMs: number): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: HandshakeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      tlsSocket.off('secure', onSecure);
      tlsSocket.off('secureConnect', onSecure);
      resolve(result);
    };
    const onSecure = () => finish({ ok: true });
    const timer = setTimeout(() => finish({ ok: false, timedOut: true }), timeoutMs);
    tlsSocket.once('secure', onSecure);
    tlsSocket.once('secureConnect', onSecure);
    tlsSocket.once('error', (error: Error) => {
      const reason = opensslReason(error);
      finish(reason ? { ok: false, reason, error } : { ok: false, error });
    });
    tlsSocket.once('end', () => finish({ ok: false, reason: 'unexpected eof while reading' }));
    tlsSocket.once('close', () => finish({ ok: false }));
  });
}

/**
 * Make TLS failing after the handshake (a bad record, an alert) an 'error' of `tlsSocket`, which
 * ends it: node:tls reports such failures of a TLSSocket made around an existing socket only as
 * its internal `_tlsError` event (its 'error' is for sockets of a tls.Server), and leaves the
 * socket open. A pump then sees the error as it sees a reset.
 */
export function surfaceTlsErrors(tlsSocket: TLSSocket): void {
  tlsSocket.once('_tlsError', (err: Error) => tlsSocket.destroy(err));
}

/** OpenSSL's reason for an error of node:tls (ERR_reason_error_string), if it has one. */
export function opensslReason(err: Error): string | undefined {
  const reason = (err as { reason?: unknown }).reason;
  return typeof reason === 'string' ? reason : undefined;
}

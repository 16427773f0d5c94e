// The server side of a TLS handshake, bounded by -T, shared by the server and its TLS handler.
import type { TLSSocket } from 'node:tls';

export interface HandshakeResult {
  ok: boolean;
  /**
   * Why it failed, in OpenSSL's words (ERR_reason_error_string, as the originals log it:
   * `http request`, `wrong version number`, `unexpected eof while reading`); none for a timeout
   * or a reset.
   */
  reason?: string;
}

/** Wait for the handshake on `tlsSocket` for at most `timeoutMs`. */
export function tlsHandshake(tlsSocket: TLSSocket, timeoutMs: number): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: HandshakeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false }), timeoutMs);
    tlsSocket.once('secure', () => finish({ ok: true }));
    tlsSocket.once('error', (err: Error & { reason?: unknown }) =>
      finish(typeof err.reason === 'string' ? { ok: false, reason: err.reason } : { ok: false }),
    );
    // The client's EOF before the handshake finished: it never will. With allowHalfOpen there is
    // no 'close' then, and the slot would stay taken until -T.
    tlsSocket.once('end', () => finish({ ok: false, reason: 'unexpected eof while reading' }));
    tlsSocket.once('close', () => finish({ ok: false }));
  });
}

/**
 * Call `onError` once if TLS fails after the handshake (a bad record, an alert), and end the
 * connection. node:tls reports such failures of a TLSSocket made around an accepted socket only as
 * its internal `_tlsError` event (its 'error' is for sockets of a tls.Server), and leaves the
 * socket open.
 */
export function onTlsFailure(tlsSocket: TLSSocket, onError: (reason: string | undefined) => void): void {
  tlsSocket.once('_tlsError', (err: Error & { reason?: unknown }) => {
    onError(typeof err.reason === 'string' ? err.reason : undefined);
    tlsSocket.destroy();
  });
}

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
    tlsSocket.once('error', (err: Error) => {
      const reason = opensslReason(err);
      finish(reason ? { ok: false, reason } : { ok: false });
    });
    // The client's EOF before the handshake finished: it never will. With allowHalfOpen there is
    // no 'close' then, and the slot would stay taken until -T.
    tlsSocket.once('end', () => finish({ ok: false, reason: 'unexpected eof while reading' }));
    tlsSocket.once('close', () => finish({ ok: false }));
  });
}

/**
 * Make TLS failing after the handshake (a bad record, an alert) an 'error' of `tlsSocket`, which
 * ends it: node:tls reports such failures of a TLSSocket made around an accepted socket only as
 * its internal `_tlsError` event (its 'error' is for sockets of a tls.Server), and leaves the
 * socket open. The pump then sees the error as it sees a reset.
 */
export function surfaceTlsErrors(tlsSocket: TLSSocket): void {
  tlsSocket.once('_tlsError', (err: Error) => tlsSocket.destroy(err));
}

/** OpenSSL's reason for an error of node:tls (ERR_reason_error_string), if it has one. */
export function opensslReason(err: Error): string | undefined {
  const reason = (err as { reason?: unknown }).reason;
  return typeof reason === 'string' ? reason : undefined;
}

import type { TLSSocket } from 'node:tls';

/**
 * OpenSSL's verify result for the peer's certificate: undefined when it verified, else its code
 * (e.g. `CERT_HAS_EXPIRED`). A TLSSocket wrapped by hand, not through tls.Server, never gets
 * `authorized` set, so the result is read from the handle when Node recorded none.
 */
export function peerVerifyError(socket: TLSSocket): string | undefined {
  if (socket.authorized) return undefined;
  let err: Error | null | undefined = socket.authorizationError;
  if (!err) {
    const handle = (socket as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
    err = handle?.verifyError?.();
  }
  if (!err) return undefined;
  return (err as Error & { code?: string }).code ?? err.message;
}

import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { peerCertificate, peerVerifyError } from '@ucspi/env';

/** stunnel's `verify = LEVEL` (0 to 4), or undefined for its default: no verification. */
export type StunnelVerifyLevel = 0 | 1 | 2 | 3 | 4 | undefined;

/** What a verify level asks of the TLS options and of the check after the handshake. */
export interface VerifyPolicy {
  /** Whether a server asks the client for a certificate (a client always gets the server's). */
  requestCert: boolean;
  /** The decision after the handshake, with stunnel's reason when it refuses. */
  check(socket: TLSSocket): { ok: boolean; reason?: string };
}

/**
 * stunnel's verify levels (stunnel(8)): 0 requests and ignores the peer's certificate; 1 verifies
 * it if present; 2 requires and verifies it; 3 also requires it to be one of the locally installed
 * certificates (`localCerts`, stunnel's CAfile/CApath contents); 4 (stunnel 5.x) ignores the chain
 * and accepts only a locally installed certificate; undefined (the default) verifies nothing. The
 * chain verdict is OpenSSL's (node:tls, with the configured CAs); the local match compares DER.
 */
export function stunnelVerifyPolicy(
  level: StunnelVerifyLevel,
  localCerts: readonly string[] = [],
): VerifyPolicy {
  if (level !== undefined && ![0, 1, 2, 3, 4].includes(level))
    throw new RangeError(`verify level must be 0 to 4, not ${level}`);
  const local = localCerts.map((pem) => new X509Certificate(pem).raw);
  const isLocal = (socket: TLSSocket) => {
    const der = peerCertificate(socket)?.raw;
    return der !== undefined && local.some((l) => l.equals(der));
  };
  return {
    requestCert: level !== undefined,
    check(socket) {
      if (level === undefined || level === 0) return { ok: true };
      const present = peerCertificate(socket) !== undefined;
      if (!present) return level === 1 ? { ok: true } : { ok: false, reason: 'No peer certificate received' };
      if (level === 4)
        return isLocal(socket)
          ? { ok: true }
          : { ok: false, reason: 'Certificate not found in local repository' };
      const err = peerVerifyError(socket);
      if (err) return { ok: false, reason: `Certificate verification failed: ${err}` };
      if (level === 3 && !isLocal(socket))
        return { ok: false, reason: 'Certificate not found in local repository' };
      return { ok: true };
    },
  };
}

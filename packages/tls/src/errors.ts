/** Stable error codes of @ucspi/tls. Match on `err.code`. */
export const TlsErrorCodes = {
  /** No certificate configured (neither CERTFILE nor CERTCHAINFILE). */
  NO_CERT: 'UCSPI_ERR_TLS_NO_CERT',
  /** A certificate, key, CA, CRL, DH or ticket-key file is missing or unreadable. */
  FILE: 'UCSPI_ERR_TLS_FILE',
  /** A file holds no usable PEM (or a malformed one). */
  BAD_PEM: 'UCSPI_ERR_TLS_BAD_PEM',
  /** The private key does not belong to the certificate. */
  KEY_MISMATCH: 'UCSPI_ERR_TLS_KEY_MISMATCH',
  /** The key is encrypted and no password, or a wrong one, was given. */
  KEY_PASSWORD: 'UCSPI_ERR_TLS_KEY_PASSWORD',
  /** The server's own certificate has expired or is not valid yet. */
  CERT_EXPIRED: 'UCSPI_ERR_TLS_CERT_EXPIRED',
  /** Client certificates are required (-m, -z) but no CA to verify them was configured. */
  NO_CA: 'UCSPI_ERR_TLS_NO_CA',
  /** An option or variable has a value OpenSSL or this library cannot use. */
  BAD_OPTION: 'UCSPI_ERR_TLS_BAD_OPTION',
  /** Reading the key password from a file descriptor failed. */
  PASSWORD_FD: 'UCSPI_ERR_TLS_PASSWORD_FD',
  /** connectTls: the TLS handshake failed (an alert, a protocol error, the peer closed). */
  HANDSHAKE: 'UCSPI_ERR_TLS_HANDSHAKE',
  /** connectTls: the TLS handshake did not finish within its deadline. */
  HANDSHAKE_TIMEOUT: 'UCSPI_ERR_TLS_HANDSHAKE_TIMEOUT',
  /** connectTls: the handshake finished but the server's certificate was refused (policy or hook). */
  PEER_REJECTED: 'UCSPI_ERR_TLS_PEER_REJECTED',
} as const;

export type TlsErrorCode = (typeof TlsErrorCodes)[keyof typeof TlsErrorCodes];

/**
 * A TLS configuration error, raised before any connection is accepted. The message names the
 * file (or variable) and the reason. Unreadable files are temporary (111), everything else
 * permanent (100).
 */
export class TlsConfigError extends Error {
  readonly code: TlsErrorCode;
  readonly temporary: boolean;
  readonly path?: string;
  constructor(code: TlsErrorCode, message: string, extra: { path?: string; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'TlsConfigError';
    this.code = code;
    this.temporary = code === TlsErrorCodes.FILE || code === TlsErrorCodes.PASSWORD_FD;
    if (extra.path !== undefined) this.path = extra.path;
  }
}

/**
 * A TLS connection that could not be set up by connectTls: the handshake failed or timed out
 * (temporary, 111), or the server's certificate was refused (permanent, 100). `reason` is
 * OpenSSL's reason (`wrong version number`, `tlsv13 alert certificate required`) or the refusal's.
 */
export class TlsConnectError extends Error {
  readonly code: TlsErrorCode;
  readonly temporary: boolean;
  readonly reason?: string;
  constructor(code: TlsErrorCode, message: string, extra: { reason?: string; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'TlsConnectError';
    this.code = code;
    this.temporary = code !== TlsErrorCodes.PEER_REJECTED;
    if (extra.reason !== undefined) this.reason = extra.reason;
  }
}

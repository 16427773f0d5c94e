/** Stable error codes of @ucspi/starttls. Match on `err.code`, never on the class. */
export const StartTlsErrorCodes = {
  /** The protocol name is not one this side of the library knows. Permanent. */
  UNKNOWN_PROTOCOL: 'UCSPI_ERR_STARTTLS_UNKNOWN_PROTOCOL',
  /** An option is missing or unusable for the protocol (no `host` for xmpp or connect, a CR or LF in a name). */
  BAD_OPTION: 'UCSPI_ERR_STARTTLS_BAD_OPTION',
  /** The server's greeting was a refusal (SMTP 554, POP3 -ERR, IMAP BYE or PREAUTH). Temporary for a 4xx. */
  GREETING: 'UCSPI_ERR_STARTTLS_GREETING',
  /** The server does not offer STARTTLS (not in its capabilities). Never a plaintext fall-back. Permanent. */
  NOT_OFFERED: 'UCSPI_ERR_STARTTLS_NOT_OFFERED',
  /** The server answered the STARTTLS request with a refusal. Temporary when the reply says so (SMTP 454). */
  REFUSED: 'UCSPI_ERR_STARTTLS_REFUSED',
  /** An HTTP proxy asked for authentication (407) or refused the credentials given. Permanent. */
  PROXY_AUTH: 'UCSPI_ERR_STARTTLS_PROXY_AUTH',
  /** SMTP AUTH (the `auth` option): the server refused the credentials (535, or any reply but 235). Temporary for a 4xx. */
  AUTH: 'UCSPI_ERR_STARTTLS_AUTH',
  /** SMTP AUTH LOGIN: the server did not take up the mechanism (no 334 to `AUTH LOGIN`); nothing secret was sent. */
  AUTH_MECHANISM: 'UCSPI_ERR_STARTTLS_AUTH_MECHANISM',
  /** The peer said something the protocol does not allow here (malformed reply, wrong packet). Permanent. */
  PROTOCOL: 'UCSPI_ERR_STARTTLS_PROTOCOL',
  /** A line (or a binary message) was longer than `maxLineLength`. Permanent. */
  LINE_TOO_LONG: 'UCSPI_ERR_STARTTLS_LINE_TOO_LONG',
  /** The peer closed the connection during the plaintext dialogue. Temporary. */
  EOF: 'UCSPI_ERR_STARTTLS_EOF',
  /** The dialogue did not finish within `timeoutMs`. Temporary. */
  TIMEOUT: 'UCSPI_ERR_STARTTLS_TIMEOUT',
  /** The socket failed (reset, write after close). Temporary. */
  SOCKET: 'UCSPI_ERR_STARTTLS_SOCKET',
  /**
   * Plaintext arrived after the go-ahead and before the TLS handshake (the CVE-2011-0411 class):
   * refused, never replayed into the TLS session; the connection is destroyed. Permanent.
   */
  INJECTION: 'UCSPI_ERR_STARTTLS_INJECTION',
  /** Server side: the client ended the dialogue (QUIT, LOGOUT) without asking for TLS. Permanent. */
  QUIT: 'UCSPI_ERR_STARTTLS_QUIT',
  /** Server side: the client sent too many commands that are not allowed before TLS. Permanent. */
  TOO_MANY_ERRORS: 'UCSPI_ERR_STARTTLS_TOO_MANY_ERRORS',
} as const;

/** One of the {@link StartTlsErrorCodes} values. */
export type StartTlsErrorCode = (typeof StartTlsErrorCodes)[keyof typeof StartTlsErrorCodes];

const TEMPORARY_CODES: ReadonlySet<StartTlsErrorCode> = new Set([
  StartTlsErrorCodes.EOF,
  StartTlsErrorCodes.TIMEOUT,
  StartTlsErrorCodes.SOCKET,
]);

/** Extra facts an error may carry. */
export interface StartTlsErrorDetails {
  /** Overrides the code's default `temporary` flag (a 4xx SMTP reply is temporary, a 5xx permanent). */
  temporary?: boolean;
  /** The protocol name. */
  protocol?: string;
  /** The peer's reply that caused the error, as received (possibly several lines). */
  reply?: string;
  /** The underlying error (a socket error). */
  cause?: unknown;
}

/**
 * A failure of a STARTTLS dialogue. `temporary` is true for the failures a retry may cure
 * (timeouts, EOF, socket errors, temporary refusals such as SMTP 454): apps map it to exit 111,
 * everything else to 100.
 */
export class StartTlsError extends Error {
  /** The stable code, `UCSPI_ERR_STARTTLS_<WHAT>`. */
  readonly code: StartTlsErrorCode;
  /** True when a later retry may succeed (exit 111), false for permanent failures (exit 100). */
  readonly temporary: boolean;
  /** The protocol whose dialogue failed. */
  readonly protocol?: string;
  /** The peer's reply that caused the error, when there was one. */
  readonly reply?: string;
  /** The underlying error. */
  override readonly cause?: unknown;

  constructor(code: StartTlsErrorCode, message: string, details: StartTlsErrorDetails = {}) {
    super(message);
    this.name = 'StartTlsError';
    this.code = code;
    this.temporary = details.temporary ?? TEMPORARY_CODES.has(code);
    if (details.protocol !== undefined) this.protocol = details.protocol;
    if (details.reply !== undefined) this.reply = details.reply;
    if (details.cause !== undefined) this.cause = details.cause;
  }
}

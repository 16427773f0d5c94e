// The configuration's errors: a bad line, a bad part, in stunnel's words.

/** A bad value or an option that cannot be used: the parser adds `PATH:LINE: "TEXT": `. */
export class OptionError extends Error {
  override readonly name = 'OptionError';
  /** Lines stunnel prints before the line's own message (e.g. why a secret is not read). */
  constructor(
    message: string,
    readonly before: readonly string[] = [],
  ) {
    super(message);
  }
}

/**
 * A configuration error in stunnel's words: `PATH:LINE: "TEXT": MESSAGE` for a line, `Service
 * [NAME]: MESSAGE`, `Inetd mode: MESSAGE` or `Global options: MESSAGE` for a whole part. `before`
 * holds the lines stunnel prints first (a system error such as `scandir: ...`).
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'UCSPI_ERR_TUNNEL_CONFIG';
  constructor(
    message: string,
    readonly before: readonly string[] = [],
  ) {
    super(message);
  }
}

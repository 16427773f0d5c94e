/** Stable error codes of @ucspi/server. Match on `err.code`; never renamed. */
export const ServerErrorCodes = {
  /** The command line is wrong (apps print their usage line). Permanent. */
  USAGE: 'UCSPI_ERR_SERVER_USAGE',
  /** The host operand has no address, or its lookup failed. Temporary. */
  ADDRESS: 'UCSPI_ERR_SERVER_ADDRESS',
  /** The port operand is neither a number nor a known service name. Temporary, as the originals. */
  PORT: 'UCSPI_ERR_SERVER_PORT',
  /** bind() or listen() failed (EADDRINUSE, EACCES, EADDRNOTAVAIL, ...). Temporary. */
  BIND: 'UCSPI_ERR_SERVER_BIND',
  /** Dropping to the -g group failed. Temporary. */
  SETGID: 'UCSPI_ERR_SERVER_SETGID',
  /** Dropping to the -u user failed. Temporary. */
  SETUID: 'UCSPI_ERR_SERVER_SETUID',
  /** MAXCONIP is not a whole number. Permanent. */
  MAXCONIP: 'UCSPI_ERR_SERVER_MAXCONIP',
} as const;

export type ServerErrorCode = (typeof ServerErrorCodes)[keyof typeof ServerErrorCodes];

/**
 * An error of @ucspi/server. `temporary` says who must act: true (exit 111) when trying again may
 * work, false (exit 100) when the configuration must change. The message is in the originals'
 * words, ready for `NAME: fatal: MESSAGE`.
 */
export class ServerError extends Error {
  readonly code: ServerErrorCode;
  readonly temporary: boolean;

  constructor(code: ServerErrorCode, message: string, temporary: boolean, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ServerError';
    this.code = code;
    this.temporary = temporary;
  }
}

/**
 * The exit code for an error that ended a run: 100 for a permanent one (`temporary === false`),
 * 111 for everything else, as the originals (a temporary failure is the safe default: a supervisor
 * restarts the server).
 */
export function exitCodeOf(err: unknown): 100 | 111 {
  return (err as { temporary?: unknown }).temporary === false ? 100 : 111;
}

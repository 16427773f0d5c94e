/** Stable error codes of tcpclient's main(). Match on `err.code`. */
export const ClientErrorCodes = {
  /** A bad command line: the usage is printed, exit 100. */
  USAGE: 'UCSPI_ERR_CLIENT_USAGE',
  /** A failure that ends the run with its exit code (100 permanent, 111 temporary). */
  FATAL: 'UCSPI_ERR_CLIENT_FATAL',
} as const;

/** A bad command line: main prints the message (if any) and the usage, and exits 100. */
export class UsageError extends Error {
  readonly code = ClientErrorCodes.USAGE;
  readonly temporary = false;
}

/** A failure that ends the run: printed as `tcpclient: fatal: MESSAGE`, then exit `exitCode`. */
export class FatalError extends Error {
  readonly code = ClientErrorCodes.FATAL;
  constructor(
    message: string,
    readonly exitCode: number,
    /** Printed without `fatal: ` (the connection attempts' own lines were printed already). */
    readonly quiet = false,
  ) {
    super(message);
  }
  get temporary(): boolean {
    return this.exitCode === 111;
  }
}

/** Stable error codes of @ucspi/cdb. Match on `err.code`. */
export const CdbErrorCodes = {
  /** The data is not a valid cdb (truncated, or a pointer or length out of range). */
  CORRUPT: 'UCSPI_ERR_CDB_CORRUPT',
  /** The database would pass the format's 4 GiB limit. */
  TOO_LARGE: 'UCSPI_ERR_CDB_TOO_LARGE',
  /** The temporary file could not be created. */
  CREATE: 'UCSPI_ERR_CDB_CREATE',
  /** Writing or syncing the temporary file failed. */
  WRITE: 'UCSPI_ERR_CDB_WRITE',
  /** The temporary file could not be renamed into place. */
  RENAME: 'UCSPI_ERR_CDB_RENAME',
  /** The database file could not be read. */
  READ: 'UCSPI_ERR_CDB_READ',
} as const;

export type CdbErrorCode = (typeof CdbErrorCodes)[keyof typeof CdbErrorCodes];

const TEMPORARY = new Set<CdbErrorCode>([
  CdbErrorCodes.CREATE,
  CdbErrorCodes.WRITE,
  CdbErrorCodes.RENAME,
  CdbErrorCodes.READ,
]);

/**
 * An error of @ucspi/cdb. I/O errors are `temporary` (exit 111 in the tools) and carry the
 * system error as `cause`; a corrupt or oversized database is permanent.
 */
export class CdbError extends Error {
  readonly code: CdbErrorCode;
  readonly temporary: boolean;
  /** The file involved, when there is one. */
  readonly path?: string;

  constructor(code: CdbErrorCode, message: string, options: { path?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CdbError';
    this.code = code;
    this.temporary = TEMPORARY.has(code);
    if (options.path !== undefined) this.path = options.path;
  }
}

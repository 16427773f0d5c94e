/** Stable error codes of @ucspi/getopt. Match on `err.code`, never on the class. */
export const GetoptErrorCodes = {
  /** An option letter that is not in the option string. */
  UNKNOWN_OPTION: 'UCSPI_ERR_GETOPT_UNKNOWN_OPTION',
  /** An option that takes an argument was the last word of argv. */
  MISSING_ARGUMENT: 'UCSPI_ERR_GETOPT_MISSING_ARGUMENT',
  /** The option string itself is malformed (a programming error). */
  BAD_OPTSTRING: 'UCSPI_ERR_GETOPT_BAD_OPTSTRING',
} as const;

export type GetoptErrorCode = (typeof GetoptErrorCodes)[keyof typeof GetoptErrorCodes];

/**
 * A usage error found while parsing argv. It is never temporary: the UCSPI tools turn it into
 * their usage message and exit 100.
 */
export class GetoptError extends Error {
  readonly code: GetoptErrorCode;
  /** The offending option letter. */
  readonly option: string;
  /** Always false: a usage error is permanent (exit 100). */
  readonly temporary = false;

  constructor(code: GetoptErrorCode, option: string, message: string) {
    super(message);
    this.name = 'GetoptError';
    this.code = code;
    this.option = option;
  }
}

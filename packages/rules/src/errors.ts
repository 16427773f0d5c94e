/** Stable error codes of @ucspi/rules. Match on `err.code`. */
export const RulesErrorCodes = {
  /** A rules line tcprules cannot parse. */
  PARSE: 'UCSPI_ERR_RULES_PARSE',
  /** The rules cdb does not exist (a server with -X then allows the connection). */
  NO_CDB: 'UCSPI_ERR_RULES_NO_CDB',
  /** The rules cdb exists but cannot be read, or is corrupt. */
  READ: 'UCSPI_ERR_RULES_READ',
} as const;

export type RulesErrorCode = (typeof RulesErrorCodes)[keyof typeof RulesErrorCodes];

/** An error of @ucspi/rules. A parse error is permanent (exit 100); reading errors are temporary (111). */
export class RulesError extends Error {
  readonly code: RulesErrorCode;
  readonly temporary: boolean;
  /** For UCSPI_ERR_RULES_PARSE: the 1-based line number and the line as tcprules prints it. */
  readonly line?: number;
  readonly text?: Buffer;
  /** For reading errors: the file. */
  readonly path?: string;

  constructor(
    code: RulesErrorCode,
    message: string,
    extra: { line?: number; text?: Buffer; path?: string; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'RulesError';
    this.code = code;
    this.temporary = code === RulesErrorCodes.READ;
    if (extra.line !== undefined) this.line = extra.line;
    if (extra.text !== undefined) this.text = extra.text;
    if (extra.path !== undefined) this.path = extra.path;
  }
}

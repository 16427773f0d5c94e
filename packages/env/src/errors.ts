/** Stable error codes of @ucspi/env. Match on `err.code`. */
export const EnvErrorCodes = {
  /** A UCSPI-TLS environment list (`NAME=value\0...\0`) is malformed or too large. */
  BAD_LIST: 'UCSPI_ERR_ENV_BAD_LIST',
  /** A variable name or value cannot be put into an environment (NUL byte, `=` in a name, empty name). */
  BAD_VARIABLE: 'UCSPI_ERR_ENV_BAD_VARIABLE',
  /** modSslEnv was given a socket whose TLS handshake has not completed. */
  NOT_TLS: 'UCSPI_ERR_ENV_NOT_TLS',
} as const;

export type EnvErrorCode = (typeof EnvErrorCodes)[keyof typeof EnvErrorCodes];

/** An error of @ucspi/env. All are permanent (`temporary: false`): the input is wrong. */
export class EnvError extends Error {
  readonly code: EnvErrorCode;
  readonly temporary = false;
  constructor(code: EnvErrorCode, message: string) {
    super(message);
    this.name = 'EnvError';
    this.code = code;
  }
}

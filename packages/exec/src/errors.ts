import { getSystemErrorName } from 'node:util';

/** Stable error codes of @ucspi/exec. */
export type ExecErrorCode = 'UCSPI_ERR_EXEC_SPAWN' | 'UCSPI_ERR_EXEC_IDLE_TIMEOUT' | 'UCSPI_ERR_EXEC_JAIL';

/**
 * An error of @ucspi/exec. `temporary` tells an app whether to exit 111 (true) or 100 (false).
 */
export class ExecError extends Error {
  readonly code: ExecErrorCode;
  readonly temporary: boolean;
  override readonly cause?: unknown;
  constructor(code: ExecErrorCode, message: string, temporary: boolean, cause?: unknown) {
    super(message);
    this.name = 'ExecError';
    this.code = code;
    this.temporary = temporary;
    if (cause !== undefined) this.cause = cause;
  }
}

/** A system error as Node.js builds them, from a positive errno the addon returned. */
export function systemError(errno: number, syscall: string, path: string): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(-errno);
  } catch {
    code = `errno ${errno}`;
  }
  return Object.assign(new Error(`${syscall} ${path}: ${code}`), { code, errno: -errno, syscall, path });
}

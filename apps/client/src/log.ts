// tcpclient's words on stderr: `tcpclient: fatal: ...` for what ends it, the originals' warning
// lines (`tcpclient: unable to connect to IP port PORT: REASON`), and -v's status lines. -q says
// nothing at all. Reasons of system errors are djb's error_str texts, as the originals print them.

/** Where and how much tcpclient says. */
export interface Log {
  /** -Q and -v: `tcpclient: fatal: MESSAGE` */
  fatal(message: string): void;
  /** -Q and -v: a whole line (already prefixed) */
  warn(line: string): void;
  /** -v only: `tcpclient: MESSAGE` */
  info(message: string): void;
}

/** A log on `stderr` at `verbosity` (0 -q, 1 -Q, 2 -v). */
export function createLog(verbosity: 0 | 1 | 2, stderr: NodeJS.WritableStream): Log {
  return {
    fatal: (message) => {
      if (verbosity > 0) stderr.write(`tcpclient: fatal: ${message}\n`);
    },
    warn: (line) => {
      if (verbosity > 0) stderr.write(`${line}\n`);
    },
    info: (message) => {
      if (verbosity > 1) stderr.write(`tcpclient: ${message}\n`);
    },
  };
}

/**
 * djb's text for a system error (`connection refused`, `timed out`), from @ucspi/rules's table,
 * loaded only when an error is to be printed.
 */
export async function errorText(err: unknown): Promise<string> {
  const { errorStr } = await import('@ucspi/rules');
  return errorStr(err);
}

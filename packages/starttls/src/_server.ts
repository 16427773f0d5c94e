import { hostname } from 'node:os';
import { checkToken, show } from './_reply.js';
import { StartTlsErrorCodes } from './errors.js';
import type { Dialogue } from './protocol.js';

/** What a server protocol's command handler decided about one command line. */
export type Verdict =
  /** Answer and read the next command; `error` counts towards maxErrors. */
  | { reply: string; error?: boolean }
  /** The client asked for TLS: this is the go-ahead (without CRLF). */
  | { goAhead: string }
  /** The client ended the session: answer, then fail with UCSPI_ERR_STARTTLS_QUIT. */
  | { quit: string };

/** The server's name for greetings: the `hostname` option or os.hostname(), one printable word. */
export function serverName(d: Dialogue): string {
  return checkToken(d, 'hostname', d.options.hostname ?? hostname());
}

/**
 * The command loop every server side shares: reads a command line, lets `handle` answer it, and
 * ends with the go-ahead, a QUIT failure, or UCSPI_ERR_STARTTLS_TOO_MANY_ERRORS after `maxErrors`
 * refused commands (`farewell` is sent first, as SMTP's 421).
 */
export async function commandLoop(
  d: Dialogue,
  handle: (line: string) => Verdict,
  farewell: string,
): Promise<string> {
  const maxErrors = d.options.maxErrors ?? 10;
  let errors = 0;
  for (;;) {
    const line = await d.readLine();
    const verdict = handle(line);
    if ('goAhead' in verdict) return `${verdict.goAhead}\r\n`;
    if ('quit' in verdict) {
      d.write(`${verdict.quit}\r\n`);
      d.fail(StartTlsErrorCodes.QUIT, 'the client ended the session without STARTTLS');
    }
    if (verdict.error && ++errors >= maxErrors) {
      d.writeLine(farewell);
      d.fail(
        StartTlsErrorCodes.TOO_MANY_ERRORS,
        `${errors} commands refused before STARTTLS; connection dropped`,
      );
    }
    d.write(`${verdict.reply}\r\n`);
  }
}

/**
 * The greeting to send: the `greeting` option (lines joined with CRLF, each of which must pass
 * `valid`, so a caller's value can neither break the protocol nor smuggle a reply) or `fallback`.
 * Returned with its final CRLF.
 */
export function greetingText(d: Dialogue, fallback: string, valid: (lines: string[]) => boolean): string {
  const given = d.options.greeting;
  if (given === undefined) return `${fallback}\r\n`;
  const lines = given.replace(/\r?\n$/, '').split(/\r?\n/);
  if (lines.some((l) => /[\r\x00]/.test(l) || l.length > 512) || !valid(lines)) {
    d.fail(
      StartTlsErrorCodes.BAD_OPTION,
      `the greeting option is not a positive greeting of the protocol: ${show(given)}`,
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** The command verb of a line, upper-cased, and the rest. */
export function verb(line: string): [string, string] {
  // [\s\S]: a line may hold a bare CR or other control characters; it still has a verb.
  const m = /^(\S*)\s*([\s\S]*)$/.exec(line) as RegExpExecArray;
  return [(m[1] as string).toUpperCase(), m[2] as string];
}

// The pattern of a server section's `sni = PRIMARY:PATTERN`. stunnel 5.68 accepts any text and
// compares it with the client's server name (a leading `*` standing for any prefix); a pattern
// that no host name can match would leave the section silently unused, so it is refused here.
import { OptionError } from './errors.js';

/** Letters, digits, `.`, `-`, `_`, optionally after one leading `*` (alone, `*` matches every name). */
const PATTERN = /^\*?[A-Za-z0-9._-]*$/;

/** @throws {OptionError} when no server name can ever match `pattern`. */
export function checkSniPattern(pattern: string): void {
  if (pattern === '') throw new OptionError('Invalid SNI pattern: empty');
  if (!PATTERN.test(pattern))
    throw new OptionError(
      "Invalid SNI pattern: host name characters only, with '*' as the first character only",
    );
}

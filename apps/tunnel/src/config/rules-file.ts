// `rules = FILE.cdb` (beyond stunnel): sslserver's rules per client address, compiled by tcprules.
// The file is checked when the configuration is read, so that a missing or wrong file fails the
// start (or the reload) naming the line, instead of refusing every client later, as sslserver -x
// without -X would.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { OptionError } from './errors.js';

/** A cdb starts with a table of 256 pointer pairs: no shorter file is one. */
const CDB_HEADER = 2048;

/** The system's words for a failed call, as stunnel prints them: `No such file or directory (2)`. */
export function systemErrorText(err: NodeJS.ErrnoException): string {
  const known = err.errno !== undefined ? getSystemErrorMap().get(err.errno) : undefined;
  if (!known) return err.message ?? String(err);
  const text = known[1];
  return `${text.charAt(0).toUpperCase()}${text.slice(1)} (${-err.errno!})`;
}

/**
 * The absolute path of a rules cdb that exists and can be a cdb (checked at `at`: where it is
 * read from now, under the chroot directory before the chroot).
 *
 * @throws {OptionError} naming what is wrong with the file.
 */
export function checkRulesFile(value: string, at = value): string {
  const path = resolve(value);
  // With `chroot`, the file is looked up inside the jail (config/chroot.ts's jailPath gives `at`).
  const seen = resolve(at);
  let size: number;
  try {
    const st = statSync(seen);
    if (!st.isFile()) throw new OptionError(`Rules file ${seen} is not a regular file`);
    size = st.size;
  } catch (err) {
    if (err instanceof OptionError) throw err;
    throw new OptionError(`Cannot read rules file ${seen}: ${systemErrorText(err as NodeJS.ErrnoException)}`);
  }
  if (size < CDB_HEADER) throw new OptionError(`Rules file ${seen} is not a cdb (make it with tcprules)`);
  return path;
}

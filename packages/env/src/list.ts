import { checkVariable } from './child.js';
import { EnvError, EnvErrorCodes } from './errors.js';

/** Largest list decodeEnvList accepts (a certificate chain in PEM fits many times over). */
export const MAX_ENV_LIST_BYTES = 1 << 20;

/**
 * Encode variables as the UCSPI-TLS control socket carries them after a `Y`:
 * `NAME=value\0` for each, then one more `\0` ending the list (so an empty list is `\0\0`,
 * as ucspi-ssl writes it).
 */
export function encodeEnvList(vars: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(vars)) {
    checkVariable(name, value);
    parts.push(Buffer.from(`${name}=${value}\0`));
  }
  parts.push(Buffer.from(parts.length === 0 ? '\0\0' : '\0'));
  return Buffer.concat(parts);
}

/**
 * Decode a list written by {@link encodeEnvList} (or by ucspi-ssl). Items run to each NUL; the
 * first empty item ends the list; anything after that other than one more NUL is an error, as is
 * an item without `=`, a missing terminator or a list over {@link MAX_ENV_LIST_BYTES}.
 *
 * @throws {EnvError} UCSPI_ERR_ENV_BAD_LIST
 */
export function decodeEnvList(buf: Buffer): Record<string, string> {
  const bad = (why: string) => new EnvError(EnvErrorCodes.BAD_LIST, `malformed environment list: ${why}`);
  if (buf.length > MAX_ENV_LIST_BYTES) throw bad(`longer than ${MAX_ENV_LIST_BYTES} bytes`);
  const out: Record<string, string> = {};
  let pos = 0;
  for (;;) {
    const end = buf.indexOf(0, pos);
    if (end < 0) throw bad('no terminating NUL');
    if (end === pos) {
      pos++;
      break;
    }
    const item = buf.subarray(pos, end).toString('utf8');
    const eq = item.indexOf('=');
    if (eq <= 0) throw bad(`item without NAME= at byte ${pos}`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
    pos = end + 1;
  }
  // An empty list is written as two NULs: accept the second one.
  if (Object.keys(out).length === 0 && buf[pos] === 0) pos++;
  if (pos !== buf.length) throw bad(`${buf.length - pos} bytes after the end of the list`);
  return out;
}

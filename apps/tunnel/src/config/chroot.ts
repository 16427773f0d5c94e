// `chroot = DIRECTORY` when the configuration is read. stunnel 5.68 chroots once, at start, after
// binding (stunnel.c's change_root); a reload does not apply it again, and from then on every path
// is looked up inside the jail. Paths stunnel's OpenSSL reads only when a peer is verified
// (CApath, CRLpath) or this tunnel reads per connection (`rules`) are therefore inside the jail
// even at start: read before the chroot, they are taken under DIRECTORY.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { nativeSpawn } from '@ucspi/exec';
import { OptionError } from './errors.js';
import type { OptionContext } from './options.js';
import { systemErrorText } from './rules-file.js';
import type { ServiceConfig } from './types.js';

let entered: string | undefined;

/** The directory this process chrooted to, once it has. */
export function enteredJail(): string | undefined {
  return entered;
}

/** Record that the process is now inside `dir` (chroot.ts calls it after chroot(2)). */
export function markJailEntered(dir: string): void {
  entered = dir;
}

/**
 * Where a path of the configuration that belongs inside the jail is read now: under `root` before
 * the chroot, as written once inside (or without `chroot`).
 */
export function jailPath(root: string | undefined, path: string): string;
export function jailPath(root: string | undefined, path: string | undefined): string | undefined;
export function jailPath(root: string | undefined, path: string | undefined): string | undefined {
  return path !== undefined && root !== undefined && entered === undefined ? join(root, path) : path;
}

/** The `chroot` line: the directory must exist (and Node.js needs @ucspi/exec's addon to chroot). */
export function chrootOption(ctx: OptionContext, value: string): void {
  // A reload inside the jail: not applied again (stunnel's HUP), and DIR means nothing in here.
  if (entered !== undefined) {
    ctx.globals.chroot = value;
    return;
  }
  if (!nativeSpawn)
    throw new OptionError(
      'chroot needs the native addon of @ucspi/exec (Linux x64/arm64): Node.js has no chroot',
    );
  // stunnel finds out only at chroot(2), after binding; here -t and the start fail first.
  let why: string | undefined;
  try {
    if (!statSync(value).isDirectory()) why = 'Not a directory (20)';
  } catch (err) {
    why = systemErrorText(err as NodeJS.ErrnoException);
  }
  if (why) throw new OptionError('Failed to change root directory', [`chroot: ${why}`]);
  ctx.globals.chroot = value;
}

/** The service as its TLS files are read now: CApath and CRLpath under the jail before the chroot. */
export function jailedPaths(s: ServiceConfig, root: string | undefined): ServiceConfig {
  if (root === undefined || entered !== undefined) return s;
  return { ...s, caPath: jailPath(root, s.caPath), crlPath: jailPath(root, s.crlPath) };
}

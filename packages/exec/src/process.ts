// Process-wide primitives Node.js does not offer, through the native addon: confining the current
// process (chroot, then group and user) and dropping a connection's IP options.
import type { Socket } from 'node:net';
import { handleFd, native } from './_native.js';
import { ExecError, systemError } from './errors.js';

/** What {@link jail} confines the current process to; every field is optional. */
export interface JailSpec {
  /** chroot(2) into this directory (then chdir("/")). Needs the native addon and root. */
  root?: string;
  /** setgroups([gid]) and setgid(gid), as djb's prot_gid. */
  gid?: number;
  /** setuid(uid), after the group, as djb's prot_uid. */
  uid?: number;
}

function jailError(what: string, cause: unknown): ExecError {
  const e = cause as NodeJS.ErrnoException;
  return new ExecError('UCSPI_ERR_EXEC_JAIL', `unable to ${what}: ${e.code ?? e.message}`, true, cause);
}

/**
 * Confine the current process, in the order of ucspi-ssl's TLS handler: chroot, group, user.
 * Throws an ExecError (`UCSPI_ERR_EXEC_JAIL`, temporary) naming the step that failed; a chroot
 * without the native addon fails too (Node.js has no chroot), it is never skipped.
 */
export function jail(spec: JailSpec): void {
  if (spec.root !== undefined) {
    if (!native)
      throw new ExecError(
        'UCSPI_ERR_EXEC_JAIL',
        `unable to chroot to ${spec.root}: needs the native addon of @ucspi/exec (Linux x64/arm64)`,
        false,
      );
    const errno = native.chroot(spec.root);
    if (errno) throw jailError(`chroot to ${spec.root}`, systemError(errno, 'chroot', spec.root));
  }
  if (spec.gid !== undefined) {
    try {
      process.setgroups?.([spec.gid]);
      process.setgid?.(spec.gid);
    } catch (err) {
      throw jailError(`set gid ${spec.gid}`, err);
    }
  }
  if (spec.uid !== undefined) {
    try {
      process.setuid?.(spec.uid);
    } catch (err) {
      throw jailError(`set uid ${spec.uid}`, err);
    }
  }
}

/** Whether {@link killIpOptions} can act here (the native addon is loaded). */
export const canKillIpOptions: boolean = native !== undefined;

/**
 * Drop the IP options (such as a source route) that an IPv4 client's SYN carried, so that replies
 * go out along the default route: tcpserver's and sslserver's -O, ucspi-tcp's
 * socket_ipoptionskill. Returns false when it could not be done (no native addon, no descriptor,
 * or the kernel refused, as it does for a native IPv6 peer, which has no IP options).
 */
export function killIpOptions(socket: Socket): boolean {
  if (!native) return false;
  const fd = handleFd(socket);
  if (fd === undefined) return false;
  return native.killIpOptions(fd) === 0;
}

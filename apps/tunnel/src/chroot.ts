// Confinement after binding: the `chroot` jail, as stunnel 5.68's change_root (then `Switched to
// chroot directory: DIR`), and setgid/setuid (names looked up before, outside the jail). Node.js has no chroot(2): @ucspi/exec's native addon
// does it. Inside an empty jail no file of this program can be read any more, so every module
// that is otherwise imported on first use is imported before (node: built-ins are compiled into
// the binary and need no file; an ES module already loaded is served from the module cache).
import { readFileSync } from 'node:fs';
import { jail } from '@ucspi/exec';
import { dropPrivileges, type PrivilegeDrop } from '@ucspi/server';
import { loadProtocol } from '@ucspi/starttls';
import { markJailEntered } from './config/chroot.js';
import { sysText } from './config/parse.js';
import { systemErrorText } from './config/rules-file.js';
import type { GlobalConfig } from './config/types.js';
import { LOG, type TunnelLog } from './log.js';

/** The STARTTLS dialogues a service can use (server side, client side): see config/validate.ts. */
const SERVER_PROTOCOLS = ['smtp', 'pop3', 'imap'];
const CLIENT_PROTOCOLS = ['smtp', 'pop3', 'imap', 'nntp', 'connect'];

/** Load what the tunnel would import lazily: all of it, so that a reload can use any of it too. */
export async function preloadForJail(): Promise<void> {
  await Promise.all([
    ...SERVER_PROTOCOLS.map((p) => loadProtocol(p, 'server')),
    ...CLIENT_PROTOCOLS.map((p) => loadProtocol(p, 'client')),
  ]);
}

/**
 * chroot(2) to `dir` and chdir("/"). Descriptors already open (the listeners, stderr) stay open.
 *
 * @throws {Error} `chroot: REASON` in stunnel's words (`chroot: Operation not permitted (1)`).
 */
export async function enterJail(dir: string): Promise<void> {
  await preloadForJail();
  try {
    jail({ root: dir });
  } catch (err) {
    const cause = ((err as { cause?: unknown }).cause ?? err) as NodeJS.ErrnoException;
    throw new Error(`chroot: ${cause.errno !== undefined ? systemErrorText(cause) : cause.message}`);
  }
  markJailEntered(dir);
}

/**
 * chroot (stunnel's change_root), then setgid and setuid (looked up before, outside the jail),
 * then the deferred `output` opened inside the jail, as stunnel 5.68's main_configure.
 */
export async function confine(g: GlobalConfig, log: TunnelLog): Promise<void> {
  const ids = userIds(g.setuid, g.setgid);
  if (g.chroot !== undefined) {
    await enterJail(g.chroot);
    log.write(LOG.notice, 'ui', `Switched to chroot directory: ${g.chroot}`);
  }
  dropPrivileges(ids);
  try {
    log.openOutput();
  } catch (err) {
    throw new Error(`Cannot open log file: ${g.output}: ${sysText(err)}`);
  }
}

/** setuid/setgid: a name from the system's databases or a number. */
export function dropTo(user: string | undefined, group: string | undefined): void {
  dropPrivileges(userIds(user, group));
}

/**
 * setuid/setgid as numbers, looked up now: before a chroot, as stunnel looks names up when it
 * reads the configuration (inside the jail /etc/passwd is not there).
 */
export function userIds(user: string | undefined, group: string | undefined): PrivilegeDrop {
  const id = (file: string, name: string): number => {
    if (/^\d+$/.test(name)) return Number(name);
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f[2] !== undefined) return Number(f[2]);
    }
    throw new Error(`Failed to resolve ${file === '/etc/passwd' ? 'user' : 'group'} name "${name}"`);
  };
  const gid = group !== undefined ? id('/etc/group', group) : undefined;
  const uid = user !== undefined ? id('/etc/passwd', user) : undefined;
  return { ...(gid !== undefined ? { gid } : {}), ...(uid !== undefined ? { uid } : {}) };
}

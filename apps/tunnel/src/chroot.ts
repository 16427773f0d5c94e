// Entering the `chroot` jail, as stunnel 5.68's change_root: after binding, before setgid/setuid,
// then `Switched to chroot directory: DIR`. Node.js has no chroot(2): @ucspi/exec's native addon
// does it. Inside an empty jail no file of this program can be read any more, so every module
// that is otherwise imported on first use is imported before (node: built-ins are compiled into
// the binary and need no file; an ES module already loaded is served from the module cache).
import { jail } from '@ucspi/exec';
import { loadProtocol } from '@ucspi/starttls';
import { markJailEntered } from './config/chroot.js';
import { systemErrorText } from './config/rules-file.js';

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

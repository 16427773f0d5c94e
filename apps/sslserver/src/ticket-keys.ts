// TLSTICKETKEYS=FILE: session ticket keys shared by several sslservers, and their rotation.
//
// The file is 48 raw bytes (`openssl rand 48 > FILE`). A new file renamed into place is picked up
// while the server runs: a timer stats the path once a second and compares its identity (device,
// inode, size, modification time, as the rules cdb is checked), and reads it again when it
// changed. A timer rather than a check on each connection: the new keys take effect within a
// second whether or not clients come, the log says when, and the connection path does no extra
// work; the price is one stat a second in the thread pool. The server process reads the file and
// hands the bytes to its TLS handlers (TLSWORKERS, SSL_CHROOT), which may not see the file at all.
import { stat } from 'node:fs/promises';
import { readTicketKeysFile } from '@ucspi/tls';
import type { ServerLog } from './log.js';

type Env = Record<string, string | undefined>;

/** How often the file's identity is checked. */
export const TICKET_KEYS_CHECK_MS = 1000;

/** The ticket keys as last read, and the identity of the file they were read from. */
export interface TicketKeySource {
  path: string;
  keys: Buffer;
  /** `dev:ino:size:mtimeNs`; '' when the file could be read but not stat'ed. */
  id: string;
}

/** TLSTICKETKEYS: the ticket key file, or undefined (unset or empty: a random key per process). */
export function ticketKeysFile(env: Env): string | undefined {
  return env.TLSTICKETKEYS || undefined;
}

async function fileId(path: string): Promise<string> {
  const s = await stat(path, { bigint: true });
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}`;
}

/**
 * Read the ticket key file. The identity is taken before the bytes: a file replaced in between
 * is then read once more at the next check, never missed.
 *
 * @throws {TlsConfigError} unreadable (temporary) or not 48 bytes (permanent), naming the file
 */
export async function readTicketKeySource(path: string): Promise<TicketKeySource> {
  const id = await fileId(path).catch(() => '');
  const keys = await readTicketKeysFile(path, 'TLSTICKETKEYS');
  return { path, keys, id };
}

/** A running check of the ticket key file. */
export interface TicketKeyWatch {
  close(): void;
}

/**
 * Check `source.path` every {@link TICKET_KEYS_CHECK_MS}; when it was replaced by a good file,
 * call `apply` with the new keys and say so (-v). A bad replacement (missing, unreadable, not 48
 * bytes) is warned about once and the current keys stay: a running server keeps serving.
 */
export function watchTicketKeys(
  source: TicketKeySource,
  apply: (keys: Buffer) => void,
  log: ServerLog,
): TicketKeyWatch {
  let currentId = source.id;
  // The identity last warned about, so that a bad file is reported once, not every second.
  let warnedId: string | undefined;
  let busy = false;
  const warn = (id: string, message: string) => {
    if (warnedId === id) return;
    warnedId = id;
    log.notice(`warning: ${message}, keeping the current ticket keys`);
  };
  const check = async () => {
    let id: string;
    try {
      id = await fileId(source.path);
    } catch (err) {
      const code = (err as { code?: string }).code;
      warn(
        `stat:${code}`,
        `unable to read TLSTICKETKEYS ${source.path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      );
      return;
    }
    if (id === currentId) return;
    try {
      const next = await readTicketKeySource(source.path);
      apply(next.keys);
      currentId = id;
      warnedId = undefined;
      log.info(`info: ticket keys reloaded from ${source.path}`);
    } catch (err) {
      warn(id, (err as Error).message);
    }
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    check().finally(() => {
      busy = false;
    });
  }, TICKET_KEYS_CHECK_MS);
  // The check alone must not keep a stopping server alive.
  timer.unref();
  return { close: () => clearInterval(timer) };
}

// Session ticket keys shared by server instances, and their rotation.
//
// The 48-byte layout is the one of nginx's ssl_session_ticket_key and Node.js's `ticketKeys`:
// 16 bytes key name, 16 bytes HMAC-SHA256 key, 16 bytes AES-128-CBC key. A ticket carries the key
// name, so a server finds the key it was sealed with, or knows it has none (a full handshake).
//
// node:tls's documented setTicketKeys holds one key: after a rotation, tickets sealed a moment
// earlier no longer open. Node.js's SecureContext also has an undocumented hook,
// enableTicketKeyCallback() with an `onticketkeycallback` property, which hands OpenSSL's ticket
// key callback (SSL_CTX_set_tlsext_ticket_key_cb) to JavaScript: with it the previous key still
// opens tickets, and the client is sent a fresh ticket under the current key. Where the hook is
// missing, setTicketKeys is used and the previous key is simply forgotten.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import { readConfigFile } from './_files.js';
import { TlsConfigError, TlsErrorCodes } from './errors.js';

/** The size of a ticket key file: 16 bytes name, 16 HMAC, 16 AES-128. */
export const TICKET_KEYS_BYTES = 48;

const PART = 16;

/** The native context's ticket key methods; the callback ones are undocumented, hence optional. */
interface NativeTicketContext {
  setTicketKeys(keys: Buffer): void;
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, encrypt: boolean) => unknown[];
}

/**
 * Check that `keys` is a ticket key set of exactly 48 bytes; `source` names it in the error.
 *
 * @throws {TlsConfigError} UCSPI_ERR_TLS_BAD_OPTION (permanent)
 */
export function checkTicketKeys(keys: Buffer, source: string, path?: string): void {
  if (keys.length !== TICKET_KEYS_BYTES)
    throw new TlsConfigError(
      TlsErrorCodes.BAD_OPTION,
      `${source} must hold exactly ${TICKET_KEYS_BYTES} bytes, not ${keys.length}`,
      path !== undefined ? { path } : {},
    );
}

/**
 * Read a ticket key file (`openssl rand 48 > FILE`). `what` names it in errors (an option or a
 * variable, as `TLSTICKETKEYS`).
 *
 * @throws {TlsConfigError} UCSPI_ERR_TLS_FILE (temporary) when it cannot be read;
 *   UCSPI_ERR_TLS_BAD_OPTION (permanent) when it is not exactly 48 bytes.
 */
export async function readTicketKeysFile(path: string, what = 'ticket key file'): Promise<Buffer> {
  const keys = await readConfigFile(path, what);
  checkTicketKeys(keys, `${what} ${path}`, path);
  return keys;
}

/** The ticket keys of a set of contexts: the current one seals, the current and previous open. */
export interface TicketKeyRing {
  /**
   * Make `keys` (48 bytes) the current key; the one it replaces still opens tickets when
   * {@link TicketKeyRing.keepsPrevious} is true. The same keys again change nothing.
   *
   * @throws {TlsConfigError} UCSPI_ERR_TLS_BAD_OPTION when `keys` is not 48 bytes
   */
  rotate(keys: Buffer): void;
  /** Whether tickets sealed under the previous key still open after a rotation. */
  readonly keepsPrevious: boolean;
}

/** Install `keys` on every context, through the ticket key callback where Node.js has it. */
export function installTicketKeys(contexts: readonly SecureContext[], keys: Buffer): TicketKeyRing {
  checkTicketKeys(keys, 'ticket keys');
  const natives = contexts.map((c) => c.context as NativeTicketContext);
  const keepsPrevious = natives.every((n) => typeof n.enableTicketKeyCallback === 'function');
  let current = Buffer.from(keys);
  let previous: Buffer | undefined;
  // The native side asserts that the HMAC and AES entries are 16-byte buffers even when it is
  // told that no key was found: these stand in for them then.
  const none = [0, Buffer.alloc(PART), Buffer.alloc(PART)];
  const sameName = (a: Buffer, b: Buffer) => a.length === PART && timingSafeEqual(a, b.subarray(0, PART));
  // OpenSSL's contract: sealing returns 1 with name and IV filled in; opening returns 1 (found),
  // 2 (found, but send the client a new ticket under the current key) or 0 (full handshake).
  const callback = (name: Buffer, _iv: Buffer, encrypt: boolean): unknown[] => {
    if (encrypt)
      return [
        1,
        current.subarray(PART, 2 * PART),
        current.subarray(2 * PART),
        current.subarray(0, PART),
        randomBytes(PART),
      ];
    if (sameName(name, current)) return [1, current.subarray(PART, 2 * PART), current.subarray(2 * PART)];
    if (previous && sameName(name, previous))
      return [2, previous.subarray(PART, 2 * PART), previous.subarray(2 * PART)];
    return none;
  };
  for (const n of natives) {
    if (keepsPrevious) {
      n.onticketkeycallback = callback;
      n.enableTicketKeyCallback!();
    } else n.setTicketKeys(current);
  }
  return {
    keepsPrevious,
    rotate(next) {
      checkTicketKeys(next, 'ticket keys');
      if (next.equals(current)) return;
      previous = current;
      current = Buffer.from(next);
      if (!keepsPrevious) for (const n of natives) n.setTicketKeys(current);
    },
  };
}

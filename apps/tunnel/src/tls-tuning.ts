// What a service's TLS tuning options become for node:tls: ticketKeySecret/ticketMacSecret as the
// 48 ticket-key bytes, curves as ecdhCurve, options and sessionResume as secureOptions,
// securityLevel as `@SECLEVEL=n` in the cipher string.
import { constants, createHash, hkdfSync } from 'node:crypto';
import { createSecureContext, DEFAULT_CIPHERS } from 'node:tls';
import type { ServiceConfig } from './config/types.js';

/** A TLS setting OpenSSL refused, printed alone (without the service's name) as stunnel does. */
export class StunnelTlsError extends Error {
  override readonly name = 'StunnelTlsError';
}

// Fixed and public: the secrets are the only input that must stay private.
const TICKET_SALT = Buffer.from('ucspi-tunnel session tickets');
const TICKET_INFO = Buffer.from('node:tls setTicketKeys: name, HMAC key, AES key');

/**
 * The 48 bytes node:tls takes for session tickets, derived (HKDF-SHA256) from the two secrets, so
 * that instances given the same pair resume each other's sessions and different pairs never do.
 * Each secret is prefixed with its length: a 16-byte key with a 32-byte MAC secret and a 32-byte
 * key with a 16-byte one never give the same input.
 */
export function ticketKeys(s: ServiceConfig): Buffer | undefined {
  if (!s.ticketKeySecret || !s.ticketMacSecret) return undefined;
  const input = Buffer.concat([
    Buffer.of(s.ticketKeySecret.length),
    s.ticketKeySecret,
    Buffer.of(s.ticketMacSecret.length),
    s.ticketMacSecret,
  ]);
  return Buffer.from(hkdfSync('sha256', input, TICKET_SALT, TICKET_INFO, 48));
}

/**
 * `curves`: a colon list OpenSSL must know entirely (stunnel's message otherwise). node:tls would
 * take `auto` as its own default where OpenSSL (and so stunnel) knows no such group.
 */
export function checkedCurves(s: ServiceConfig): string | undefined {
  if (s.curves === undefined) return undefined;
  const bad = new StunnelTlsError("Invalid groups list in 'curves'");
  if (s.curves === 'auto') throw bad;
  try {
    createSecureContext({ ecdhCurve: s.curves });
  } catch {
    throw bad;
  }
  return s.curves;
}

/**
 * OpenSSL's session ID context: the service's name (an SNI secondary's primary, whose handshake it
 * joins), hashed to fit its 32 bytes. As with stunnel (observed), a session resumes only in a
 * section of the same name, in this process or another; and OpenSSL can resume at all when
 * client certificates are requested (without a context it ends such a handshake with an alert).
 */
export function sessionIdContext(s: ServiceConfig): string {
  const colon = s.sni?.indexOf(':') ?? -1;
  const name = !s.client && colon >= 0 ? s.sni!.slice(0, colon) : s.name;
  return createHash('sha256').update(name).digest('hex').slice(0, 32);
}

/** The option bits: the `options` lines, and NO_TICKET for `sessionResume = no`. */
export function secureOptions(s: ServiceConfig): number {
  const noTicket = s.sessionResume ? 0n : BigInt(constants.SSL_OP_NO_TICKET);
  return Number(s.sslOptions | noTicket);
}

/**
 * The TLS 1.2 cipher string with the security level first, so that a `@SECLEVEL` the user wrote
 * in `ciphers` still wins, as in stunnel (which sets the level before the cipher list).
 */
export function cipherString(s: ServiceConfig): string {
  return `@SECLEVEL=${s.securityLevel}:${s.ciphers ?? DEFAULT_CIPHERS}`;
}

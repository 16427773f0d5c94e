// The values of the TLS tuning options, read as stunnel 5.68 reads them (observed with Debian's
// stunnel4): ticketKeySecret/ticketMacSecret (hex secrets of 16 or 32 bytes), options (OpenSSL
// option names without SSL_OP_, `-NAME` to clear, lines accumulate) and securityLevel (0-5).
import { constants } from 'node:crypto';
import { OptionError } from './errors.js';

/**
 * A ticket secret: pairs of hex digits, any number of colons between pairs (none inside one), 16
 * or 32 bytes. stunnel prints why the value is bad on a line of its own before the line's error.
 */
export function parseTicketSecret(option: 'ticketKeySecret' | 'ticketMacSecret', value: string): Buffer {
  const bytes: number[] = [];
  let i = 0;
  const hex = (c: string | undefined) => c !== undefined && /^[0-9a-fA-F]$/.test(c);
  while (i < value.length) {
    if (value[i] === ':') {
      i++;
      continue;
    }
    if (!hex(value[i]) || !hex(value[i + 1]))
      return badSecret(option, `Required ${option} is 16 or 32 byte hexadecimal key`);
    bytes.push(Number.parseInt(value.slice(i, i + 2), 16));
    i += 2;
  }
  if (bytes.length === 0) return badSecret(option, `Required ${option} is 16 or 32 byte hexadecimal key`);
  if (bytes.length !== 16 && bytes.length !== 32)
    return badSecret(option, `${option} value has ${bytes.length} bytes instead of required 16 or 32 bytes`);
  return Buffer.from(bytes);
}

function badSecret(option: string, why: string): never {
  throw new OptionError(`Failed to read ${option}`, [why]);
}

/** An option name's bits, `0n` for names OpenSSL 3 keeps with no effect, or why it cannot be honoured. */
type SslOption = bigint | { refused: string };

const bit = (n: number | undefined): bigint => BigInt(n ?? 0);
const c = constants;
const notInNode = (name: string) => ({
  refused: `options = ${name} cannot be honoured by ucspi-tunnel: Node.js's TLS does not offer SSL_OP_${name}`,
});

/** Every name stunnel 5.68 (with OpenSSL 3.0) accepts, as `stunnel4 -options` lists them. */
const SSL_OPTIONS: ReadonlyMap<string, SslOption> = new Map<string, SslOption>([
  ['ALL', bit(c.SSL_OP_ALL)],
  ['ALLOW_NO_DHE_KEX', bit(c.SSL_OP_ALLOW_NO_DHE_KEX)],
  ['ALLOW_UNSAFE_LEGACY_RENEGOTIATION', bit(c.SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION)],
  ['CIPHER_SERVER_PREFERENCE', bit(c.SSL_OP_CIPHER_SERVER_PREFERENCE)],
  ['CISCO_ANYCONNECT', bit(c.SSL_OP_CISCO_ANYCONNECT)],
  ['COOKIE_EXCHANGE', bit(c.SSL_OP_COOKIE_EXCHANGE)],
  ['CRYPTOPRO_TLSEXT_BUG', bit(c.SSL_OP_CRYPTOPRO_TLSEXT_BUG)],
  ['DONT_INSERT_EMPTY_FRAGMENTS', bit(c.SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS)],
  ['LEGACY_SERVER_CONNECT', bit(c.SSL_OP_LEGACY_SERVER_CONNECT)],
  ['NO_COMPRESSION', bit(c.SSL_OP_NO_COMPRESSION)],
  ['NO_ENCRYPT_THEN_MAC', bit(c.SSL_OP_NO_ENCRYPT_THEN_MAC)],
  ['NO_QUERY_MTU', bit(c.SSL_OP_NO_QUERY_MTU)],
  ['NO_RENEGOTIATION', bit(c.SSL_OP_NO_RENEGOTIATION)],
  ['NO_SESSION_RESUMPTION_ON_RENEGOTIATION', bit(c.SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION)],
  ['NO_SSLv2', 0n],
  ['NO_SSLv3', bit(c.SSL_OP_NO_SSLv3)],
  ['NO_TICKET', bit(c.SSL_OP_NO_TICKET)],
  ['NO_TLSv1', bit(c.SSL_OP_NO_TLSv1)],
  ['NO_TLSv1_1', bit(c.SSL_OP_NO_TLSv1_1)],
  ['NO_TLSv1_2', bit(c.SSL_OP_NO_TLSv1_2)],
  ['NO_TLSv1_3', bit(c.SSL_OP_NO_TLSv1_3)],
  [
    'NO_SSL_MASK',
    bit(c.SSL_OP_NO_SSLv3) |
      bit(c.SSL_OP_NO_TLSv1) |
      bit(c.SSL_OP_NO_TLSv1_1) |
      bit(c.SSL_OP_NO_TLSv1_2) |
      bit(c.SSL_OP_NO_TLSv1_3),
  ],
  ['PRIORITIZE_CHACHA', bit(c.SSL_OP_PRIORITIZE_CHACHA)],
  ['TLS_ROLLBACK_BUG', bit(c.SSL_OP_TLS_ROLLBACK_BUG)],
  // Defined as 0 by OpenSSL 3: accepted and without effect, in stunnel as here.
  ...[
    'EPHEMERAL_RSA',
    'MICROSOFT_BIG_SSLV3_BUFFER',
    'MICROSOFT_SESS_ID_BUG',
    'MSIE_SSLV2_RSA_PADDING',
    'NETSCAPE_CA_DN_BUG',
    'NETSCAPE_CHALLENGE_BUG',
    'NETSCAPE_DEMO_CIPHER_CHANGE_BUG',
    'NETSCAPE_REUSE_CIPHER_CHANGE_BUG',
    'PKCS1_CHECK_1',
    'PKCS1_CHECK_2',
    'SINGLE_DH_USE',
    'SINGLE_ECDH_USE',
    'SSLEAY_080_CLIENT_DH_BUG',
    'SSLREF2_REUSE_CERT_TYPE_BUG',
    'TLS_BLOCK_PADDING_BUG',
    'TLS_D5_BUG',
  ].map((n): [string, SslOption] => [n, 0n]),
  // Known to stunnel, not offered by node:crypto's constants (or DTLS names, meaningless for TLS).
  ...[
    'ALLOW_CLIENT_RENEGOTIATION',
    'CLEANSE_PLAINTEXT',
    'DISABLE_TLSEXT_CA_NAMES',
    'ENABLE_KTLS',
    'ENABLE_MIDDLEBOX_COMPAT',
    'IGNORE_UNEXPECTED_EOF',
    'NO_ANTI_REPLAY',
    'NO_DTLS_MASK',
    'NO_DTLSv1',
    'NO_DTLSv1_2',
    'NO_EXTENDED_MASTER_SECRET',
    'SAFARI_ECDHE_ECDSA_BUG',
    'TLSEXT_PADDING',
  ].map((n): [string, SslOption] => [n, notInNode(n)]),
]);

/**
 * The names `options` accepts here (with an effect, or none as in stunnel), in the order
 * `stunnel -options` lists them (by name, case and underscores aside).
 */
export function supportedSslOptionNames(): string[] {
  const key = (n: string) => n.replace(/_/g, '').toUpperCase();
  return [...SSL_OPTIONS]
    .filter(([, v]) => typeof v === 'bigint')
    .map(([name]) => name)
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

const BY_UPPER = new Map([...SSL_OPTIONS].map(([name, v]) => [name.toUpperCase(), [name, v] as const]));

/**
 * One `options` line applied to the section's option bits (set with NAME, cleared with -NAME; the
 * last line about a bit wins). A name stunnel does not know: its `Illegal TLS option`; a name it
 * knows that cannot be honoured here: refused naming the line.
 */
export function applySslOption(current: bigint, value: string): bigint {
  const clear = value.startsWith('-');
  const found = BY_UPPER.get((clear ? value.slice(1) : value).toUpperCase());
  if (!found) throw new OptionError('Illegal TLS option');
  const [name, bits] = found;
  if (typeof bits !== 'bigint') throw new OptionError(bits.refused);
  if (!clear) return current | bits;
  // node:tls can only add option bits: one that is always set here cannot be cleared.
  if (name === 'NO_RENEGOTIATION')
    throw new OptionError(
      'options = -NO_RENEGOTIATION cannot be honoured by ucspi-tunnel: client renegotiation is always refused',
    );
  return current & ~bits;
}

/** securityLevel: a decimal number 0 to 5, `02` and `+3` included as stunnel reads them. */
export function parseSecurityLevel(value: string): number {
  const level = /^[+-]?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(level >= 0 && level <= 5)) throw new OptionError('Illegal security level');
  return level;
}

// Client mode with a `protocol` (plain client in, TLS to the server out): the dialogue that comes
// before TLS runs on the server connection through @ucspi/starttls's client side, and the plain
// client is told what stunnel 5.68 tells it (observed with Debian's stunnel4):
// - smtp: the server's greeting (every line), then, inside TLS, whatever the client says itself
//   (its own EHLO included: no second EHLO from the tunnel);
// - pop3, nntp: the server's greeting line;
// - imap: a greeting of its own, `* OK Connected.` (the server's may list pre-TLS capabilities);
//   a server that refuses STARTTLS: `* BYE ...` to the client and a clean close;
// - connect: nothing (the HTTP proxy's answer stays with the tunnel).
// A server that does not offer STARTTLS or refuses it never leads to plaintext: the connection
// is closed with stunnel's log line.
// smtp with protocolUsername and protocolPassword: inside TLS, once the server's names are checked,
// EHLO and SMTP AUTH (PLAIN, or LOGIN with protocolAuthentication = login) before the client's
// bytes, as stunnel does (5.73 and later: EHLO; 5.68 said HELO, which exim refuses AUTH after).
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import {
  afterTlsClient,
  type StartTlsClientOptions,
  type StartTlsError,
  startTlsClient,
} from '@ucspi/starttls';
import type { ServiceConfig } from './config/types.js';

/** The protocols ucspi-tunnel runs in client mode. */
export const CLIENT_PROTOCOLS: readonly string[] = ['connect', 'smtp', 'pop3', 'imap', 'nntp'];

const IMAP_GREETING = '* OK Connected.';
const IMAP_NO_TLS = '* BYE stunnel: Server does not support TLS';

/** A failed client-mode dialogue: the log line stunnel writes for it, and how the client is left. */
export class ClientProtocolFailure extends Error {
  constructor(
    /** The text of the LOG3 line, in stunnel's words where stunnel has some. */
    readonly logLine: string,
    /** true: the plain client was told (IMAP's BYE) and is closed cleanly (`Connection closed`). */
    readonly told: boolean,
    /** The @ucspi/starttls error behind it. */
    override readonly cause: unknown,
  ) {
    super(logLine);
    this.name = 'ClientProtocolFailure';
  }
}

/**
 * Runs `s.protocol`'s dialogue on `server` (connected, plain), passes the plain client `plain` what
 * stunnel passes, then `handshake`; resolves with the TLS socket. A failure of the dialogue rejects
 * with a {@link ClientProtocolFailure}; an error of `handshake` passes through unchanged.
 * `checkNames` (the checkHost/checkIP/checkEmail check): credentials go out only when it passes;
 * when it fails the TLS socket is handed back untouched, for the caller's own rejection.
 */
export async function clientProtocol(
  server: Socket,
  plain: Socket,
  s: ServiceConfig,
  handshake: (raw: Socket) => Promise<TLSSocket>,
  checkNames?: (tls: TLSSocket) => string | undefined,
): Promise<TLSSocket> {
  const protocol = s.protocol!;
  const options: StartTlsClientOptions = { timeoutMs: s.timeoutBusy * 1000 };
  if (protocol === 'connect') {
    options.host = s.protocolHost!;
    if (s.protocolUsername !== undefined) options.username = s.protocolUsername;
    if (s.protocolPassword !== undefined) options.password = s.protocolPassword;
  } else {
    // The plain client starts its own session inside TLS (SMTP: its own EHLO).
    options.afterTls = false;
    options.onGreeting = (lines) =>
      plain.write(protocol === 'imap' ? `${IMAP_GREETING}\r\n` : lines.map((l) => `${l}\r\n`).join(''));
    // stunnel 5.68 says `EHLO localhost`, or `EHLO protocolHost` when that is set.
    if (protocol === 'smtp') options.helo = s.protocolHost ?? 'localhost';
  }
  const auth = smtpAuth(s);
  let authing = false;
  try {
    const tls = await startTlsClient(server, protocol, handshake, options);
    if (auth && checkNames?.(tls) === undefined) {
      authing = true;
      await afterTlsClient(tls, protocol, { ...options, ...auth, afterTls: true });
    }
    return tls;
  } catch (err) {
    const e = err as Partial<StartTlsError>;
    if (typeof e.code !== 'string' || !e.code.startsWith('UCSPI_ERR_STARTTLS')) throw err;
    const line =
      stunnelLine(protocol, e, authing ? auth?.auth : undefined) ??
      `Protocol ${protocol}: ${e.message ?? String(err)}`;
    const told = protocol === 'imap' && refusedTls(e.code);
    if (told) plain.write(`${IMAP_NO_TLS}\r\n`);
    throw new ClientProtocolFailure(line, told, err);
  }
}

/** SMTP AUTH's options when stunnel would log in: smtp with both protocolUsername and protocolPassword. */
function smtpAuth(
  s: ServiceConfig,
): Pick<StartTlsClientOptions, 'auth' | 'username' | 'password'> | undefined {
  if (s.protocol !== 'smtp' || s.protocolUsername === undefined || s.protocolPassword === undefined)
    return undefined;
  // stunnel: LOGIN when asked for, PLAIN otherwise (its default value is `basic`).
  return {
    auth: s.protocolAuthentication === 'login' ? 'login' : 'plain',
    username: s.protocolUsername,
    password: s.protocolPassword,
  };
}

function refusedTls(code: string): boolean {
  return code === 'UCSPI_ERR_STARTTLS_NOT_OFFERED' || code === 'UCSPI_ERR_STARTTLS_REFUSED';
}

/** stunnel 5.68's log line for a failed dialogue, or undefined where it has none of its own. */
function stunnelLine(
  protocol: string,
  e: Partial<StartTlsError>,
  auth?: StartTlsClientOptions['auth'],
): string | undefined {
  if (protocol === 'smtp') {
    // stunnel's words, its capitals included.
    if (e.code === 'UCSPI_ERR_STARTTLS_AUTH_MECHANISM')
      return 'Remote server does not support LOGIN authentication';
    // stunnel ignores the reply to its EHLO inside TLS and fails at AUTH's reply instead.
    if (e.code === 'UCSPI_ERR_STARTTLS_AUTH' || (auth && e.code === 'UCSPI_ERR_STARTTLS_PROTOCOL'))
      return auth === 'login' ? 'LOGIN authentication failed' : 'PLAIN Authentication Failed';
    // RFC 1425 is the EHLO step (greeting or EHLO refused), RFC 2487 the STARTTLS step.
    if (e.code === 'UCSPI_ERR_STARTTLS_GREETING') return 'Remote server is not RFC 1425 compliant';
    if (e.code === 'UCSPI_ERR_STARTTLS_NOT_OFFERED')
      return /^250/.test(e.reply ?? '')
        ? 'Remote server is not RFC 2487 compliant'
        : 'Remote server is not RFC 1425 compliant';
    if (e.code === 'UCSPI_ERR_STARTTLS_REFUSED') return 'Remote server is not RFC 2487 compliant';
    return undefined;
  }
  if (protocol === 'connect') return undefined;
  if (e.code === 'UCSPI_ERR_STARTTLS_GREETING') return 'Unknown server welcome';
  if (refusedTls(e.code ?? '')) return 'Server does not support TLS';
  return undefined;
}

// sslserver's TLS at start: certificates (or a development certificate), the key's password, and
// where the confined TLS handler goes (SSL_CHROOT, SSL_UID, SSL_GID).
import { nativeSpawn } from '@ucspi/exec';
import { developmentCertificate, loadServerTls, readKeyPasswordFromFd, type ServerTls } from '@ucspi/tls';
import type { ServerLog } from './log.js';
import type { ServerOptions } from './options.js';
import { readTicketKeySource, type TicketKeySource, ticketKeysFile } from './ticket-keys.js';

type Env = Record<string, string | undefined>;

/** A startup error of the app: `temporary` picks exit 111 (true) or 100 (false). */
export class FatalError extends Error {
  readonly code = 'UCSPI_ERR_SSLSERVER_CONFIG';
  constructor(
    message: string,
    readonly temporary: boolean,
  ) {
    super(message);
  }
}

/** What loadTls read, kept for the privilege-separated handler (which loads it again). */
export interface LoadedTls {
  tls: ServerTls;
  /** The environment the certificates were loaded from (the development certificate filled in). */
  tlsEnv: Env;
  keyPassword?: Buffer;
  /** TLSTICKETKEYS: the shared ticket keys and the file they came from. */
  ticketKeys?: TicketKeySource;
}

/** Load the certificates (-3: the key's password from fd 3); none configured: a development one. */
export async function loadTls(opts: ServerOptions, env: Env, log: ServerLog): Promise<LoadedTls> {
  const keyPassword = opts.keyPasswordFd3 ? await readKeyPasswordFromFd(3) : undefined;
  let tlsEnv = env;
  if (!env.CERTFILE && !env.CERTCHAINFILE) {
    // No certificate configured: use a development certificate and say so loudly (even with -q).
    const dev = await developmentCertificate(env);
    log.warnAlways(`warning: ${dev.warning}`);
    tlsEnv = { ...env, CERTFILE: dev.certFile, KEYFILE: dev.keyFile };
  }
  // TLSTICKETKEYS: read here, by the server process, whose TLS handlers are sent the bytes.
  const ticketsFile = ticketKeysFile(env);
  const ticketKeys = ticketsFile !== undefined ? await readTicketKeySource(ticketsFile) : undefined;
  const tls = await loadServerTls(tlsEnv, {
    clientCert: opts.clientCert,
    ...(keyPassword !== undefined ? { keyPassword } : {}),
    ...(ticketKeys ? { ticketKeys: ticketKeys.keys } : {}),
  });
  for (const line of tls.describe()) log.info(line);
  if (ticketKeys) log.info(`ticketkeys ${process.pid} ${ticketKeys.path}`);
  return {
    tls,
    tlsEnv,
    ...(keyPassword !== undefined ? { keyPassword } : {}),
    ...(ticketKeys ? { ticketKeys } : {}),
  };
}

/** Where the confined TLS handler goes. */
export interface JailSettings {
  root?: string;
  uid?: number;
  gid?: number;
}

/**
 * SSL_CHROOT, SSL_UID and SSL_GID: where the original's per-connection TLS handler confines
 * itself. Like the original, SSL_UID and SSL_GID fall back to -u and -g, and SSL_USER and
 * SSL_GROUP are only documentation (the original reads neither). Undefined when none is set.
 */
export function jailSettings(opts: ServerOptions, env: Env): JailSettings | undefined {
  if (opts.flavour !== 'sslserver' || !(env.SSL_CHROOT || env.SSL_UID || env.SSL_GID)) return undefined;
  const id = (name: 'SSL_UID' | 'SSL_GID', fallback: number | undefined) => {
    const v = env[name];
    if (!v) return fallback;
    if (!/^\d+$/.test(v)) throw new FatalError(`${name} must be a numeric id, not ${v}`, false);
    return Number(v);
  };
  const uid = id('SSL_UID', opts.uid);
  const gid = id('SSL_GID', opts.gid);
  if (!nativeSpawn)
    throw new FatalError(
      'SSL_CHROOT, SSL_UID and SSL_GID need the native spawner of @ucspi/exec (Linux x64/arm64, see its README)',
      false,
    );
  return {
    ...(env.SSL_CHROOT ? { root: env.SSL_CHROOT } : {}),
    ...(uid !== undefined ? { uid } : {}),
    ...(gid !== undefined ? { gid } : {}),
  };
}

/**
 * PROXYPROTO: 1, every connection begins with a PROXY header (v1 or v2) from a load balancer;
 * unset, empty or 0: none is expected (the default). Anything else is a configuration error.
 */
export function proxyProtocol(env: Env): boolean {
  const v = env.PROXYPROTO;
  if (v === undefined || v === '' || v === '0') return false;
  if (v === '1') return true;
  throw new FatalError(`PROXYPROTO must be 0 or 1, not ${v}`, false);
}

/**
 * A setting in whole seconds from the environment, in ms: `defaultSeconds` when unset or empty;
 * anything but a whole number is a configuration error (exit 100) naming the variable.
 */
export function secondsSetting(env: Env, name: string, defaultSeconds: number): number {
  const v = env[name];
  if (v === undefined || v === '') return defaultSeconds * 1000;
  if (!/^\d+$/.test(v)) throw new FatalError(`${name} must be a whole number of seconds, not ${v}`, false);
  return Number(v) * 1000;
}

/**
 * CLOSETIMEOUT: seconds to wait, once the program's output has ended and the end (close_notify)
 * has been sent, for a silent client to end its side; 0 waits until -w. Default 60, as stunnel's
 * TIMEOUTclose.
 */
export function closeTimeoutMs(env: Env): number {
  return secondsSetting(env, 'CLOSETIMEOUT', 60);
}

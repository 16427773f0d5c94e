import {
  type ConnectionOptions,
  checkServerIdentity,
  createSecureContext,
  type SecureVersion,
  type TLSSocket,
} from 'node:tls';
import { cipherOption } from './_ciphers.js';
import { caDirectory, pemCertificates, readConfigFile, readCrls } from './_files.js';
import { loadIdentity } from './_identity.js';
import { TlsConfigError, TlsErrorCodes } from './errors.js';
import { type StunnelVerifyLevel, stunnelVerifyPolicy } from './verifylevel.js';

/** Options of {@link loadClientTls}. */
export interface ClientTlsOptions {
  /** CAs that verify the server (PEM bundle, OpenSSL hashed directory); neither: the system's roots. */
  caFile?: string;
  caDir?: string;
  /** A client certificate and key to present (key defaults to the certificate file). */
  certFile?: string;
  keyFile?: string;
  keyPassword?: string | Buffer;
  /** The name to send in SNI and to check the server's certificate against. */
  servername?: string;
  /**
   * How the server is checked: `'host'` (default) verifies the chain and the name; `'chain'` only
   * the chain; `'none'` nothing (tests, development certificates); or a stunnel verify level 0-4,
   * where 3 and 4 compare with `localCerts` (PEM files).
   */
  verify?: 'host' | 'chain' | 'none' | Exclude<StunnelVerifyLevel, undefined>;
  localCerts?: string[];
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  ciphers?: string;
  ciphersuites?: string;
  alpn?: string[];
  crlFiles?: string[];
  /** Key-exchange groups (OpenSSL's groups list, colon-separated), node:tls's `ecdhCurve`. */
  ecdhCurve?: string;
  /** OpenSSL option bits (node:crypto `constants.SSL_OP_*`). */
  secureOptions?: number;
}

/** A ready client-side TLS configuration. */
export interface ClientTls {
  /** Options for `tls.connect({ ...connectOptions, socket })` or with host and port. */
  connectOptions: ConnectionOptions;
  /** The decision after the handshake, with the reason when the server is refused. */
  checkServer(socket: TLSSocket): { ok: boolean; reason?: string };
}

/**
 * Build a client TLS configuration (for tcpclient and the tunnel's client mode): every file read
 * and checked now, TLS 1.2 to 1.3 by default, and the server checked after the handshake by the
 * chosen policy. The handshake itself never rejects (`rejectUnauthorized: false`) so that the
 * caller can report the reason and apply stunnel's levels; `checkServer` is the decision.
 *
 * @throws {TlsConfigError}
 */
export async function loadClientTls(opts: ClientTlsOptions = {}): Promise<ClientTls> {
  const ca: string[] = [];
  if (opts.caFile)
    ca.push(...pemCertificates(await readConfigFile(opts.caFile, 'CA file'), opts.caFile, 'CA file'));
  if (opts.caDir) ca.push(...(await caDirectory(opts.caDir)));
  const identity = opts.certFile
    ? await loadIdentity(opts.certFile, opts.keyFile || opts.certFile, opts.keyPassword, false)
    : undefined;
  const crl = await readCrls(opts.crlFiles ?? []);
  const local: string[] = [];
  for (const f of opts.localCerts ?? [])
    local.push(...pemCertificates(await readConfigFile(f, 'local certificate'), f, 'local certificate'));
  const verify = opts.verify ?? 'host';
  if (verify === 'host' && !opts.servername)
    throw new TlsConfigError(
      TlsErrorCodes.BAD_OPTION,
      'checking the server name needs a servername (or verify: "chain")',
    );
  const level = typeof verify === 'number' ? stunnelVerifyPolicy(verify, local) : undefined;

  const connectOptions: ConnectionOptions = {
    minVersion: opts.minVersion ?? 'TLSv1.2',
    maxVersion: opts.maxVersion ?? 'TLSv1.3',
    // Without CAs of its own, node:tls's default store (the bundled Mozilla roots, plus
    // NODE_EXTRA_CA_CERTS): shared by every context, where a copy of rootCertificates would be
    // parsed again for each one (a few ms of a short-lived client's start-up).
    ...(ca.length ? { ca } : {}),
    rejectUnauthorized: false,
    // The name is checked in checkServer, so that `authorized` speaks of the chain alone.
    checkServerIdentity: () => undefined,
    ...(opts.servername ? { servername: opts.servername } : {}),
    ...(identity
      ? {
          cert: identity.cert,
          key: identity.key,
          ...(identity.passphrase ? { passphrase: identity.passphrase } : {}),
        }
      : {}),
    ...cipherOption(opts.ciphers, opts.ciphersuites),
    ...(opts.alpn?.length ? { ALPNProtocols: opts.alpn } : {}),
    ...(crl.length ? { crl } : {}),
    ...(opts.ecdhCurve !== undefined ? { ecdhCurve: opts.ecdhCurve } : {}),
    ...(opts.secureOptions ? { secureOptions: opts.secureOptions } : {}),
  };
  // node:tls builds the context at the first connection; with these options a mistake (a group
  // or cipher OpenSSL does not know, a key below the security level) is found now instead.
  if (opts.ecdhCurve !== undefined || opts.secureOptions || opts.ciphers || opts.ciphersuites) {
    try {
      createSecureContext(connectOptions);
    } catch (cause) {
      throw new TlsConfigError(
        TlsErrorCodes.BAD_OPTION,
        `OpenSSL refused the configuration: ${(cause as Error).message}`,
        { cause },
      );
    }
  }
  return {
    connectOptions,
    checkServer(socket) {
      if (level) return level.check(socket);
      if (verify === 'none') return { ok: true };
      if (!socket.authorized)
        return { ok: false, reason: `server certificate not trusted: ${String(socket.authorizationError)}` };
      if (verify === 'host' && opts.servername) {
        const err = checkServerIdentity(opts.servername, socket.getPeerCertificate());
        if (err) return { ok: false, reason: `server certificate does not match ${opts.servername}` };
      }
      return { ok: true };
    },
  };
}

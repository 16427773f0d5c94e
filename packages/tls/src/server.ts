import { constants as cryptoConstants } from 'node:crypto';
import {
  checkServerIdentity,
  createSecureContext,
  type SecureContext,
  type SecureVersion,
  type TLSSocket,
  type TlsOptions,
} from 'node:tls';
import { peerCertificate, peerVerifyError } from '@ucspi/env';
import { cipherOption } from './_ciphers.js';
import { caDirectory, pemCertificates, readConfigFile, readCrls } from './_files.js';
import { loadIdentity } from './_identity.js';
import { TlsConfigError, TlsErrorCodes } from './errors.js';
import { checkTicketKeys, installTicketKeys, readTicketKeysFile } from './ticket-keys.js';

/** sslserver's client-certificate policies: -Z none, -m mail (valid certificate), -z host (valid and matching). */
export type ClientCertPolicy = 'none' | 'mail' | 'host';

/** A certificate and key for one server name (SNI). */
export interface SniEntry {
  certFile: string;
  keyFile?: string;
}

/** Options beside the environment. */
export interface ServerTlsOptions {
  /** -Z (default), -m, -z. */
  clientCert?: ClientCertPolicy;
  /** The key's password (sslserver -3 reads it from fd 3). */
  keyPassword?: string | Buffer;
  /** Default TLSv1.2 and TLSv1.3: older versions only when asked for. */
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  /** TLS 1.3 cipher suites (OpenSSL's `-ciphersuites`), colon-separated. */
  ciphersuites?: string;
  /** CRL files in PEM: a client certificate they revoke is refused. */
  crlFiles?: string[];
  /** ALPN protocols the server accepts, in preference order. */
  alpn?: string[];
  /** Certificates chosen by the server name a client asks for; the default certificate otherwise. */
  sni?: Record<string, SniEntry>;
  /** A file of 48 bytes: session ticket keys, shared by instances so a client resumes on any. Rotate with `setTicketKeys`. */
  ticketKeysFile?: string;
  /** The same 48 bytes given directly (16 name, 16 HMAC, 16 AES): wins over `ticketKeysFile`. */
  ticketKeys?: Buffer;
  /** Key-exchange groups (OpenSSL's groups list, colon-separated), node:tls's `ecdhCurve`. */
  ecdhCurve?: string;
  /** OpenSSL option bits (node:crypto `constants.SSL_OP_*`) added to the ones always set. */
  secureOptions?: number;
  /** Session lifetime in seconds (tickets and cache). Default 300, as OpenSSL. */
  sessionTimeout?: number;
  /**
   * OpenSSL's session ID context (at most 32 bytes): a session resumes only where it is the same.
   * Needed when client certificates are requested, or OpenSSL refuses every resumption attempt
   * with a fatal alert (`session id context uninitialized`).
   */
  sessionIdContext?: string;
}

/** A ready server-side TLS configuration. */
export interface ServerTls {
  /** The context for the default certificate. */
  secureContext: SecureContext;
  /** Options for `new tls.TLSSocket(socket, { isServer: true, ...serverOptions })` or tls.createServer. */
  serverOptions: TlsOptions;
  /** Startup lines in sslserver's -v form (`cert PID FILE`, ...); never key material. */
  describe(): string[];
  /**
   * Rotate the session ticket keys (48 bytes, the layout of {@link ServerTlsOptions.ticketKeys})
   * on every context. The keys they replace still open tickets when
   * {@link ServerTls.keepsPreviousTicketKey} is true; otherwise such a ticket gets a full handshake.
   *
   * @throws {TlsConfigError} UCSPI_ERR_TLS_BAD_OPTION when `keys` is not 48 bytes
   */
  setTicketKeys(keys: Buffer): void;
  /** Whether a rotation keeps the previous ticket key for opening tickets (see ticket-keys.ts). */
  readonly keepsPreviousTicketKey: boolean;
  /**
   * The -m/-z decision after a handshake: a client certificate is required and must verify against
   * the configured CAs within VERIFYDEPTH; with -z it must also match `remoteHost` when one is known.
   */
  checkPeer(socket: TLSSocket, remoteHost?: string): { ok: boolean; reason?: string };
}

type Env = Record<string, string | undefined>;

/**
 * Build a server TLS configuration from sslserver's environment: CERTFILE, KEYFILE (empty: the
 * key is in the certificate file; unset: likewise), CERTCHAINFILE (wins over CERTFILE; ordered
 * from the root down to the host's certificate, as the man page says), CAFILE, CADIR, CCAFILE
 * (`-` disables the client-certificate request), CCAVERIFY (request and require a valid
 * certificate), CIPHERS, DHFILE, VERIFYDEPTH (default 1). Everything is read and checked now: a
 * missing, unreadable or malformed file, a key that does not fit, a wrong password, or an expired
 * certificate throws before any connection is accepted.
 *
 * @throws {TlsConfigError}
 */
export async function loadServerTls(env: Env, opts: ServerTlsOptions = {}): Promise<ServerTls> {
  const lines: string[] = [];
  const note = (what: string, value: string) => lines.push(`${what} ${process.pid} ${value}`);
  const chainFile = env.CERTCHAINFILE || undefined;
  const certFile = chainFile ?? env.CERTFILE;
  if (!certFile)
    throw new TlsConfigError(
      TlsErrorCodes.NO_CERT,
      'no certificate: set CERTFILE (and KEYFILE) or CERTCHAINFILE',
    );
  const keyFile = env.KEYFILE || certFile;
  const identity = await loadIdentity(certFile, keyFile, opts.keyPassword, !!chainFile);
  if (chainFile) note('chainfile', chainFile);
  else note('cert', certFile);
  note('key', keyFile);

  const ca: string[] = [];
  for (const [name, value] of [
    ['CAFILE', env.CAFILE],
    ['CCAFILE', env.CCAFILE !== '-' ? env.CCAFILE : undefined],
  ] as const) {
    if (!value) continue;
    ca.push(...pemCertificates(await readConfigFile(value, name), value, name));
    note(name.toLowerCase(), value);
  }
  if (env.CADIR) {
    ca.push(...(await caDirectory(env.CADIR)));
    note('cadir', env.CADIR);
  }
  const policy: ClientCertPolicy = opts.clientCert ?? (env.CCAVERIFY !== undefined ? 'mail' : 'none');
  const requestCert = env.CCAFILE !== '-' && (policy !== 'none' || !!env.CCAFILE);
  if (policy !== 'none' && env.CCAFILE !== '-' && ca.length === 0)
    throw new TlsConfigError(
      TlsErrorCodes.NO_CA,
      'client certificates are required (-m, -z or CCAVERIFY) but neither CAFILE, CADIR nor CCAFILE is set',
    );
  const depth = env.VERIFYDEPTH === undefined || env.VERIFYDEPTH === '' ? 1 : Number(env.VERIFYDEPTH);
  if (!Number.isInteger(depth) || depth < 0)
    throw new TlsConfigError(
      TlsErrorCodes.BAD_OPTION,
      `VERIFYDEPTH must be a number, not ${env.VERIFYDEPTH}`,
    );

  const crl = await readCrls(opts.crlFiles ?? []);
  let dhparam: Buffer | undefined;
  if (env.DHFILE) {
    dhparam = await readConfigFile(env.DHFILE, 'DHFILE');
    note('param', env.DHFILE);
  }
  let ticketKeys: Buffer | undefined = opts.ticketKeys;
  if (ticketKeys) checkTicketKeys(ticketKeys, 'ticket keys');
  else if (opts.ticketKeysFile) ticketKeys = await readTicketKeysFile(opts.ticketKeysFile);

  const common = {
    minVersion: opts.minVersion ?? 'TLSv1.2',
    maxVersion: opts.maxVersion ?? 'TLSv1.3',
    ...cipherOption(env.CIPHERS || undefined, opts.ciphersuites),
    ...(ca.length ? { ca } : {}),
    ...(crl.length ? { crl } : {}),
    ...(dhparam ? { dhparam } : {}),
    ...(opts.ecdhCurve !== undefined ? { ecdhCurve: opts.ecdhCurve } : {}),
    sessionTimeout: opts.sessionTimeout ?? 300,
    ...(opts.sessionIdContext !== undefined ? { sessionIdContext: opts.sessionIdContext } : {}),
    // Client-initiated renegotiation is refused (TLS 1.2; TLS 1.3 has none).
    // BigInt: option bits reach bit 31, beyond what JavaScript's 32-bit `|` keeps positive.
    secureOptions: Number(
      BigInt(cryptoConstants.SSL_OP_NO_RENEGOTIATION ?? 0) | BigInt(opts.secureOptions ?? 0),
    ),
  } as const;
  const context = (id: { cert: string; key: string; passphrase?: string }) => {
    try {
      const ctx = createSecureContext({
        ...common,
        cert: id.cert,
        key: id.key,
        ...(id.passphrase ? { passphrase: id.passphrase } : {}),
      });
      return ctx;
    } catch (cause) {
      throw new TlsConfigError(
        TlsErrorCodes.BAD_OPTION,
        `OpenSSL refused the configuration: ${(cause as Error).message}`,
        { cause },
      );
    }
  };
  const secureContext = context(identity);
  const sniContexts = new Map<string, SecureContext>();
  for (const [name, entry] of Object.entries(opts.sni ?? {})) {
    sniContexts.set(
      name.toLowerCase(),
      context(await loadIdentity(entry.certFile, entry.keyFile ?? entry.certFile, opts.keyPassword, false)),
    );
  }

  // Every context (the SNI ones too) seals and opens tickets with the same keys, rotated together.
  let ring = ticketKeys ? installTicketKeys([secureContext, ...sniContexts.values()], ticketKeys) : undefined;

  const serverOptions: TlsOptions = {
    secureContext,
    requestCert,
    // The decision is ours (checkPeer), so that the reason can be logged and -z can use the host name.
    rejectUnauthorized: false,
    ...(opts.alpn?.length ? { ALPNProtocols: opts.alpn } : {}),
    ...(sniContexts.size
      ? {
          SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) =>
            cb(null, sniContexts.get(servername.toLowerCase()) ?? secureContext),
        }
      : {}),
  };

  return {
    secureContext,
    serverOptions,
    describe: () => [...lines],
    setTicketKeys(keys) {
      if (ring) ring.rotate(keys);
      else ring = installTicketKeys([secureContext, ...sniContexts.values()], keys);
    },
    get keepsPreviousTicketKey() {
      return ring?.keepsPrevious ?? false;
    },
    checkPeer(socket, remoteHost) {
      if (policy === 'none' || env.CCAFILE === '-') return { ok: true };
      const peer = peerCertificate(socket);
      if (!peer) return { ok: false, reason: 'no client certificate' };
      const err = peerVerifyError(socket);
      if (err)
        return {
          ok: false,
          reason: `missing credentials (CA) or unable to validate client certificate: ${err}`,
        };
      const hops = chainLength(socket) - 1;
      if (hops > depth + 1)
        return { ok: false, reason: `client certificate chain longer than VERIFYDEPTH ${depth}` };
      if (policy === 'host' && remoteHost) {
        const mismatch = checkServerIdentity(remoteHost, socket.getPeerCertificate());
        if (mismatch) return { ok: false, reason: `client certificate does not match ${remoteHost}` };
      }
      return { ok: true };
    },
  };
}

/** Certificates from the peer's up to the trust anchor, as OpenSSL built the chain. */
function chainLength(socket: TLSSocket): number {
  let n = 0;
  let cur: ReturnType<TLSSocket['getPeerCertificate']> | undefined = socket.getPeerCertificate(true);
  const seen = new Set<unknown>();
  while (cur?.raw && !seen.has(cur) && n < 32) {
    seen.add(cur);
    n++;
    cur = (cur as { issuerCertificate?: typeof cur }).issuerCertificate;
  }
  return n;
}

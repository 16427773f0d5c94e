import { X509Certificate } from 'node:crypto';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { certificateFacts, sessionIdOf } from './_der.js';
import { EnvError, EnvErrorCodes } from './errors.js';

// OpenSSL's long names for the signature algorithms seen in practice (OBJ_nid2ln).
const SIG_ALGS: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.113549.1.1.10': 'rsassaPss',
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
  '1.2.840.113549.1.1.14': 'sha224WithRSAEncryption',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
  '1.2.840.10045.4.3.1': 'ecdsa-with-SHA224',
  '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
  '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  '1.3.101.112': 'ED25519',
  '1.3.101.113': 'ED448',
};

// OpenSSL's names of public key algorithms (as `openssl x509 -text` prints them).
const KEY_ALGS: Record<string, string> = {
  rsa: 'rsaEncryption',
  'rsa-pss': 'rsassaPss',
  dsa: 'dsaEncryption',
  ec: 'id-ecPublicKey',
  ed25519: 'ED25519',
  ed448: 'ED448',
  x25519: 'X25519',
  x448: 'X448',
  dh: 'dhKeyAgreement',
};

// mod_ssl's DN component suffixes, keyed by the short names node:crypto prints.
const DN_PARTS: Record<string, string> = {
  C: 'C',
  ST: 'ST',
  L: 'L',
  O: 'O',
  OU: 'OU',
  CN: 'CN',
  title: 'T',
  initials: 'I',
  GN: 'G',
  SN: 'S',
  description: 'D',
  UID: 'UID',
  emailAddress: 'Email',
};

/** Options of {@link modSslEnv}. */
export interface ModSslOptions {
  /**
   * SSL_CLIENT_VERIFY as the server decided it (`NONE`, `SUCCESS`, `GENEROUS`, `FAILED:reason`).
   * Default: NONE without a client certificate, SUCCESS when the socket is authorized, else
   * `FAILED:` and OpenSSL's verify error code.
   */
  verify?: string;
  /** This library's name for SSL_VERSION_INTERFACE. Default `@ucspi/env`. */
  interfaceVersion?: string;
}

/**
 * The mod_ssl-style variables of sslserver -s, from a TLS socket whose handshake is complete:
 * SSL_PROTOCOL, SSL_SESSION_ID, SSL_CIPHER, SSL_CIPHER_USEKEYSIZE, SSL_CIPHER_ALGKEYSIZE,
 * SSL_CIPHER_EXPORT, SSL_VERSION_INTERFACE, SSL_VERSION_LIBRARY, the SSL_SERVER_* set for the
 * local certificate and, when the peer sent one, the SSL_CLIENT_* set with SSL_CLIENT_CERT_CHAIN_n
 * and SSL_CLIENT_VERIFY. Formats follow what ucspi-ssl 0.95b sets with OpenSSL 3 (DNs in
 * OpenSSL's oneline form, dates as `Nov  4 03:56:30 2026 GMT`, serials in decimal).
 * For a client-side socket the roles are the same: SSL_SERVER_* describes the peer.
 *
 * @throws {EnvError} UCSPI_ERR_ENV_NOT_TLS when the socket has no completed handshake.
 */
export function modSslEnv(socket: TLSSocket, opts: ModSslOptions = {}): Record<string, string> {
  const protocol = socket.getProtocol?.();
  const cipher = socket.getCipher?.();
  if (!protocol || !cipher) {
    throw new EnvError(EnvErrorCodes.NOT_TLS, 'modSslEnv needs a TLS socket whose handshake is complete');
  }
  const bits = cipherBits(cipher.name);
  const session = socket.getSession?.();
  const id = session ? sessionIdOf(session) : undefined;
  const env: Record<string, string> = {
    SSL_PROTOCOL: protocol,
    SSL_CIPHER: cipher.name,
    SSL_CIPHER_EXPORT: 'false',
    SSL_CIPHER_USEKEYSIZE: String(bits),
    SSL_CIPHER_ALGKEYSIZE: String(bits),
    SSL_VERSION_INTERFACE: opts.interfaceVersion ?? '@ucspi/env',
    SSL_VERSION_LIBRARY: `OpenSSL/${process.versions.openssl}`,
  };
  // Without a server-side session cache (node:tls's default, session tickets instead) OpenSSL
  // gives the session no id; the variable is then left out, as mod_ssl does.
  if (id && id.length > 0) env.SSL_SESSION_ID = Buffer.from(id).toString('hex').toUpperCase();
  const isServer =
    (socket as unknown as { _tlsOptions?: { isServer?: boolean } })._tlsOptions?.isServer !== false;
  const local = socket.getX509Certificate?.();
  const peer = peerCertificate(socket);
  const serverCert = isServer ? local : peer;
  const clientCert = isServer ? peer : local;
  if (serverCert) Object.assign(env, certificateEnv('SSL_SERVER', serverCert));
  if (clientCert) {
    Object.assign(env, certificateEnv('SSL_CLIENT', clientCert));
    if (isServer) Object.assign(env, chainEnv(socket.getPeerCertificate(true)));
  }
  env.SSL_CLIENT_VERIFY = opts.verify ?? (!isServer || !peer ? 'NONE' : verifyResult(socket));
  return env;
}

/**
 * OpenSSL's verify result for the peer's certificate: undefined when it verified, else its code
 * (e.g. `CERT_HAS_EXPIRED`). A TLSSocket wrapped by hand, not through tls.Server, never gets
 * `authorized` set, so the result is read from the handle when Node recorded none.
 */
export function peerVerifyError(socket: TLSSocket): string | undefined {
  if (socket.authorized) return undefined;
  // node:tls sets authorizationError to the code itself (a string) on the sockets it made.
  const given: unknown = socket.authorizationError;
  if (typeof given === 'string' && given !== '') return given;
  let err: Error | null | undefined = given as Error | null | undefined;
  if (!err) {
    const handle = (socket as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
    err = handle?.verifyError?.();
  }
  if (!err) return undefined;
  return (err as Error & { code?: string }).code ?? err.message;
}

/**
 * The peer's certificate, or undefined when it sent none. Read through getPeerCertificate(), as
 * node:tls's getPeerX509Certificate() answers only its first call on a socket (Node.js 20).
 */
export function peerCertificate(socket: TLSSocket): X509Certificate | undefined {
  const raw = socket.getPeerCertificate?.()?.raw;
  return raw && raw.length > 0 ? new X509Certificate(raw) : undefined;
}

/** SUCCESS or FAILED:<OpenSSL verify code> for a peer certificate. */
function verifyResult(socket: TLSSocket): string {
  const err = peerVerifyError(socket);
  return err === undefined ? 'SUCCESS' : `FAILED:${err}`;
}

/** The SSL_<prefix>_* variables for one certificate (prefix SSL_SERVER or SSL_CLIENT). */
export function certificateEnv(prefix: string, cert: X509Certificate): Record<string, string> {
  const facts = certificateFacts(cert.raw);
  const env: Record<string, string> = {
    [`${prefix}_M_VERSION`]: String(facts.version ?? 3),
    [`${prefix}_M_SERIAL`]: BigInt(`0x${cert.serialNumber}`).toString(10),
    [`${prefix}_V_START`]: cert.validFrom,
    [`${prefix}_V_END`]: cert.validTo,
    [`${prefix}_A_SIG`]: (facts.sigAlgOid && SIG_ALGS[facts.sigAlgOid]) ?? facts.sigAlgOid ?? 'UNKNOWN',
    [`${prefix}_A_KEY`]: KEY_ALGS[cert.publicKey.asymmetricKeyType ?? ''] ?? 'UNKNOWN',
    [`${prefix}_CERT`]: cert.toString(),
  };
  Object.assign(env, dnEnv(`${prefix}_S_DN`, cert.subject), dnEnv(`${prefix}_I_DN`, cert.issuer));
  return env;
}

/**
 * A distinguished name in OpenSSL's oneline form, `/C=DE/O=Test Org/CN=x`, from the form Node.js
 * prints (one attribute per line, in certificate order): SSL_CLIENT_S_DN and its kin.
 */
export function onelineDn(dn: string): string {
  return dn
    .split('\n')
    .filter((p) => p !== '')
    .map((p) => `/${p}`)
    .join('');
}

/** A DN in OpenSSL's oneline form plus its mod_ssl components (first occurrence of each). */
function dnEnv(name: string, dn: string): Record<string, string> {
  const parts = dn.split('\n').filter((p) => p !== '');
  const env: Record<string, string> = { [name]: onelineDn(dn) };
  for (const part of parts) {
    const eq = part.indexOf('=');
    const suffix = DN_PARTS[part.slice(0, eq)];
    if (eq > 0 && suffix && env[`${name}_${suffix}`] === undefined)
      env[`${name}_${suffix}`] = part.slice(eq + 1);
  }
  return env;
}

/** SSL_CLIENT_CERT_CHAIN_0.. : the certificates above the client's leaf, as PEM. */
function chainEnv(leaf: PeerCertificate & { issuerCertificate?: PeerCertificate }): Record<string, string> {
  const env: Record<string, string> = {};
  let cur = leaf?.issuerCertificate;
  let prev: PeerCertificate | undefined = leaf;
  for (let n = 0; cur && cur !== prev && cur.raw && n < 16; n++) {
    env[`SSL_CLIENT_CERT_CHAIN_${n}`] = new X509Certificate(cur.raw).toString();
    prev = cur;
    cur = (cur as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
  }
  return env;
}

/** Secret-key bits of an OpenSSL cipher name (used = possible: no export ciphers exist in TLS 1.2+). */
function cipherBits(name: string): number {
  const m = /(?:AES|CAMELLIA|ARIA)_?(128|256)/.exec(name);
  if (m) return Number(m[1]);
  if (/CHACHA20/.test(name)) return 256;
  if (/DES-CBC3|3DES/.test(name)) return 168;
  return 0;
}

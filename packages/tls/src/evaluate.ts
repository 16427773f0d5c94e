import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { checkServerIdentity } from 'node:tls';
import { onelineDn, peerCertificate, peerVerifyError } from '@ucspi/env';

// OpenSSL's X509_V_ERR_* numbers for the codes node:tls reports.
const VERIFY_CODES: Record<string, number> = {
  UNABLE_TO_GET_ISSUER_CERT: 2,
  UNABLE_TO_GET_CRL: 3,
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: 4,
  UNABLE_TO_DECRYPT_CRL_SIGNATURE: 5,
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: 6,
  CERT_SIGNATURE_FAILURE: 7,
  CRL_SIGNATURE_FAILURE: 8,
  CERT_NOT_YET_VALID: 9,
  CERT_HAS_EXPIRED: 10,
  CRL_NOT_YET_VALID: 11,
  CRL_HAS_EXPIRED: 12,
  ERROR_IN_CERT_NOT_BEFORE_FIELD: 13,
  ERROR_IN_CERT_NOT_AFTER_FIELD: 14,
  ERROR_IN_CRL_LAST_UPDATE_FIELD: 15,
  ERROR_IN_CRL_NEXT_UPDATE_FIELD: 16,
  OUT_OF_MEM: 17,
  DEPTH_ZERO_SELF_SIGNED_CERT: 18,
  SELF_SIGNED_CERT_IN_CHAIN: 19,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 20,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 21,
  CERT_CHAIN_TOO_LONG: 22,
  CERT_REVOKED: 23,
  INVALID_CA: 24,
  PATH_LENGTH_EXCEEDED: 25,
  INVALID_PURPOSE: 26,
  CERT_UNTRUSTED: 27,
  CERT_REJECTED: 28,
  HOSTNAME_MISMATCH: 62,
};

/** OpenSSL's routine errors in EPIC5's model: a self-signed certificate and a host name mismatch. */
const ROUTINE = new Set([18, 62]);

/** What EPIC5's server_ssl_eval hook is told about a peer's certificate (one field per item). */
export interface CertEvaluation {
  /** SSL_CIPHER: OpenSSL's name of the cipher in use */
  cipher: string;
  /** SSL_PEM */
  pem: string;
  /** SSL_CERT_HASH: SHA-1 of the DER certificate, colon-separated upper-case hex pairs (EPIC's form) */
  certHash: string;
  /** The SHA-256 fingerprint in the same form (not an EPIC item) */
  certHashSha256: string;
  /** SSL_PKEY_BITS */
  publicKeyBits: number;
  /** SSL_SUBJECT / SSL_SUBJECT_URL: RFC 2253 form (as `openssl x509 -nameopt RFC2253` prints), and URL-encoded */
  subject: string;
  subjectUrl: string;
  /** SSL_ISSUER / SSL_ISSUER_URL */
  issuer: string;
  issuerUrl: string;
  /** The subject and issuer in OpenSSL's oneline form, `/C=DE/O=Test Org/CN=x` (not EPIC items) */
  subjectOneline: string;
  issuerOneline: string;
  /** SSL_VERSION, e.g. TLSv1.3 */
  version: string;
  /** SSL_SANS: the subjectAltName DNS names */
  sans: string[];
  /** Every subjectAltName entry as OpenSSL prints it (`DNS:a`, `IP Address:1.2.3.4`) (not an EPIC item) */
  sanEntries: string[];
  /** SSL_CHECKHOST_ERROR */
  hostnameMismatch: boolean;
  /** SSL_SELF_SIGNED_ERROR: OpenSSL's verify error 18 (a self-signed certificate that is not trusted) */
  selfSigned: boolean;
  /** SSL_OTHER_ERROR: an error other than the routine 18 and 62 */
  otherError: boolean;
  /**
   * SSL_MOST_SERIOUS_ERROR: an OpenSSL X509_V_ERR number, 0 for none. Any other error outranks the
   * routine 62 (host name mismatch), which outranks the routine 18 (self-signed).
   */
  mostSeriousError: number;
  /** Every error found, as X509_V_ERR numbers (verification, validity dates, host name) */
  errors: number[];
  /** SSL_VERIFY_ERROR: any error at all */
  anyError: boolean;
  /** SSL_ACCEPT_CERT: the suggested decision (accept only without any error) */
  accept: boolean;
}

const SELF_SIGNED = 18;
const HOSTNAME_MISMATCH = 62;

/** The most serious of X509_V_ERR numbers in EPIC5's ranking: any other > 62 > 18; 0 for none. */
export function mostSeriousError(errors: readonly number[]): number {
  const serious = errors.find((e) => !ROUTINE.has(e));
  if (serious !== undefined) return serious;
  if (errors.includes(HOSTNAME_MISMATCH)) return HOSTNAME_MISMATCH;
  return errors.includes(SELF_SIGNED) ? SELF_SIGNED : 0;
}

/**
 * Evaluate the peer's certificate after a handshake, EPIC5's server_ssl_eval model: the items of
 * that hook and a provisional decision. `host` is the name the peer should have (for the mismatch
 * check: SAN dNSName, or the CN where there is none; an IP address against the SAN IP entries);
 * without one there is no mismatch. OpenSSL reports one verification error per certificate (the
 * last one it found), so an expired or not yet valid certificate is also recognised from its own
 * dates. Returns undefined when the peer sent no certificate.
 */
export function evaluateCertificate(
  socket: TLSSocket,
  opts: { host?: string } = {},
): CertEvaluation | undefined {
  const x509 = peerCertificate(socket);
  if (!x509) return undefined;
  const errors: number[] = [];
  const verifyCode = peerVerifyError(socket);
  if (verifyCode) errors.push(VERIFY_CODES[verifyCode] ?? 1);
  const now = Date.now();
  if (Date.parse(x509.validTo) < now && !errors.includes(10)) errors.push(10);
  if (Date.parse(x509.validFrom) > now && !errors.includes(9)) errors.push(9);
  const hostnameMismatch =
    opts.host !== undefined && checkServerIdentity(opts.host, socket.getPeerCertificate()) !== undefined;
  if (hostnameMismatch) errors.push(HOSTNAME_MISMATCH);
  const key = x509.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  const publicKeyBits =
    details.modulusLength ??
    (key.asymmetricKeyType === 'ed25519'
      ? 256
      : key.asymmetricKeyType === 'ed448'
        ? 456
        : curveBits(details.namedCurve));
  const subject = rfc2253(x509.subject);
  const issuer = rfc2253(x509.issuer);
  const sanEntries = splitAltNames(x509.subjectAltName ?? '');
  return {
    cipher: socket.getCipher()?.name ?? '',
    pem: x509.toString(),
    certHash: x509.fingerprint,
    certHashSha256: x509.fingerprint256,
    publicKeyBits,
    subject,
    subjectUrl: encodeURIComponent(subject),
    issuer,
    issuerUrl: encodeURIComponent(issuer),
    subjectOneline: onelineDn(x509.subject),
    issuerOneline: onelineDn(x509.issuer),
    version: socket.getProtocol() ?? '',
    sans: sanEntries.filter((e) => e.startsWith('DNS:')).map((e) => e.slice(4)),
    sanEntries,
    hostnameMismatch,
    selfSigned: errors.includes(SELF_SIGNED),
    otherError: errors.some((e) => !ROUTINE.has(e)),
    mostSeriousError: mostSeriousError(errors),
    errors,
    anyError: errors.length > 0,
    accept: errors.length === 0,
  };
}

/**
 * RFC 2253 form as `openssl x509 -nameopt RFC2253` prints it: the most specific attribute first,
 * comma-separated, multi-valued RDNs joined by `+` (the whole list reversed, as OpenSSL's DN_REV does), bytes above 127 escaped as `\XX`. Node.js
 * prints names with OpenSSL's RFC 2253 escaping already, one RDN per line in certificate order.
 */
function rfc2253(dn: string): string {
  return dn
    .split('\n')
    .filter(Boolean)
    .reverse()
    .map((rdn) => rdn.split(' + ').reverse().join('+'))
    .join(',')
    .replace(/[^\x00-\x7f]/gu, (ch) =>
      [...Buffer.from(ch, 'utf8')].map((b) => `\\${b.toString(16).toUpperCase()}`).join(''),
    );
}

/** The entries of Node.js's subjectAltName string; values holding `, ` come JSON-quoted. */
function splitAltNames(text: string): string[] {
  const out: string[] = [];
  const re = /([^:,]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (let m = re.exec(text); m && m[0] !== ''; m = re.exec(text)) {
    const value = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
    out.push(`${m[1]!.trim()}:${value}`);
  }
  return out;
}

function curveBits(curve: string | undefined): number {
  const m = /(\d{3})/.exec(curve ?? '');
  return m ? Number(m[1]) : 0;
}

/** A policy hook: it sees the evaluation and returns the final decision. */
export type EvaluationPolicy = (report: CertEvaluation) => boolean | Promise<boolean>;

/** Run a policy hook over an evaluation; without a hook the suggested decision stands. Its answer is final. */
export async function applyEvaluationPolicy(
  report: CertEvaluation,
  policy?: EvaluationPolicy,
): Promise<boolean> {
  if (!policy) return report.accept;
  return (await policy(report)) === true;
}

/** Hex digest of a PEM certificate's DER with another algorithm than the SHA-256 of certHash (e.g. `sha1`). */
export function certificateDigest(pem: string, algorithm = 'sha256'): string {
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  return createHash(algorithm).update(der).digest('hex');
}

import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { checkServerIdentity } from 'node:tls';
import { peerCertificate, peerVerifyError } from '@ucspi/env';

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
  /** SSL_CIPHER */
  cipher: string;
  /** SSL_PEM */
  pem: string;
  /** SSL_CERT_HASH: SHA-256 fingerprint, colon-separated upper-case hex (as node:crypto prints). */
  certHash: string;
  /** SSL_PKEY_BITS */
  publicKeyBits: number;
  /** SSL_SUBJECT / SSL_SUBJECT_URL (OpenSSL oneline form, and URL-encoded) */
  subject: string;
  subjectUrl: string;
  /** SSL_ISSUER / SSL_ISSUER_URL */
  issuer: string;
  issuerUrl: string;
  /** SSL_VERSION, e.g. TLSv1.3 */
  version: string;
  /** SSL_SANS: the subjectAltName entries (`DNS:a`, `IP Address:1.2.3.4`) */
  sans: string[];
  /** SSL_CHECKHOST_ERROR */
  hostnameMismatch: boolean;
  /** SSL_SELF_SIGNED_ERROR */
  selfSigned: boolean;
  /** SSL_OTHER_ERROR: an error other than the routine 18 and 62 */
  otherError: boolean;
  /** SSL_MOST_SERIOUS_ERROR: an OpenSSL X509_V_ERR number; a serious one wins over 18 and 62; 0 for none */
  mostSeriousError: number;
  /** SSL_VERIFY_ERROR: any error at all */
  anyError: boolean;
  /** SSL_ACCEPT_CERT: the suggested decision (accept only without any error) */
  accept: boolean;
}

/**
 * Evaluate the peer's certificate after a handshake, EPIC5's server_ssl_eval model: the items of
 * that hook and a provisional decision. `host` is the name the peer should have (for the mismatch
 * check); without one there is no mismatch. Returns undefined when the peer sent no certificate.
 */
export function evaluateCertificate(
  socket: TLSSocket,
  opts: { host?: string } = {},
): CertEvaluation | undefined {
  const x509 = peerCertificate(socket);
  if (!x509) return undefined;
  const peer = socket.getPeerCertificate();
  const errors: number[] = [];
  const verifyCode = peerVerifyError(socket);
  if (verifyCode) errors.push(VERIFY_CODES[verifyCode] ?? 1);
  const hostnameMismatch = opts.host !== undefined && checkServerIdentity(opts.host, peer) !== undefined;
  if (hostnameMismatch) errors.push(62);
  const selfSigned = errors.includes(18) || x509.checkIssued(x509);
  const serious = errors.filter((e) => !ROUTINE.has(e));
  const mostSeriousError = serious[0] ?? errors.find((e) => e === 18) ?? errors[0] ?? 0;
  const oneline = (dn: string) =>
    dn
      .split('\n')
      .filter(Boolean)
      .map((p) => `/${p}`)
      .join('');
  const subject = oneline(x509.subject);
  const issuer = oneline(x509.issuer);
  const key = x509.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  const publicKeyBits =
    details.modulusLength ??
    (key.asymmetricKeyType === 'ed25519'
      ? 256
      : key.asymmetricKeyType === 'ed448'
        ? 456
        : curveBits(details.namedCurve));
  return {
    cipher: socket.getCipher()?.name ?? '',
    pem: x509.toString(),
    certHash: x509.fingerprint256,
    publicKeyBits,
    subject,
    subjectUrl: encodeURIComponent(subject),
    issuer,
    issuerUrl: encodeURIComponent(issuer),
    version: socket.getProtocol() ?? '',
    sans: (x509.subjectAltName ?? '').split(', ').filter(Boolean),
    hostnameMismatch,
    selfSigned,
    otherError: serious.length > 0,
    mostSeriousError,
    anyError: errors.length > 0 || selfSigned,
    accept: errors.length === 0 && !selfSigned,
  };
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

// EPIC5's server_ssl_eval hook as data: the five flags it passes as arguments and the items it
// offers through $serverctl(GET), for callers that hand the decision to another program
// (tcpclient -E) or log it.
import type { CertEvaluation } from './evaluate.js';

const flag = (b: boolean) => (b ? '1' : '0');

/**
 * EPIC5's five flags, each `0` or `1`, in its order ($2 to $6): any error, host name mismatch,
 * self-signed, another (serious) error, and the suggestion (1 = accept).
 */
export function evaluationArgs(report: CertEvaluation): [string, string, string, string, string] {
  return [
    flag(report.anyError),
    flag(report.hostnameMismatch),
    flag(report.selfSigned),
    flag(report.otherError),
    flag(report.accept),
  ];
}

/**
 * Every item of EPIC5's server_ssl_eval as an environment variable: SSL_CIPHER, SSL_VERSION,
 * SSL_PEM, SSL_CERT_HASH, SSL_PKEY_BITS, SSL_SUBJECT, SSL_SUBJECT_URL, SSL_ISSUER, SSL_ISSUER_URL,
 * SSL_SANS (DNS names, space-separated), SSL_CHECKHOST_ERROR, SSL_SELF_SIGNED_ERROR,
 * SSL_OTHER_ERROR, SSL_VERIFY_ERROR (each 0 or 1), SSL_MOST_SERIOUS_ERROR (an X509_V_ERR number)
 * and SSL_ACCEPT_CERT (the suggestion, 0 or 1).
 */
export function evaluationEnv(report: CertEvaluation): Record<string, string> {
  return {
    SSL_CIPHER: report.cipher,
    SSL_VERSION: report.version,
    SSL_PEM: report.pem,
    SSL_CERT_HASH: report.certHash,
    SSL_PKEY_BITS: String(report.publicKeyBits),
    SSL_SUBJECT: report.subject,
    SSL_SUBJECT_URL: report.subjectUrl,
    SSL_ISSUER: report.issuer,
    SSL_ISSUER_URL: report.issuerUrl,
    SSL_SANS: report.sans.join(' '),
    SSL_CHECKHOST_ERROR: flag(report.hostnameMismatch),
    SSL_SELF_SIGNED_ERROR: flag(report.selfSigned),
    SSL_OTHER_ERROR: flag(report.otherError),
    SSL_VERIFY_ERROR: flag(report.anyError),
    SSL_MOST_SERIOUS_ERROR: String(report.mostSeriousError),
    SSL_ACCEPT_CERT: flag(report.accept),
  };
}

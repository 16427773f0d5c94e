// stunnel's subject checks on the peer's certificate: checkHost, checkEmail and checkIP lines, any
// one of which matching accepts the peer (stunnel 5.68 tries each list in turn and rejects only when
// none matched: "CERT: Subject checks failed"). The matching is OpenSSL's own (X509_check_host,
// X509_check_email, X509_check_ip through node:crypto's X509Certificate), as in stunnel: an email
// address matches an rfc822Name of the subjectAltName (the domain part case-insensitive, the local
// part exact), or the subject's emailAddress when the certificate has no such name.
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

/** The lists of one service. */
export interface SubjectNames {
  checkHost: readonly string[];
  checkEmail: readonly string[];
  checkIP: readonly string[];
}

/** Whether the service asks for any subject check. */
export function hasSubjectChecks(n: SubjectNames): boolean {
  return n.checkHost.length + n.checkEmail.length + n.checkIP.length > 0;
}

/** A certificate's subject as stunnel logs it: `C=DE, O=Test Org, CN=client.test`. */
export function subjectLine(cert: X509Certificate): string {
  return cert.subject.split('\n').join(', ');
}

/** The peer's leaf certificate, or undefined when it sent none. */
export function peerCertificate(socket: TLSSocket): X509Certificate | undefined {
  return socket.getPeerX509Certificate();
}

/**
 * undefined: one of the lists matched the certificate; otherwise the rejection text (stunnel's
 * words, then the subject as stunnel's `Rejected by CERT at depth=0` line gives it).
 */
export function checkSubject(cert: X509Certificate, n: SubjectNames): string | undefined {
  if (n.checkHost.some((h) => cert.checkHost(h) !== undefined)) return undefined;
  if (n.checkEmail.some((e) => cert.checkEmail(e) !== undefined)) return undefined;
  if (n.checkIP.some((ip) => safeCheckIp(cert, ip))) return undefined;
  return `Subject checks failed: ${subjectLine(cert)}`;
}

/** X509Certificate.checkIP throws on a string that is not an address: such a line matches nothing. */
function safeCheckIp(cert: X509Certificate, ip: string): boolean {
  try {
    return cert.checkIP(ip) !== undefined;
  } catch {
    return false;
  }
}

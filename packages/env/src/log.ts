/**
 * Make an untrusted field (a remote host name, remote info, a local name) safe for a log line, as
 * ucspi-tcp's tcpserver does: bytes below 33 or above 126, `%` (logger format injection) and `:`
 * (the field separator of the ok/deny lines) become `?`, and at most 100 characters are kept.
 */
export function logField(s: string | undefined): string {
  if (s === undefined) return '';
  let out = '';
  for (const ch of Buffer.from(s, 'utf8').subarray(0, 100)) {
    out += ch < 33 || ch > 126 || ch === 0x25 || ch === 0x3a ? '?' : String.fromCharCode(ch);
  }
  return out;
}

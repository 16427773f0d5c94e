/**
 * FTP AUTH TLS: RFC 4217 (Securing FTP with TLS) section 4, on RFC 2228 section 3's AUTH command.
 * Replies as RFC 959 section 4.2: a multi-line reply starts with "NNN-" and ends with the first
 * line that starts with the same "NNN " (lines in between may be anything). 234 is the go-ahead.
 */
import { show } from '../_reply.js';
import { StartTlsErrorCodes } from '../errors.js';
import type { Dialogue, StartTlsProtocol } from '../protocol.js';

/** FTP, port 21. */
export const protocol: StartTlsProtocol = { name: 'ftp', defaultPort: 21, client };

/** Reads one FTP reply (RFC 959 section 4.2) and returns its code and lines. */
export async function readFtpReply(d: Dialogue, maxLines = 200): Promise<{ code: number; raw: string }> {
  const first = await d.readLine();
  const m = /^([1-5]\d\d)([ -]|$)/.exec(first);
  if (!m) d.fail(StartTlsErrorCodes.PROTOCOL, `malformed reply line: ${show(first)}`, { reply: first });
  const raw = [first];
  if (m[2] === '-') {
    const end = `${m[1]} `;
    for (;;) {
      const line = await d.readLine();
      raw.push(line);
      if (line.startsWith(end) || line === m[1]) break;
      if (raw.length > maxLines)
        d.fail(StartTlsErrorCodes.PROTOCOL, `multi-line reply longer than ${maxLines} lines`);
    }
  }
  return { code: Number(m[1]), raw: raw.join('\n') };
}

async function client(d: Dialogue): Promise<void> {
  let greeting = await readFtpReply(d);
  // RFC 959 section 5.4: 120 "service ready in nnn minutes" precedes the 220.
  if (greeting.code === 120) greeting = await readFtpReply(d);
  if (greeting.code !== 220) {
    d.fail(StartTlsErrorCodes.GREETING, `the server refused the session: ${show(greeting.raw)}`, {
      reply: greeting.raw,
      temporary: greeting.code < 500,
    });
  }
  d.greeted(greeting.raw.split('\n'));
  d.writeLine('AUTH TLS');
  const go = await readFtpReply(d);
  // RFC 4217 section 4.1: 234 go ahead; 502/504/534/431 refusals.
  if (go.code !== 234) {
    const code =
      go.code === 500 || go.code === 502 || go.code === 504
        ? StartTlsErrorCodes.NOT_OFFERED
        : StartTlsErrorCodes.REFUSED;
    d.fail(code, `AUTH TLS refused: ${show(go.raw)}`, { reply: go.raw, temporary: go.code < 500 });
  }
}

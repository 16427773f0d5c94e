import { StartTlsErrorCodes } from './errors.js';
import type { Dialogue } from './protocol.js';

/** A numeric reply of SMTP, LMTP (RFC 5321 section 4.2) or FTP (RFC 959 section 4.2). */
export interface Reply {
  /** The three-digit code. */
  code: number;
  /** The text of each line, without the code and its separator. */
  lines: string[];
  /** The reply as received, lines joined with LF (for error messages). */
  raw: string;
}

// RFC 5321 section 4.2: "Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF".
const REPLY_LINE = /^([2-5][0-5][0-9])(?:([ -])(.*))?$/;

/**
 * Reads one SMTP-style reply, multi-line (`250-`...`250 `) included, however it was split into
 * packets. A malformed line, a code that changes within the reply, or more than `maxLines` lines
 * fail with UCSPI_ERR_STARTTLS_PROTOCOL.
 */
export async function readReply(d: Dialogue, maxLines = 200): Promise<Reply> {
  const lines: string[] = [];
  const raw: string[] = [];
  let code: string | undefined;
  for (;;) {
    const line = await d.readLine();
    raw.push(line);
    const m = REPLY_LINE.exec(line);
    if (!m)
      d.fail(StartTlsErrorCodes.PROTOCOL, `malformed reply line: ${show(line)}`, { reply: raw.join('\n') });
    if (code !== undefined && m[1] !== code) {
      d.fail(StartTlsErrorCodes.PROTOCOL, `reply code changed within a multi-line reply: ${show(line)}`, {
        reply: raw.join('\n'),
      });
    }
    code = m[1] as string;
    lines.push(m[3] ?? '');
    if (m[2] !== '-') return { code: Number(code), lines, raw: raw.join('\n') };
    if (lines.length >= maxLines) {
      d.fail(StartTlsErrorCodes.PROTOCOL, `multi-line reply longer than ${maxLines} lines`, {
        reply: raw.join('\n'),
      });
    }
  }
}

/** A line shortened and quoted for an error message. */
export function show(line: string): string {
  return JSON.stringify(line.length > 200 ? `${line.slice(0, 200)}...` : line);
}

/**
 * Checks that an option used inside a command is one printable token (no space, CR, LF or other
 * control character, which would let a caller's value smuggle a second command). Throws
 * UCSPI_ERR_STARTTLS_BAD_OPTION otherwise.
 */
export function checkToken(d: Dialogue, what: string, value: string): string {
  if (value.length === 0 || value.length > 255 || /[\s\x00-\x1f\x7f]/.test(value)) {
    d.fail(StartTlsErrorCodes.BAD_OPTION, `${what} must be one printable word, not ${show(value)}`);
  }
  return value;
}

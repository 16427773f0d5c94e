/**
 * IMAP STARTTLS: RFC 3501 sections 6.1.1 (CAPABILITY) and 6.2.1 (STARTTLS), as RFC 9051 keeps
 * them, and RFC 2595 section 3.1. Commands are tagged; untagged data before the tagged result is
 * allowed. A PREAUTH greeting leaves no way to STARTTLS (RFC 3501 section 7.1.4) and is refused.
 */
import { show } from '../_reply.js';
import { commandLoop, greetingText, serverName, type Verdict } from '../_server.js';
import { StartTlsErrorCodes } from '../errors.js';
import type { Dialogue, StartTlsProtocol } from '../protocol.js';

/** IMAP, port 143. */
export const protocol: StartTlsProtocol = {
  name: 'imap',
  defaultPort: 143,
  client,
  server: serve,
};

async function client(d: Dialogue): Promise<void> {
  const greeting = await d.readLine();
  if (/^\* PREAUTH\b/i.test(greeting)) {
    d.fail(
      StartTlsErrorCodes.GREETING,
      `the server pre-authenticated the session, STARTTLS impossible: ${show(greeting)}`,
      {
        reply: greeting,
      },
    );
  }
  if (!/^\* OK\b/i.test(greeting)) {
    d.fail(StartTlsErrorCodes.GREETING, `the server refused the session: ${show(greeting)}`, {
      reply: greeting,
    });
  }
  d.greeted([greeting]);
  d.writeLine('a1 CAPABILITY');
  const caps = await tagged(d, 'a1');
  if (caps.status !== 'OK') {
    d.fail(StartTlsErrorCodes.PROTOCOL, `CAPABILITY failed: ${show(caps.line)}`, {
      reply: caps.untagged.join('\n'),
    });
  }
  const offered = caps.untagged.some(
    (l) => /^\* CAPABILITY /i.test(l) && l.toUpperCase().split(/\s+/).slice(2).includes('STARTTLS'),
  );
  if (!offered)
    d.fail(StartTlsErrorCodes.NOT_OFFERED, 'the server does not offer STARTTLS (not in CAPABILITY)');
  d.writeLine('a2 STARTTLS');
  const go = await tagged(d, 'a2');
  if (go.status !== 'OK')
    d.fail(StartTlsErrorCodes.REFUSED, `STARTTLS refused: ${show(go.line)}`, { reply: go.line });
}

/** Reads untagged lines up to the tagged completion of `tag` (RFC 3501 section 7.1). */
async function tagged(
  d: Dialogue,
  tag: string,
): Promise<{ status: 'OK' | 'NO' | 'BAD'; line: string; untagged: string[] }> {
  const untagged: string[] = [];
  for (;;) {
    const line = await d.readLine();
    const m = /^(\S+) (OK|NO|BAD)\b/i.exec(line);
    if (m && m[1] === tag)
      return { status: (m[2] as string).toUpperCase() as 'OK' | 'NO' | 'BAD', line, untagged };
    if (line.startsWith('* BYE'))
      d.fail(StartTlsErrorCodes.PROTOCOL, `the server said BYE: ${show(line)}`, { reply: line });
    if (!line.startsWith('* '))
      d.fail(StartTlsErrorCodes.PROTOCOL, `unexpected line: ${show(line)}`, { reply: line });
    if (untagged.length >= 200) d.fail(StartTlsErrorCodes.PROTOCOL, 'more than 200 untagged lines');
    untagged.push(line);
  }
}

const CAPABILITY = 'IMAP4rev1 STARTTLS LOGINDISABLED';

async function serve(d: Dialogue): Promise<string> {
  const name = serverName(d);
  d.write(
    greetingText(
      d,
      `* OK [CAPABILITY ${CAPABILITY}] ${name} IMAP ready`,
      (lines) => lines.length === 1 && /^\* OK\b/i.test(lines[0] as string),
    ),
  );
  return commandLoop(
    d,
    (line): Verdict => {
      const m = /^([^\s(){%*"\\\]]+) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return { reply: '* BAD Missing tag or command', error: true };
      const tag = m[1] as string;
      const cmd = (m[2] as string).toUpperCase();
      switch (cmd) {
        case 'CAPABILITY':
          return { reply: `* CAPABILITY ${CAPABILITY}\r\n${tag} OK CAPABILITY completed` };
        case 'NOOP':
          return { reply: `${tag} OK NOOP completed` };
        case 'STARTTLS':
          if (m[3]) return { reply: `${tag} BAD STARTTLS takes no arguments`, error: true };
          return { goAhead: `${tag} OK Begin TLS negotiation now` };
        case 'LOGOUT':
          return { quit: `* BYE ${name} logging out\r\n${tag} OK LOGOUT completed` };
        case 'LOGIN':
        case 'AUTHENTICATE':
          // RFC 3501 section 6.2.3 and RFC 5530's PRIVACYREQUIRED.
          return { reply: `${tag} NO [PRIVACYREQUIRED] Use STARTTLS first`, error: true };
        default:
          return { reply: `${tag} BAD Command not allowed before STARTTLS`, error: true };
      }
    },
    '* BYE Too many errors',
  );
}

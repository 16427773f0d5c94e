/**
 * SMTP STARTTLS: RFC 3207 (SMTP Service Extension for Secure SMTP over TLS) sections 4 to 4.2,
 * with RFC 5321 section 4.2 replies and section 4.1.1.1 EHLO. The client says EHLO before STARTTLS
 * (exim answers 503 otherwise) and again after TLS (section 4.2: the client MUST discard what it
 * knew, the server's capabilities may differ).
 */
import { readReply, show } from '../_reply.js';
import { commandLoop, greetingText, serverName, type Verdict, verb } from '../_server.js';
import { StartTlsErrorCodes } from '../errors.js';
import type { Dialogue, StartTlsProtocol } from '../protocol.js';
import { ehloName, hasKeyword } from './_ehlo.js';

/** SMTP, port 25 (587 for submission). */
export const protocol: StartTlsProtocol = {
  name: 'smtp',
  defaultPort: 25,
  client: (d) => helloThenStartTls(d, 'EHLO'),
  afterTls: async (d) => {
    await helloAgain(d, 'EHLO');
    if (d.options.auth !== undefined) await authenticate(d);
  },
  server: serve,
};

/**
 * The client dialogue SMTP and LMTP share: greeting 220, EHLO/LHLO, STARTTLS in its keywords,
 * STARTTLS answered with 220.
 */
export async function helloThenStartTls(d: Dialogue, hello: 'EHLO' | 'LHLO'): Promise<void> {
  const hello220 = await readReply(d);
  if (hello220.code !== 220) {
    d.fail(StartTlsErrorCodes.GREETING, `the server refused the session: ${show(hello220.raw)}`, {
      reply: hello220.raw,
      temporary: hello220.code < 500,
    });
  }
  d.greeted(hello220.raw.split('\n'));
  d.writeLine(`${hello} ${ehloName(d)}`);
  const ehlo = await readReply(d);
  if (ehlo.code !== 250) {
    // No ESMTP, no STARTTLS (RFC 3207 section 4): never a plaintext fall-back to HELO.
    d.fail(StartTlsErrorCodes.NOT_OFFERED, `${hello} refused, so no STARTTLS: ${show(ehlo.raw)}`, {
      reply: ehlo.raw,
      temporary: ehlo.code < 500,
    });
  }
  if (!hasKeyword(ehlo, 'STARTTLS')) {
    d.fail(StartTlsErrorCodes.NOT_OFFERED, 'the server does not offer STARTTLS', { reply: ehlo.raw });
  }
  d.writeLine('STARTTLS');
  const go = await readReply(d);
  // RFC 3207 section 4: 220 ready, 454 TLS not available (temporary), 501 syntax.
  if (go.code !== 220) {
    d.fail(StartTlsErrorCodes.REFUSED, `STARTTLS refused: ${show(go.raw)}`, {
      reply: go.raw,
      temporary: go.code < 500,
    });
  }
}

/** After TLS: EHLO/LHLO again and its 250 reply consumed (RFC 3207 section 4.2). */
export async function helloAgain(d: Dialogue, hello: 'EHLO' | 'LHLO'): Promise<void> {
  d.writeLine(`${hello} ${ehloName(d)}`);
  const reply = await readReply(d);
  if (reply.code !== 250) {
    d.fail(StartTlsErrorCodes.PROTOCOL, `${hello} after TLS refused: ${show(reply.raw)}`, {
      reply: reply.raw,
      temporary: reply.code < 500,
    });
  }
}

/**
 * SMTP AUTH (RFC 4954) inside TLS with the `auth` mechanism: PLAIN's initial response (RFC 4616:
 * NUL user NUL password) or LOGIN's two 334 challenges; 235 is success. Credentials are never shown
 * in diagnostics.
 */
async function authenticate(d: Dialogue): Promise<void> {
  const user = d.options.username ?? '';
  const pass = d.options.password ?? '';
  const b64 = (t: string) => Buffer.from(t, 'utf8').toString('base64');
  const refused = (reply: { code: number; raw: string }, what: string): never =>
    d.fail(StartTlsErrorCodes.AUTH, `${what}: ${show(reply.raw)}`, {
      reply: reply.raw,
      temporary: reply.code < 500,
    });
  if (d.options.auth === 'plain') {
    d.writeLine(`AUTH PLAIN ${b64(`\0${user}\0${pass}`)}`, 'AUTH PLAIN <redacted>');
    const done = await readReply(d);
    if (done.code !== 235) refused(done, 'AUTH PLAIN refused');
    return;
  }
  d.writeLine('AUTH LOGIN');
  const first = await readReply(d);
  if (first.code !== 334) {
    d.fail(StartTlsErrorCodes.AUTH_MECHANISM, `AUTH LOGIN not taken up: ${show(first.raw)}`, {
      reply: first.raw,
      temporary: first.code < 500,
    });
  }
  d.writeLine(b64(user), '<username>');
  const second = await readReply(d);
  if (second.code !== 334) refused(second, 'AUTH LOGIN refused the user name');
  d.writeLine(b64(pass), '<redacted>');
  const done = await readReply(d);
  if (done.code !== 235) refused(done, 'AUTH LOGIN refused');
}

// Commands of a mail transaction, refused with 530 until TLS (RFC 3207 section 4).
const NEEDS_TLS = new Set(['MAIL', 'RCPT', 'DATA', 'BDAT', 'AUTH', 'ETRN', 'VRFY', 'EXPN', 'TURN', 'ATRN']);

async function serve(d: Dialogue): Promise<string> {
  const name = serverName(d);
  // A multi-line greeting is 220- lines and a last 220 line (RFC 5321 section 4.2).
  d.write(
    greetingText(d, `220 ${name} ESMTP ready`, (lines) =>
      lines.every((l, i) => (i < lines.length - 1 ? /^220-/.test(l) : /^220( |$)/.test(l))),
    ),
  );
  return commandLoop(
    d,
    (line): Verdict => {
      const [cmd, arg] = verb(line);
      switch (cmd) {
        case 'EHLO':
          if (!arg) return { reply: '501 5.5.4 EHLO needs a domain', error: true };
          return { reply: `250-${name} greets ${arg.split(/\s/)[0]}\r\n250-8BITMIME\r\n250 STARTTLS` };
        case 'HELO':
          if (!arg) return { reply: '501 5.5.4 HELO needs a domain', error: true };
          return { reply: `250 ${name}` };
        case 'STARTTLS':
          // RFC 3207 section 4: no parameters.
          if (arg) return { reply: '501 5.5.4 Syntax error (no parameters allowed)', error: true };
          return { goAhead: '220 2.0.0 Ready to start TLS' };
        case 'NOOP':
        case 'RSET':
          return { reply: '250 2.0.0 OK' };
        case 'QUIT':
          return { quit: `221 2.0.0 ${name} closing connection` };
        default:
          if (NEEDS_TLS.has(cmd))
            return { reply: '530 5.7.0 Must issue a STARTTLS command first', error: true };
          return { reply: '500 5.5.1 Command unrecognized', error: true };
      }
    },
    '421 4.7.0 Too many errors, closing connection',
  );
}

/**
 * POP3 STLS: RFC 2595 (Using TLS with IMAP, POP3 and ACAP) section 4, with CAPA from RFC 2449
 * section 5. The client asks CAPA first, so a server that lists its capabilities without STLS is
 * a clear "not offered"; a server without CAPA (RFC 1939 only) is asked STLS directly, as openssl
 * s_client does.
 */
import { show } from '../_reply.js';
import { commandLoop, greetingText, serverName, type Verdict, verb } from '../_server.js';
import { StartTlsErrorCodes } from '../errors.js';
import type { Dialogue, StartTlsProtocol } from '../protocol.js';

/** POP3, port 110. */
export const protocol: StartTlsProtocol = {
  name: 'pop3',
  defaultPort: 110,
  client,
  server: serve,
};

async function client(d: Dialogue): Promise<void> {
  const greeting = await d.readLine();
  if (!/^\+OK\b/i.test(greeting)) {
    d.fail(StartTlsErrorCodes.GREETING, `the server refused the session: ${show(greeting)}`, {
      reply: greeting,
    });
  }
  d.greeted([greeting]);
  d.writeLine('CAPA');
  const capa = await d.readLine();
  if (/^\+OK\b/i.test(capa)) {
    // RFC 2449 section 5: a multi-line list ended by a lone ".", one capability per line.
    let offered = false;
    for (let n = 0; ; n++) {
      const line = await d.readLine();
      if (line === '.') break;
      if (n >= 200) d.fail(StartTlsErrorCodes.PROTOCOL, 'CAPA list longer than 200 lines');
      if (line.trim().split(/\s+/)[0]?.toUpperCase() === 'STLS') offered = true;
    }
    if (!offered) d.fail(StartTlsErrorCodes.NOT_OFFERED, 'the server does not offer STLS (not in CAPA)');
  } else if (!/^-ERR\b/i.test(capa)) {
    d.fail(StartTlsErrorCodes.PROTOCOL, `unexpected reply to CAPA: ${show(capa)}`, { reply: capa });
  }
  d.writeLine('STLS');
  const go = await d.readLine();
  if (!/^\+OK\b/i.test(go)) {
    const code = /^-ERR\b/i.test(go) ? StartTlsErrorCodes.REFUSED : StartTlsErrorCodes.PROTOCOL;
    d.fail(code, `STLS refused: ${show(go)}`, { reply: go });
  }
}

const NEEDS_TLS = new Set(['USER', 'PASS', 'APOP', 'AUTH']);

async function serve(d: Dialogue): Promise<string> {
  const name = serverName(d);
  d.write(
    greetingText(
      d,
      `+OK ${name} POP3 ready`,
      (lines) => lines.length === 1 && /^\+OK\b/.test(lines[0] as string),
    ),
  );
  return commandLoop(
    d,
    (line): Verdict => {
      const [cmd, arg] = verb(line);
      switch (cmd) {
        case 'CAPA':
          return { reply: '+OK Capability list follows\r\nTOP\r\nUIDL\r\nSTLS\r\n.' };
        case 'STLS':
          if (arg) return { reply: '-ERR Syntax error (no parameters allowed)', error: true };
          // RFC 2595 section 4: "+OK Begin TLS negotiation".
          return { goAhead: '+OK Begin TLS negotiation' };
        case 'QUIT':
          return { quit: `+OK ${name} POP3 closing` };
        case 'NOOP':
          return { reply: '-ERR Not in TRANSACTION state', error: true };
        default:
          if (NEEDS_TLS.has(cmd)) return { reply: '-ERR [SYS/PERM] Use STLS first', error: true };
          return { reply: '-ERR Unknown command', error: true };
      }
    },
    '-ERR Too many errors, closing connection',
  );
}

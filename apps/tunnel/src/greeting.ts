// The backend's greeting, read before the client's STARTTLS dialogue (stunnel's server-side
// protocols connect to the backend first and pass its greeting on): SMTP's 220 reply (multi-line
// `220-` lines up to the `220 ` one, RFC 5321 section 4.2), POP3's `+OK` line (RFC 1939 section 4),
// IMAP's untagged `* OK` line (RFC 9051 section 7.1.1).
import type { Socket } from 'node:net';

const MAX = 16 * 1024;

/** Whether `lines` (without CRLF) are a complete greeting of `protocol`; throws for a refusal. */
function complete(protocol: string, lines: string[]): boolean {
  const last = lines.at(-1)!;
  if (protocol === 'smtp') {
    if (!/^220[ -]/.test(last)) throw new Error(`Unexpected greeting from the server: ${last.slice(0, 80)}`);
    return last.startsWith('220 ') || last === '220';
  }
  const ok = protocol === 'pop3' ? /^\+OK\b/ : /^\* (OK|PREAUTH)\b/i;
  if (!ok.test(last)) throw new Error(`Unexpected greeting from the server: ${last.slice(0, 80)}`);
  return true;
}

/**
 * Read the greeting of `protocol` from `socket` within `timeoutMs`; what the server sent beyond it
 * goes back into the socket (unshift). Resolves with its lines joined by CRLF, without the last one.
 */
export function readGreeting(socket: Socket, protocol: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const lines: string[] = [];
    const done = (err: Error | undefined, value?: string) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
      socket.pause();
      if (err) reject(err);
      else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const nl = buf.indexOf(10);
        if (nl < 0) break;
        const line = buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
        buf = buf.subarray(nl + 1);
        lines.push(line);
        try {
          if (complete(protocol, lines)) {
            if (buf.length) socket.unshift(buf);
            done(undefined, lines.join('\r\n'));
            return;
          }
        } catch (err) {
          done(err as Error);
          return;
        }
      }
      if (buf.length > MAX) done(new Error('Greeting too long'));
    };
    const onEnd = () => done(new Error('Connection closed before the greeting'));
    const timer = setTimeout(() => done(new Error('Timeout waiting for the greeting')), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onEnd);
  });
}

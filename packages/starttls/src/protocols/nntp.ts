/**
 * NNTP STARTTLS: RFC 4642 (Using TLS with NNTP) section 2.2, with CAPABILITIES from RFC 3977
 * section 5.2. Greeting 200 or 201, CAPABILITIES (101 and a list ended by "."), STARTTLS answered
 * with 382. A server without CAPABILITIES is asked STARTTLS directly, as openssl s_client does.
 */
import { show } from '../_reply.js';
import { StartTlsErrorCodes } from '../errors.js';
import type { Dialogue, StartTlsProtocol } from '../protocol.js';

/** NNTP, port 119. */
export const protocol: StartTlsProtocol = { name: 'nntp', defaultPort: 119, client };

async function client(d: Dialogue): Promise<void> {
  const greeting = await d.readLine();
  if (!/^20[01]\b/.test(greeting)) {
    d.fail(StartTlsErrorCodes.GREETING, `the server refused the session: ${show(greeting)}`, {
      reply: greeting,
      temporary: greeting.startsWith('400'),
    });
  }
  d.greeted([greeting]);
  d.writeLine('CAPABILITIES');
  const caps = await d.readLine();
  if (/^101\b/.test(caps)) {
    let offered = false;
    for (let n = 0; ; n++) {
      const line = await d.readLine();
      if (line === '.') break;
      if (n >= 200) d.fail(StartTlsErrorCodes.PROTOCOL, 'CAPABILITIES list longer than 200 lines');
      if (line.trim().split(/\s+/)[0]?.toUpperCase() === 'STARTTLS') offered = true;
    }
    if (!offered)
      d.fail(StartTlsErrorCodes.NOT_OFFERED, 'the server does not offer STARTTLS (not in CAPABILITIES)');
  } else if (!/^[45]\d\d\b/.test(caps)) {
    d.fail(StartTlsErrorCodes.PROTOCOL, `unexpected reply to CAPABILITIES: ${show(caps)}`, { reply: caps });
  }
  d.writeLine('STARTTLS');
  const go = await d.readLine();
  // RFC 4642 section 2.2.2: 382 continue, 502 not possible, 580 can not initiate.
  if (!/^382\b/.test(go)) {
    d.fail(StartTlsErrorCodes.REFUSED, `STARTTLS refused: ${show(go)}`, {
      reply: go,
      temporary: go.startsWith('4'),
    });
  }
}

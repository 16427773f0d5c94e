/**
 * IRC STARTTLS: the IRCv3 `tls` extension (ircv3.net/specs/deprecated/tls, numerics 670
 * RPL_STARTTLS and 691 ERR_STARTTLS), as openssl s_client speaks it: STARTTLS before
 * registration, lines read until 670; 421 (unknown command) or 451 (not registered) naming
 * STARTTLS mean it is not offered, 691 that it failed. A PING before that is answered (RFC 2812
 * section 3.7.2), notices are skipped.
 */
import { show } from '../_reply.js';
import { StartTlsErrorCodes } from '../errors.js';
import type { Dialogue, StartTlsProtocol } from '../protocol.js';

/** IRC, port 6667. */
export const protocol: StartTlsProtocol = { name: 'irc', defaultPort: 6667, client };

async function client(d: Dialogue): Promise<void> {
  d.writeLine('STARTTLS');
  for (let n = 0; n < 100; n++) {
    const line = await d.readLine();
    const ping = /^(?::\S+ )?PING (.*)$/i.exec(line);
    if (ping) {
      d.writeLine(`PONG ${ping[1]}`);
      continue;
    }
    if (/^(?::\S+ )?ERROR\b/i.test(line)) {
      d.fail(StartTlsErrorCodes.GREETING, `the server closed the link: ${show(line)}`, { reply: line });
    }
    const numeric = /^(?::\S+ )?(\d{3}) /.exec(line)?.[1];
    if (numeric === '670') return;
    if ((numeric === '421' || numeric === '451') && /STARTTLS/i.test(line)) {
      d.fail(StartTlsErrorCodes.NOT_OFFERED, `the server does not know STARTTLS: ${show(line)}`, {
        reply: line,
      });
    }
    if (numeric === '691')
      d.fail(StartTlsErrorCodes.REFUSED, `STARTTLS failed: ${show(line)}`, { reply: line });
  }
  d.fail(StartTlsErrorCodes.NOT_OFFERED, 'no answer to STARTTLS within 100 lines');
}

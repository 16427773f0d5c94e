/**
 * ManageSieve STARTTLS: RFC 5804 sections 1.7 (capabilities, case-insensitive), 1.8 (greeting)
 * and 2.2 (STARTTLS). The greeting is a capability list of quoted lines ended by OK; STARTTLS is
 * answered with OK. After TLS the server sends its capabilities again (section 2.2), which the
 * client reads here so that the caller starts with a clean stream.
 */
import { show } from '../_reply.js';
import { StartTlsErrorCodes } from '../errors.js';
import type { Dialogue, StartTlsProtocol } from '../protocol.js';

/** ManageSieve, port 4190. */
export const protocol: StartTlsProtocol = {
  name: 'sieve',
  defaultPort: 4190,
  client,
  afterTls: async (d) => {
    const end = await readCapabilities(d);
    if (!/^OK\b/i.test(end.last))
      d.fail(StartTlsErrorCodes.PROTOCOL, `capabilities after TLS: ${show(end.last)}`);
  },
};

async function readCapabilities(d: Dialogue): Promise<{ caps: string[]; last: string }> {
  const caps: string[] = [];
  for (;;) {
    const line = await d.readLine();
    if (!line.startsWith('"')) return { caps, last: line };
    if (caps.length >= 200) d.fail(StartTlsErrorCodes.PROTOCOL, 'capability list longer than 200 lines');
    caps.push(line);
  }
}

async function client(d: Dialogue): Promise<void> {
  const { caps, last } = await readCapabilities(d);
  if (!/^OK\b/i.test(last)) {
    d.fail(StartTlsErrorCodes.GREETING, `the server refused the session: ${show(last)}`, { reply: last });
  }
  if (!caps.some((c) => /^"STARTTLS"/i.test(c))) {
    d.fail(StartTlsErrorCodes.NOT_OFFERED, 'the server does not offer STARTTLS (not in its capabilities)');
  }
  d.writeLine('STARTTLS');
  const go = await d.readLine();
  if (!/^OK\b/i.test(go)) d.fail(StartTlsErrorCodes.REFUSED, `STARTTLS refused: ${show(go)}`, { reply: go });
}

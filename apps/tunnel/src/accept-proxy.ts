// `acceptProxy = yes` (beyond stunnel): a server-mode service behind a load balancer. Every
// connection must begin with a PROXY header (v1 or v2), read by @ucspi/server's engine before TLS;
// the client it names is the client everywhere (log, rules, `exec`'s REMOTE_HOST, an outgoing
// PROXY header). A connection without a valid header is logged here and closed, nothing else done.
import type { ServerEvent } from '@ucspi/server';
import { addr, unmapped } from './address.js';
import { LOG, safe } from './log.js';

/**
 * The log lines of a connection dropped for want of a valid PROXY header (the engine's `proxy`
 * event), or undefined for other events: the TCP peer (the balancer, or whoever connected
 * directly) and the parser's reason, then the reset counts as for any refused connection.
 */
export function badProxyLines(e: ServerEvent, service: string): Array<[number, string]> | undefined {
  if (e.type !== 'proxy') return undefined;
  const from = addr(unmapped(e.peerIp), e.peerPort);
  return [
    [LOG.warning, `Service [${service}]: bad PROXY header from ${from}: ${safe(e.error.message)}`],
    [LOG.notice, 'Connection reset: 0 byte(s) sent to TLS, 0 byte(s) sent to socket'],
  ];
}

// The PROXY protocol's version 1 header (HAProxy's "The PROXY protocol", section 2.1): one line of
// text a proxy sends its backend before any byte of the client's, naming the client's address and
// the address it connected to: `PROXY TCP4 SRC DST SPORT DPORT\r\n` (TCP6 for IPv6). stunnel sends
// it in server mode with `protocol = proxy`. Pure and independent of the tunnel, with the shape of
// @ucspi/server's proxyV2Header (source and destination as `{ ip, port }`), so that it can move
// next to it as it is once that PROXY module is published.
import { isIPv4, isIPv6 } from 'node:net';

/** One end of a TCP connection as the proxy saw it. */
export interface ProxyEndpoint {
  ip: string;
  port: number;
}

/** The longest v1 header the specification allows, CRLF included. */
export const PROXY_V1_MAX_LENGTH = 107;

/**
 * The version 1 header for a connection from `source` (the client: getpeername of the accepted
 * socket) to `destination` (the address it connected to: getsockname), CRLF included. An IPv4 client of a dual-stack listener
 * (`::ffff:1.2.3.4` on both ends) is written as TCP4 with plain IPv4 addresses, as a listener
 * bound to IPv4 alone would see it. An IPv6 zone (`%eth0`) is dropped: the header has no room for
 * it. Throws a RangeError for an address that is not an IP address, ends of different families,
 * or a port outside 0-65535.
 */
export function proxyV1Header(source: ProxyEndpoint, destination: ProxyEndpoint): string {
  let src = unmapped(source.ip);
  let dst = unmapped(destination.ip);
  let family: 'TCP4' | 'TCP6';
  if (isIPv4(src) && isIPv4(dst)) family = 'TCP4';
  else if (isIPv6(withoutZone(source.ip)) && isIPv6(withoutZone(destination.ip))) {
    // Both IPv6 (a mapped address facing a real IPv6 one keeps its IPv6 form).
    family = 'TCP6';
    src = withoutZone(source.ip);
    dst = withoutZone(destination.ip);
  } else {
    throw new RangeError(
      `PROXY header: ${JSON.stringify(source.ip)} and ${JSON.stringify(destination.ip)} are not two IPv4 or two IPv6 addresses`,
    );
  }
  return `PROXY ${family} ${src} ${dst} ${port(source.port)} ${port(destination.port)}\r\n`;
}

function port(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new RangeError(`PROXY header: bad port ${n}`);
  return n;
}

function withoutZone(ip: string): string {
  const percent = ip.indexOf('%');
  return percent < 0 ? ip : ip.slice(0, percent);
}

function unmapped(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m?.[1] !== undefined && isIPv4(m[1]) ? m[1] : ip;
}

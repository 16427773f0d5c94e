// Listening: the bind address from a host operand, the port from a number or a service name, the
// socket itself (pausable, so that -c leaves clients in the kernel's backlog).
import { isIP, type Socket } from 'node:net';
import type { DnsClient } from '@ucspi/dns';
import { servicePort } from '@ucspi/dns';
import { listenPausable, type PausableListener } from '@ucspi/exec';
import { errorStr } from '@ucspi/rules';
import { ServerError, ServerErrorCodes } from './errors.js';

/** How a host operand is turned into an address to bind. */
export interface BindAddressOptions {
  /** -4 / -6: which of a name's addresses; undefined: the first one. */
  family?: 4 | 6;
  /** ucspi-tcp's tcpserver: IPv4 only (dns_ip4_qualify), whatever `family` says. */
  ipv4Only?: boolean;
  /** -I: the interface of an IPv6 link-local address (bound with that scope). */
  netInterface?: string;
  /**
   * The separator before the name in the originals' messages: tcpserver `for NAME`, sslserver
   * `for: NAME`. Default `' '`.
   */
  forSeparator?: string;
}

/** The address to bind, and whether it is IPv6 link-local (TCP6INTERFACE applies then). */
export interface BindAddress {
  host: string;
  linkLocal: boolean;
}

/**
 * The address to bind for a host operand: `0` every IPv4 address and `:0` every IPv6 one, as the
 * originals; an IP literal as is; a name through @ucspi/dns (djbdns qualification, $DNSCACHEIP),
 * its first address of the wanted family. With -I an IPv6 link-local address gets that scope.
 *
 * @throws {ServerError} UCSPI_ERR_SERVER_ADDRESS with the originals' words:
 *   `temporarily unable to figure out IP address for NAME: REASON` or `no IP address for NAME`.
 */
export async function resolveBindAddress(
  operand: string,
  dns: DnsClient,
  options: BindAddressOptions = {},
): Promise<BindAddress> {
  let host: string;
  if (operand === '0' || operand === '') host = '0.0.0.0';
  else if (operand === ':0') host = '::';
  else if (isIP(operand.replace(/%.*$/, ''))) host = operand;
  else host = await lookupHost(operand, dns, options);
  const linkLocal = isIP(host.replace(/%.*$/, '')) === 6 && /^fe[89ab]/i.test(host);
  if (options.netInterface && linkLocal && !host.includes('%')) host = `${host}%${options.netInterface}`;
  return { host, linkLocal };
}

async function lookupHost(name: string, dns: DnsClient, options: BindAddressOptions): Promise<string> {
  const sep = options.forSeparator ?? ' ';
  const wanted = options.ipv4Only ? 4 : options.family;
  let addresses: string[];
  try {
    addresses =
      wanted === 4 ? await dns.ip4(name) : wanted === 6 ? await dns.ip6(name) : await dns.addresses(name);
  } catch (err) {
    if ((err as { code?: string }).code !== 'UCSPI_ERR_DNS_NOTFOUND')
      throw new ServerError(
        ServerErrorCodes.ADDRESS,
        `temporarily unable to figure out IP address for${sep}${name}: ${(err as Error).message}`,
        true,
        err,
      );
    addresses = [];
  }
  const first = addresses[0];
  if (first === undefined)
    throw new ServerError(ServerErrorCodes.ADDRESS, `no IP address for${sep}${name}`, true);
  return first;
}

/**
 * The port for a port operand: a number, or a service name from /etc/services.
 *
 * @throws {ServerError} UCSPI_ERR_SERVER_PORT: `unable to figure out port number for NAME`.
 */
export async function resolvePort(operand: string): Promise<number> {
  const port = await servicePort(operand);
  if (port === undefined)
    throw new ServerError(ServerErrorCodes.PORT, `unable to figure out port number for ${operand}`, true);
  return port;
}

/**
 * Bind and listen, paused: until the engine starts, connections stay in the kernel's backlog, or
 * where accepting cannot be paused (no native addon), in `early`, unread, in arrival order.
 *
 * @throws {ServerError} UCSPI_ERR_SERVER_BIND: `unable to bind: REASON`.
 */
export async function listenPaused(
  host: string,
  port: number,
  backlog: number,
  onConnection: (socket: Socket) => void,
): Promise<PausableListener> {
  // allowHalfOpen: the peer's EOF must only end the program's input; pauseOnConnect: no byte is
  // read before the program (or the TLS layer) owns the socket.
  const listener = await listenPausable(
    { allowHalfOpen: true, pauseOnConnect: true },
    { host, port, backlog },
    onConnection,
  ).catch((err: NodeJS.ErrnoException) => {
    throw new ServerError(ServerErrorCodes.BIND, `unable to bind: ${errorStr(err)}`, true, err);
  });
  listener.pause();
  return listener;
}

// Facts: what is known about a connection before anything is decided (tcp-environ's set).
import type { Socket } from 'node:net';
import type { DnsClient } from '@ucspi/dns';
import { type ConnectionInfo, unmapIPv4 } from '@ucspi/env';
import { identLookup } from '@ucspi/ident';
import type { ProxyHeader } from './proxy/header.js';

/** Which facts to look up, as the originals' options say. */
export interface FactOptions {
  /** -l: the local host name; undefined: looked up (reverse DNS of the local address); false: neither (left unset). */
  localName?: string | false;
  /** -h (true) / -H (false): look up the remote host name. */
  remoteHost: boolean;
  /** -p: keep the remote name only if it resolves back to the address. */
  paranoid: boolean;
  /** -r (true) / -R (false): ask the client's ident server (RFC 1413). */
  remoteInfo: boolean;
  /** -t: how long the ident lookup may take, in ms. */
  infoTimeoutMs: number;
  /** -I with a link-local address: TCP6INTERFACE. */
  netInterface?: string;
}

/** An address as the originals print it: IPv4-mapped IPv6 unmapped, no `%scope` suffix. */
export function plainIp(address: string | undefined): string {
  return unmapIPv4(address ?? '').replace(/%.*$/, '');
}

/**
 * The facts of an accepted connection. `remoteAddress` is the peer's address as read at accept
 * time (a client that resets later leaves none on the socket). Lookups that fail leave their
 * field unset, as the originals do. With a PROXY header that names the client, its source and
 * destination stand for the remote and local endpoints in every fact.
 */
export async function gatherFacts(
  socket: Socket,
  remoteAddress: string,
  localPort: number,
  dns: DnsClient,
  options: FactOptions,
  proxy?: ProxyHeader,
): Promise<ConnectionInfo> {
  const proxied = proxy?.proxied ? proxy : undefined;
  const remoteIp = plainIp(proxied?.source?.ip ?? remoteAddress);
  const localIp = plainIp(proxied?.destination?.ip ?? socket.localAddress);
  const remotePort = proxied?.source?.port ?? socket.remotePort ?? 0;
  if (proxied?.destination) localPort = proxied.destination.port;
  const localHost =
    options.localName === false
      ? undefined
      : (options.localName ?? (await dns.reverse(localIp).catch(() => undefined)));
  const remoteHost = options.remoteHost
    ? await (options.paranoid ? dns.reverseParanoid(remoteIp) : dns.reverse(remoteIp)).catch(() => undefined)
    : undefined;
  // -r: ask the client's ident server within -t, as tcpserver does by default.
  const remoteInfo = options.remoteInfo
    ? await identLookup({ remoteIp, remotePort, localIp, localPort, timeoutMs: options.infoTimeoutMs })
    : undefined;
  return {
    localIp,
    localPort,
    remoteIp,
    remotePort,
    ...(localHost !== undefined ? { localHost } : {}),
    ...(remoteHost !== undefined ? { remoteHost } : {}),
    ...(remoteInfo !== undefined ? { remoteInfo } : {}),
    ...(options.netInterface ? { interface: options.netInterface } : {}),
  };
}

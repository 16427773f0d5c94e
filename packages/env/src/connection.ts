import { isIPv4, isIPv6 } from 'node:net';

/**
 * What is known about one connection. Host names and remote info are `undefined` when they were
 * not looked up or not found (the variable is then removed from the child's environment, as the
 * originals do with -H and -R), and `''` when known to be empty.
 */
export interface ConnectionInfo {
  localIp: string;
  localPort: number;
  localHost?: string;
  remoteIp: string;
  remotePort: number;
  remoteHost?: string;
  remoteInfo?: string;
  /** The interface name of an IPv6 link-local connection (TCP6INTERFACE). */
  interface?: string;
}

/** A change to an environment: a string sets a variable, `undefined` removes it. */
export type EnvDelta = Record<string, string | undefined>;

/** `::ffff:1.2.3.4` as a socket reports an IPv4 client on a dual-stack listener, becomes `1.2.3.4`. */
export function unmapIPv4(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m?.[1] !== undefined && isIPv4(m[1]) ? m[1] : ip;
}

/** Whether the connection is IPv6 once IPv4-mapped addresses are unmapped. */
export function isIPv6Connection(c: ConnectionInfo): boolean {
  return isIPv6(unmapIPv4(c.remoteIp)) || isIPv6(unmapIPv4(c.localIp));
}

function side(prefix: string, c: ConnectionInfo): EnvDelta {
  return {
    [`${prefix}LOCALIP`]: unmapIPv4(c.localIp),
    [`${prefix}LOCALPORT`]: String(c.localPort),
    [`${prefix}LOCALHOST`]: c.localHost,
    [`${prefix}REMOTEIP`]: unmapIPv4(c.remoteIp),
    [`${prefix}REMOTEPORT`]: String(c.remotePort),
    [`${prefix}REMOTEHOST`]: c.remoteHost,
    [`${prefix}REMOTEINFO`]: c.remoteInfo,
  };
}

/**
 * The tcp-environ(5) variables that tcpserver (and sslserver -e) sets: PROTO=TCP and the TCP* set.
 * For an IPv6 connection PROTO is TCP6 and the TCP6* set (with TCP6INTERFACE when known) is set
 * too, beside the TCP* set, so programs written for either convention find their variables.
 * IPv4-mapped IPv6 addresses are reported as plain IPv4, as for a native IPv4 connection.
 */
export function tcpEnv(c: ConnectionInfo): EnvDelta {
  if (!isIPv6Connection(c)) return { PROTO: 'TCP', ...side('TCP', c) };
  return { PROTO: 'TCP6', ...side('TCP', c), ...side('TCP6', c), TCP6INTERFACE: c.interface };
}

/**
 * The variables sslserver always sets: PROTO=SSL and the SSL* set (SSLLOCALIP, SSLLOCALPORT,
 * SSLLOCALHOST, SSLREMOTEIP, SSLREMOTEPORT, SSLREMOTEHOST, SSLREMOTEINFO). PROTO is `SSL` as in
 * the man page and ucspi-ssl 0.95b (0.13's source says `TLS`).
 */
export function sslEnv(c: ConnectionInfo): EnvDelta {
  return { PROTO: 'SSL', ...side('SSL', c) };
}

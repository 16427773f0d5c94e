// The program's environment: tcp-environ(5) as ucspi-tcp's tcpclient sets it (PROTO, TCPLOCALIP,
// TCPLOCALPORT, TCPLOCALHOST, TCPREMOTEIP, TCPREMOTEPORT, TCPREMOTEHOST, TCPREMOTEINFO), PROTO=UNIX
// for a UNIX socket (indimail), and TLS_PROVIDER with -z.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type ConnectionInfo, type EnvDelta, tcpEnv, unmapIPv4 } from '@ucspi/env';
import type { ClientOptions } from './options.js';

/** The connection's addresses as the originals print them (IPv4-mapped unmapped, no scope). */
export function connectionInfo(socket: Socket): ConnectionInfo {
  const plain = (ip: string | undefined) => unmapIPv4(ip ?? '').replace(/%.*$/, '');
  return {
    localIp: plain(socket.localAddress),
    localPort: socket.localPort ?? 0,
    remoteIp: plain(socket.remoteAddress),
    remotePort: socket.remotePort ?? 0,
  };
}

/**
 * The tcp-environ variables of a TCP connection, with the lookups ucspi-tcp makes: the local
 * name (unless -l), the remote name (-h, default) and the remote ident answer (-r, default),
 * concurrently. A name or answer that is not found leaves its variable unset.
 */
export async function tcpEnvironment(
  o: ClientOptions,
  info: ConnectionInfo,
  env: Record<string, string | undefined>,
): Promise<EnvDelta> {
  const needDns = o.localName === undefined || o.remoteHost;
  const dns = needDns ? (await import('@ucspi/dns')).createDnsClient(env) : undefined;
  const [localHost, remoteHost, remoteInfo] = await Promise.all([
    o.localName ?? dns?.reverse(info.localIp).catch(() => undefined),
    o.remoteHost ? dns?.reverse(info.remoteIp).catch(() => undefined) : undefined,
    o.remoteInfo
      ? import('@ucspi/ident').then(({ identLookup }) =>
          identLookup({
            remoteIp: info.remoteIp,
            remotePort: info.remotePort,
            localIp: info.localIp,
            localPort: info.localPort,
            timeoutMs: o.infoTimeoutMs,
          }),
        )
      : undefined,
  ]);
  return tcpEnv({
    ...info,
    ...(localHost !== undefined ? { localHost } : {}),
    ...(remoteHost !== undefined ? { remoteHost } : {}),
    ...(remoteInfo !== undefined ? { remoteInfo } : {}),
  });
}

/** The UNIX socket's environment (indimail): PROTO=UNIX and nothing of TCP. */
export function unixEnvironment(): EnvDelta {
  return { PROTO: 'UNIX' };
}

/**
 * indimail's TLS_PROVIDER (-z): `tcpclient, TLS Server=VERSION, Client=VERSION, Ciphers=NAME`.
 * Both versions are the negotiated one (indimail's `Server` is the method's version before the
 * handshake).
 */
export function tlsProvider(tls: TLSSocket): string {
  const version = tls.getProtocol() ?? 'unknown';
  return `tcpclient, TLS Server=${version}, Client=${version}, Ciphers=${tls.getCipher()?.name ?? 'unknown'}`;
}

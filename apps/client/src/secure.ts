// TLS on the connection: optionally the STARTTLS dialogue first (@ucspi/starttls, loaded only
// for -s), then the handshake and the decision about the server's certificate (@ucspi/tls's
// connectTls), with -E's program as the final judge when given.
import { isIP, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type ClientTls, connectTls } from '@ucspi/tls';
import { FatalError } from './errors.js';
import type { Log } from './log.js';
import type { ClientOptions } from './options.js';

/** Start TLS on `socket`; resolves with the accepted TLS socket or throws a FatalError (111). */
export async function secure(
  o: ClientOptions,
  socket: Socket,
  clientTls: ClientTls,
  env: Record<string, string | undefined>,
  log: Log,
): Promise<TLSSocket> {
  const timeoutMs = o.connectTimeoutMs[0] + o.connectTimeoutMs[1];
  const sni = sniName(o);
  const evaluate = o.evalProg
    ? (await import('./hook.js')).programPolicy(o.evalProg, env, (outcome) =>
        log.info(
          `certificate ${outcome.accepted ? 'accepted' : 'rejected'} by ${o.evalProg} (${outcome.detail})`,
        ),
      )
    : undefined;
  const handshake = (s: Socket) =>
    connectTls(s, clientTls, {
      timeoutMs,
      ...(sni ? { servername: sni } : {}),
      ...(o.matchHost ? { host: o.matchHost } : {}),
      ...(evaluate ? { evaluate } : {}),
    });
  try {
    if (!o.starttls) return await handshake(socket);
    const { startTlsClient } = await import('@ucspi/starttls');
    return await startTlsClient(socket, o.starttls, handshake, {
      timeoutMs,
      ...(sni ? { host: sni } : {}),
    });
  } catch (err) {
    const e = err as { code?: string; message?: string; temporary?: boolean };
    socket.destroy();
    if (e.code?.startsWith('UCSPI_ERR_STARTTLS_'))
      throw new FatalError(
        `STARTTLS (${o.starttls}) failed: ${e.message}`,
        e.temporary === false ? 100 : 111,
      );
    // TLS failures, a refused certificate included, are temporary as in indimail's tcpclient.
    throw new FatalError(e.message ?? String(err), 111);
  }
}

/** SNI: -m's name, else the host operand when it is a name (never an address or a socket path). */
export function sniName(o: ClientOptions): string | undefined {
  if (o.matchHost) return o.matchHost;
  return o.host.startsWith('/') || isIP(o.host.replace(/^\[(.*)\]$/, '$1')) ? undefined : o.host;
}

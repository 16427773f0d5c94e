// Client mode: plain in from the client; TLS out to the backend (directly, or after the dialogue
// of `protocol = connect | smtp | pop3 | imap | nntp`), its certificate's names checked.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { connectTls } from '@ucspi/tls';
import { abort } from './abort.js';
import { connectBackend } from './backend.js';
import { ClientProtocolFailure, clientProtocol } from './client-protocol.js';
import { LOG, safe, type TunnelLog } from './log.js';
import { type ClosedLog, logNegotiated, type RelayTimeouts, relay } from './relay.js';
import type { RuntimeService } from './serve.js';

/** Serve one client-mode connection until both ends are done; never rejects. */
export async function serveClient(
  socket: Socket,
  service: RuntimeService,
  id: number,
  log: TunnelLog,
  timeouts: RelayTimeouts,
  closed: ClosedLog,
): Promise<void> {
  const s = service.config;
  const backend = await connectBackend(service, id, log);
  if (!backend) {
    abort(socket, s.reset);
    closed('reset', 0, 0);
    return;
  }
  const side = service.clientTls!;
  let tls: TLSSocket;
  try {
    // Through an HTTP proxy (protocol = connect) the TLS peer is protocolHost, not the proxy.
    const target = s.protocol === 'connect' ? s.protocolHost : s.connect[0];
    const host = target !== undefined ? hostOf(target) : undefined;
    const sni = s.sni ?? host;
    const handshake = (raw: Socket) =>
      connectTls(raw, side.tls, {
        timeoutMs: s.timeoutBusy * 1000,
        ...(sni !== undefined ? { servername: sni } : {}),
      });
    // protocol = connect, smtp, pop3, imap, nntp: the dialogue first (client-protocol.ts).
    tls =
      s.protocol !== undefined
        ? await clientProtocol(backend, socket, s, handshake, side.checkNames)
        : await handshake(backend);
  } catch (err) {
    if (err instanceof ClientProtocolFailure) {
      log.write(LOG.err, id, safe(err.logLine));
      // IMAP's client was told with a BYE and is closed cleanly, as stunnel does.
      if (err.told) socket.end();
      else abort(socket, s.reset);
      closed(err.told ? 'closed' : 'reset', 0, 0);
      return;
    }
    log.write(LOG.err, id, `SSL_connect: ${safe((err as Error).message)}`);
    abort(socket, s.reset);
    closed('reset', 0, 0);
    return;
  }
  const mismatch = side.checkNames(tls);
  if (mismatch) {
    log.write(LOG.warning, id, `Rejected by CERT at depth=0: ${mismatch}`);
    tls.destroy();
    abort(socket, s.reset);
    closed('reset', 0, 0);
    return;
  }
  logNegotiated(log, id, tls, 'connected');
  await relay(log, id, tls, socket, timeouts, closed, s.reset ? [socket, backend] : []);
}

/** The host of a `HOST:PORT` target, brackets of an IPv6 address removed. */
function hostOf(line: string): string | undefined {
  const colon = line.lastIndexOf(':');
  return colon < 0 ? undefined : line.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
}

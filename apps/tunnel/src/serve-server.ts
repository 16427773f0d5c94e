// Server mode: TLS in from the client; out to a backend or to an `exec` program. Plain TLS (the
// service the client's SNI chose, an optional PROXY header first), or a STARTTLS dialogue first.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ConnectionInfo } from '@ucspi/env';
import { startTlsServer } from '@ucspi/starttls';
import { acceptTls } from '@ucspi/tls';
import { abort } from './abort.js';
import { connectBackend } from './backend.js';
import { runProgram } from './exec-program.js';
import { readGreeting } from './greeting.js';
import { LOG, safe } from './log.js';
import { proxyHeaderFor } from './proxy-send.js';
import { watchForRedirect } from './redirect.js';
import { type ClosedLog, logNegotiated, type RelayTimeouts, relay } from './relay.js';
import type { RuntimeService, ServeContext } from './serve.js';
import { routeBySni } from './sni.js';

/**
 * Server mode without a STARTTLS protocol: the TLS handshake (the client's SNI may choose a
 * secondary service), then the `exec` program or the backend, relayed until both ends are done.
 */
export async function serveTls(
  socket: Socket,
  info: ConnectionInfo,
  service: RuntimeService,
  id: number,
  ctx: ServeContext,
  closed: ClosedLog,
): Promise<void> {
  const { log } = ctx;
  const s = service.config;
  const say = (level: number, text: string) => log.write(level, id, text);
  const route = routeBySni(service, say);
  // redirect: a client the chosen service refuses goes to its redirect targets (redirect.ts).
  const watch = watchForRedirect(route.serverTls, route.chosen, say);
  const shaken = await acceptTls(socket, watch.serverTls, { timeoutMs: s.timeoutBusy * 1000 });
  if (!shaken.ok) {
    if (shaken.stage === 'handshake')
      log.write(LOG.err, id, `SSL_accept: ${safe(shaken.reason ?? 'handshake failed')}`);
    else log.write(LOG.warning, id, `Rejected by CERT: ${shaken.reason ?? 'refused'}`);
    closed('reset', 0, 0);
    return;
  }
  const tls = shaken.tlsSocket;
  // From here on the service the client's server name chose (an SNI secondary, or this one).
  const chosen = route.chosen();
  const c = chosen.config;
  const timeouts = {
    idleTimeoutMs: c.timeoutIdle * 1000,
    closeTimeoutMs: c.timeoutClose * 1000,
    ...(ctx.traffic ? { traffic: ctx.traffic } : {}),
  };
  logNegotiated(log, id, tls);
  // protocol = proxy | proxy-v2: the PROXY header before the client's bytes (proxy-send.ts);
  // acceptProxy belongs to the listener's service, whose engine read the incoming header.
  const verifies = c.verify.verifyChain || c.verify.verifyPeer;
  const header = proxyHeaderFor(c.protocol, s.acceptProxy, verifies, socket, info, tls, id, log);
  if (header === null) {
    abort(socket, c.reset);
    tls.destroy();
    closed('reset', 0, 0);
    return;
  }
  // As stunnel, a redirected client of an `exec` service goes to the redirect targets too.
  const redirected = watch.redirects(chosen, tls);
  if (c.exec !== undefined && !redirected) {
    await runProgram(tls, info, chosen, id, ctx, timeouts, closed, header);
    return;
  }
  const backend = await connectBackend(chosen, id, log, redirected);
  if (!backend) {
    abort(socket, c.reset);
    tls.destroy();
    closed('reset', 0, 0);
    return;
  }
  if (header !== undefined) backend.write(header);
  await relay(log, id, tls, backend, timeouts, closed, c.reset ? [socket, backend] : []);
}

/**
 * Server mode with `protocol = smtp | pop3 | imap`, as stunnel: the backend first, its greeting
 * passed to the client, the client's STARTTLS dialogue answered by @ucspi/starttls, then TLS, and
 * the client's commands (EHLO again, CAPABILITY, ...) relayed to the backend inside TLS.
 */
export async function serveStartTls(
  socket: Socket,
  service: RuntimeService,
  id: number,
  ctx: ServeContext,
  timeouts: RelayTimeouts,
  closed: ClosedLog,
): Promise<void> {
  const { log } = ctx;
  const s = service.config;
  const protocol = s.protocol!;
  const backend = await connectBackend(service, id, log);
  if (!backend) {
    abort(socket, s.reset);
    closed('reset', 0, 0);
    return;
  }
  let tls: TLSSocket;
  try {
    const greeting = await readGreeting(backend, protocol, s.timeoutBusy * 1000);
    tls = await startTlsServer(
      socket,
      protocol,
      async (raw) => {
        const r = await acceptTls(raw, service.serverTls!, { timeoutMs: s.timeoutBusy * 1000 });
        if (!r.ok)
          throw new Error(
            r.stage === 'handshake'
              ? `SSL_accept: ${r.reason ?? 'handshake failed'}`
              : `Rejected by CERT: ${r.reason}`,
          );
        return r.tlsSocket;
      },
      { greeting, timeoutMs: s.timeoutBusy * 1000 },
    );
  } catch (err) {
    log.write(LOG.err, id, `Protocol ${protocol}: ${safe((err as Error).message)}`);
    abort(socket, s.reset);
    abort(backend, s.reset);
    closed('reset', 0, 0);
    return;
  }
  logNegotiated(log, id, tls);
  await relay(log, id, tls, backend, timeouts, closed, s.reset ? [socket, backend] : []);
}

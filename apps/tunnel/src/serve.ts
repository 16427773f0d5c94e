// One connection of a service, from accept to `Connection closed`: server mode (TLS in; a backend
// or a program out) and client mode (plain in; TLS to the backend out), logged in stunnel's words.
// Over 300 lines on purpose: the modes share their failure and logging steps, which would otherwise
// be passed between files as half a dozen callbacks.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { type ConnectionInfo, childEnvList, type EnvBase, modSslEnv, sslEnv, tcpEnv } from '@ucspi/env';
import { relayStreams, spawnPumped } from '@ucspi/exec';
import { startTlsServer } from '@ucspi/starttls';
import { acceptTls, connectTls, type ServerTls } from '@ucspi/tls';
import { ClientProtocolFailure, clientProtocol } from './client-protocol.js';
import type { ServiceConfig } from './config/types.js';
import { readGreeting } from './greeting.js';
import { LOG, safe, type TunnelLog } from './log.js';
import { proxyV1Header } from './proxy-header.js';
import { routeBySni, type SniSecondary } from './sni.js';
import { connectFirst, errnoText, type Targets } from './targets.js';
import type { ClientSide } from './tls-setup.js';

/** A service ready to serve: its configuration, its TLS side, its targets. */
export interface RuntimeService {
  config: ServiceConfig;
  serverTls?: ServerTls;
  clientTls?: ClientSide;
  targets?: Targets;
  /** A primary's SNI secondaries (`sni = PRIMARY:PATTERN` sections), linked by sni.ts. */
  sniSecondaries?: SniSecondary[];
}

/** What every connection shares. */
export interface ServeContext {
  log: TunnelLog;
  envBase: EnvBase;
  /** One connection's rule variables (set per connection, for `exec`). */
  rulesEnv?: ReadonlyArray<readonly [string, string]>;
}

/** `IP:PORT` as stunnel writes it (`[IP]:PORT` for IPv6). */
export const addr = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
/** An IPv4 client of a dual-stack listener, written as IPv4. */
export const unmapped = (ip: string) => ip.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');

/**
 * Serve one accepted connection `socket` for `service`; `id` numbers it in the log. Resolves when
 * it is over; never rejects.
 */
export async function serveConnection(
  socket: Socket,
  info: ConnectionInfo,
  service: RuntimeService,
  id: number,
  ctx: ServeContext,
  /** The variables of the client's rule (`rules = FILE.cdb`), for an `exec` program. */
  rulesEnv: ReadonlyArray<readonly [string, string]> = [],
): Promise<void> {
  const { log } = ctx;
  const s = service.config;
  log.write(
    LOG.notice,
    id,
    `Service [${s.name}] accepted connection from ${addr(unmapped(info.remoteIp), info.remotePort)}`,
  );
  const closed = (how: 'closed' | 'reset', toTls: number, toSocket: number) =>
    log.write(
      LOG.notice,
      id,
      `Connection ${how}: ${toTls} byte(s) sent to TLS, ${toSocket} byte(s) sent to socket`,
    );
  const timeouts = { idleTimeoutMs: s.timeoutIdle * 1000, closeTimeoutMs: s.timeoutClose * 1000 };

  if (!s.client && s.protocol !== undefined && s.protocol !== 'proxy') {
    await serveStartTls(socket, service, id, ctx, timeouts, closed);
    return;
  }
  if (!s.client) {
    const route = routeBySni(service, (level, text) => log.write(level, id, text));
    const shaken = await acceptTls(socket, route.serverTls, { timeoutMs: s.timeoutBusy * 1000 });
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
    const chosenTimeouts = { idleTimeoutMs: c.timeoutIdle * 1000, closeTimeoutMs: c.timeoutClose * 1000 };
    logNegotiated(log, id, tls);
    // protocol = proxy: the PROXY v1 header before the client's bytes (proxy-header.ts).
    const header = c.protocol === 'proxy' ? proxyHeaderOf(socket, id, log) : undefined;
    if (header === null) {
      tls.destroy();
      closed('reset', 0, 0);
      return;
    }
    if (c.exec !== undefined) {
      await runProgram(tls, info, chosen, id, { ...ctx, rulesEnv }, chosenTimeouts, closed, header);
      return;
    }
    const backend = await connectBackend(chosen, id, log);
    if (!backend) {
      tls.destroy();
      closed('reset', 0, 0);
      return;
    }
    if (header !== undefined) backend.write(header);
    await relay(log, id, tls, backend, chosenTimeouts, closed);
    return;
  }

  // Client mode: the backend speaks TLS.
  const backend = await connectBackend(service, id, log);
  if (!backend) {
    socket.destroy();
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
        ? await clientProtocol(backend, socket, s, handshake)
        : await handshake(backend);
  } catch (err) {
    if (err instanceof ClientProtocolFailure) {
      log.write(LOG.err, id, safe(err.logLine));
      // IMAP's client was told with a BYE and is closed cleanly, as stunnel does.
      if (err.told) socket.end();
      else socket.destroy();
      closed(err.told ? 'closed' : 'reset', 0, 0);
      return;
    }
    log.write(LOG.err, id, `SSL_connect: ${safe((err as Error).message)}`);
    socket.destroy();
    closed('reset', 0, 0);
    return;
  }
  const mismatch = side.checkNames(tls);
  if (mismatch) {
    log.write(LOG.warning, id, `Rejected by CERT at depth=0: ${mismatch}`);
    tls.destroy();
    socket.destroy();
    closed('reset', 0, 0);
    return;
  }
  logNegotiated(log, id, tls);
  await relay(log, id, tls, socket, timeouts, closed);
}

/**
 * Server mode with `protocol = smtp | pop3 | imap`, as stunnel: the backend first, its greeting
 * passed to the client, the client's STARTTLS dialogue answered by @ucspi/starttls, then TLS, and
 * the client's commands (EHLO again, CAPABILITY, ...) relayed to the backend inside TLS.
 */
async function serveStartTls(
  socket: Socket,
  service: RuntimeService,
  id: number,
  ctx: ServeContext,
  timeouts: { idleTimeoutMs: number; closeTimeoutMs: number },
  closed: (how: 'closed' | 'reset', toTls: number, toSocket: number) => void,
): Promise<void> {
  const { log } = ctx;
  const s = service.config;
  const protocol = s.protocol!;
  const backend = await connectBackend(service, id, log);
  if (!backend) {
    socket.destroy();
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
    socket.destroy();
    backend.destroy();
    closed('reset', 0, 0);
    return;
  }
  logNegotiated(log, id, tls);
  await relay(log, id, tls, backend, timeouts, closed);
}

/**
 * The PROXY v1 header of the accepted `socket` (stunnel reads both ends from the socket itself),
 * or null, logged, when its addresses are not there (a descriptor that is not a TCP socket).
 */
function proxyHeaderOf(socket: Socket, id: number, log: TunnelLog): string | null {
  try {
    return proxyV1Header(
      { ip: socket.remoteAddress ?? '', port: socket.remotePort ?? -1 },
      { ip: socket.localAddress ?? '', port: socket.localPort ?? -1 },
    );
  } catch (err) {
    log.write(LOG.err, id, `getpeername: ${safe((err as Error).message)}`);
    return null;
  }
}

function hostOf(line: string): string | undefined {
  const colon = line.lastIndexOf(':');
  return colon < 0 ? undefined : line.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
}

function logNegotiated(log: TunnelLog, id: number, tls: TLSSocket): void {
  if (!log.enabled(LOG.info)) return;
  log.write(
    LOG.info,
    id,
    `TLS ${tls.isSessionReused() ? 'accepted: previous session reused' : 'accepted: new session negotiated'}`,
  );
  const c = tls.getCipher();
  log.write(LOG.info, id, `${tls.getProtocol()} ciphersuite: ${c.standardName ?? c.name}`);
}

/**
 * Relay between the TLS side and the plain side until both have ended (or a timer fired), then log
 * how it ended and the `Connection closed` counts (bytes sent to TLS, bytes sent to the socket).
 */
async function relay(
  log: TunnelLog,
  id: number,
  tls: TLSSocket,
  plain: Socket,
  timeouts: { idleTimeoutMs: number; closeTimeoutMs: number },
  closed: (how: 'closed' | 'reset', toTls: number, toSocket: number) => void,
): Promise<void> {
  const r = await relayStreams(tls, plain, timeouts);
  report(log, id, r.reason, r.error);
  closed(r.reason === 'end' ? 'closed' : 'reset', r.bToA, r.aToB);
}

function report(log: TunnelLog, id: number, reason: string, error: Error | undefined): void {
  if (reason === 'idle') log.write(LOG.info, id, 's_poll_wait: TIMEOUTidle exceeded: sending reset');
  else if (reason === 'close-timeout') log.write(LOG.info, id, 's_poll_wait: TIMEOUTclose exceeded: closing');
  else if (reason === 'error' && error) log.write(LOG.err, id, `transfer: ${safe(errnoText(error))}`);
}

async function connectBackend(
  service: RuntimeService,
  id: number,
  log: TunnelLog,
): Promise<Socket | undefined> {
  const s = service.config;
  let order: Awaited<ReturnType<Targets['order']>>;
  try {
    order = await service.targets!.order();
  } catch (err) {
    log.write(LOG.err, id, `Error resolving "${s.connect.join(', ')}": ${safe((err as Error).message)}`);
    return undefined;
  }
  const socket = await connectFirst(order, s.timeoutConnect * 1000, s.local, (t, outcome) => {
    const where = addr(t.host, t.port);
    if (outcome === 'connected') log.write(LOG.notice, id, `s_connect: connected ${where}`);
    else if (outcome === 'timeout')
      log.write(LOG.err, id, `s_connect: s_poll_wait ${where}: TIMEOUTconnect exceeded`);
    else log.write(LOG.err, id, `s_connect: connect ${where}: ${errnoText(outcome)}`);
  });
  if (!socket) {
    log.write(LOG.err, id, 'No more addresses to connect');
    return undefined;
  }
  log.write(
    LOG.notice,
    id,
    `Service [${s.name}] connected remote server from ${addr(unmapped(socket.localAddress ?? ''), socket.localPort ?? 0)}`,
  );
  return socket;
}

/** `exec`: the program reads and writes the connection through @ucspi/exec's pump. */
async function runProgram(
  tls: TLSSocket,
  info: ConnectionInfo,
  service: RuntimeService,
  id: number,
  ctx: ServeContext,
  timeouts: { idleTimeoutMs: number; closeTimeoutMs: number },
  closed: (how: 'closed' | 'reset', toTls: number, toSocket: number) => void,
  /** protocol = proxy: the header the program reads first (not counted, as stunnel). */
  prelude?: string,
): Promise<void> {
  const s = service.config;
  const ssl = modSslEnv(tls);
  // stunnel's variables, then the TCP*/SSL* and mod_ssl sets of the toolkit.
  const stunnelEnv: Record<string, string | undefined> = {
    REMOTE_HOST: unmapped(info.remoteIp),
    REMOTE_PORT: String(info.remotePort),
    SSL_CLIENT_DN: ssl.SSL_CLIENT_S_DN,
    SSL_CLIENT_I_DN: ssl.SSL_CLIENT_I_DN,
  };
  // The rule's variables last, as sslserver sets them over its own.
  const env = childEnvList(ctx.envBase, tcpEnv(info), sslEnv(info), ssl, stunnelEnv, ctx.rulesEnv ?? []);
  // $0 is the path given in `exec` (the program file and its argv[0] are one value here).
  const argv = [s.exec!, ...(s.execArgs ?? []).slice(1)];
  let toSocket = -(prelude?.length ?? 0);
  let toTls = 0;
  // Counted beside the pump's own listener; paused first, so that adding this listener does not
  // start the flow of data before the pump listens too.
  tls.pause();
  tls.on('data', (b: Buffer) => {
    toSocket += b.length;
  });
  countWrites(tls, (n) => {
    toTls += n;
  });
  if (prelude !== undefined) tls.unshift(Buffer.from(prelude, 'latin1'));
  let failed = false;
  try {
    const child = await spawnPumped(
      tls as Duplex,
      { argv, env },
      {
        ...timeouts,
        onStreamError: (err) => {
          failed = true;
          ctx.log.write(LOG.err, id, `transfer: ${safe(errnoText(err))}`);
        },
        onIdleTimeout: () => {
          failed = true;
          ctx.log.write(LOG.info, id, 's_poll_wait: TIMEOUTidle exceeded: sending reset');
          child.kill('SIGTERM');
        },
      },
    );
    ctx.log.write(LOG.info, id, `Local mode child started (PID=${child.pid})`);
    const status = await child.exited;
    await child.done;
    if (status.error) ctx.log.write(LOG.err, id, `execvp: ${s.exec}: ${errnoText(status.error)}`);
    ctx.log.write(
      LOG.info,
      id,
      `Child process ${child.pid} ${status.signal ? `terminated on signal ${status.signal}` : `finished with code ${status.code}`}`,
    );
  } catch (err) {
    failed = true;
    ctx.log.write(LOG.err, id, `exec: ${safe((err as Error).message)}`);
    tls.destroy();
  }
  closed(failed ? 'reset' : 'closed', toTls, toSocket);
}

/** Count what is written to `stream` (the plaintext the program sends to TLS). */
function countWrites(stream: Duplex, add: (n: number) => void): void {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  (stream as { write: (...args: unknown[]) => boolean }).write = (...args: unknown[]) => {
    const chunk = args[0];
    if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) add(Buffer.byteLength(chunk));
    return write(...args);
  };
}

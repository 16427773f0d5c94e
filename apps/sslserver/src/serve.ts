// One server run: TLS loaded, the engine bound, the confined TLS handler started, privileges
// dropped, the port printed, then connections served until the stop signal.
import { EnvBase } from '@ucspi/env';
import { nativeNotice } from '@ucspi/exec';
import { type Connection, createServer, dropPrivileges } from '@ucspi/server';
import { serveConfined } from './confined.js';
import type { ServeContext } from './context.js';
import { drainServer, drainTimeoutMs } from './drain.js';
import type { ServerLog } from './log.js';
import type { ServerIo } from './main.js';
import type { ServerOptions } from './options.js';
import { plainHandler } from './plain.js';
import { HandlerStartError, type TlsHandler } from './privsep.js';
import { watchTicketKeys } from './ticket-keys.js';
import { serveTls } from './tls.js';
import { closeTimeoutMs, FatalError, jailSettings, loadTls, proxyProtocol } from './tls-setup.js';
import { startTlsHandlers, tlsWorkers, workerIdentity } from './tls-workers.js';
import { serveUcspiTls } from './ucspi-tls.js';

type Env = Record<string, string | undefined>;

/** Serve until `io.stopSignal`; resolves with 0, throws what ended the run otherwise. */
export async function serve(opts: ServerOptions, env: Env, io: ServerIo, log: ServerLog): Promise<number> {
  const ssl = opts.flavour === 'sslserver';
  const jailed = jailSettings(opts, env);
  const closeMs = ssl ? closeTimeoutMs(env) : 0;
  const drainMs = drainTimeoutMs(env);
  const proxied = proxyProtocol(env);
  // TLSWORKERS=N: the TLS side in N handler processes (tls-workers.ts); tcpserver has no TLS.
  const workers = ssl ? tlsWorkers(env) : 0;
  if (ssl && env.MAXCONIP !== undefined && !/^\d+$/.test(env.MAXCONIP))
    throw new FatalError(`MAXCONIP must be a whole number, not ${env.MAXCONIP}`, false);
  // Once at start, with -v: programs start without the native spawner here, and what that costs.
  const notice = nativeNotice();
  if (notice) log.info(`warning: ${notice}`);
  const loaded = ssl ? await loadTls(opts, env, log) : undefined;
  const ctx: ServeContext = {
    opts,
    log,
    // The programs' base environment, prepared once: reading process.env goes through the C++
    // layer for every variable, and its NAME=value strings would be rebuilt on every connection.
    baseEnv: new EnvBase(env),
    ...(loaded ? { tls: loaded.tls } : {}),
    closeTimeoutMs: closeMs,
  };
  const plain = ssl ? undefined : plainHandler(ctx);
  const server = await createServer({
    host: opts.host,
    port: opts.port,
    ...(opts.family !== undefined ? { family: opts.family } : {}),
    // ucspi-tcp's tcpserver binds IPv4 only; sslserver's messages put a colon after `for`.
    ipv4Only: !ssl,
    forSeparator: ssl ? ': ' : ' ',
    ...(opts.netInterface !== undefined ? { netInterface: opts.netInterface } : {}),
    backlog: opts.backlog,
    limit: opts.limit,
    ...(opts.rules !== undefined ? { rules: opts.rules } : {}),
    allowNoRules: opts.allowNoRules,
    // sslserver's MAXCONIP: programs per client address, from the environment (global) or from a
    // rule's +MAXCONIP=n instruction, capped at -c; tcpserver has none.
    maxPerIp: ssl ? Number(env.MAXCONIP ?? 0) : 0,
    maxPerIpFromRules: ssl,
    ipOptions: opts.ipOptions,
    // PROXYPROTO=1: the balancer's header, within sslserver's -T (tcpserver: 10 s).
    ...(proxied ? { proxyProtocol: true, proxyTimeoutMs: ssl ? opts.handshakeTimeout * 1000 : 10_000 } : {}),
    remoteHost: opts.remoteHost,
    paranoid: opts.paranoid,
    remoteInfo: opts.remoteInfo,
    infoTimeoutMs: opts.infoTimeout * 1000,
    ...(opts.localName !== undefined ? { localName: opts.localName } : {}),
    env,
    onEvent: log.onEvent,
    onAccepted:
      plain?.onAccepted ??
      // -D: TCP_NODELAY; sslserver also keeps it during the TLS handshake with -d (see
      // nagleAfterHandshake). In -n mode the program owns the plain socket until it asks for TLS.
      ((socket) => {
        if (opts.noDelay || !opts.ucspiTls) socket.setNoDelay(true);
      }),
  });
  // SSL_CHROOT/SSL_UID/SSL_GID: the TLS side runs in a handler process that confines itself; it is
  // forked now, while this process still has the privileges it needs to read the key and chroot.
  let tlsHandler: TlsHandler | undefined;
  try {
    if ((jailed || workers > 0) && loaded) {
      const tlsEnv: Record<string, string> = {};
      for (const [k, v] of Object.entries(loaded.tlsEnv)) if (v !== undefined) tlsEnv[k] = v;
      tlsHandler = await startTlsHandlers(
        workers || 1,
        {
          tlsEnv,
          clientCert: opts.clientCert,
          ...(loaded.keyPassword !== undefined ? { keyPassword: loaded.keyPassword.toString('base64') } : {}),
          ...(loaded.ticketKeys ? { ticketKeys: loaded.ticketKeys.keys.toString('base64') } : {}),
          ...(jailed ?? workerIdentity(opts)),
          handshakeTimeoutMs: opts.handshakeTimeout * 1000,
          idleTimeoutMs: opts.idleTimeout * 1000,
          closeTimeoutMs: closeMs,
          ...(opts.banner ? { banner: opts.banner } : {}),
          nagle: !opts.noDelay,
        },
        env,
      ).catch((err: unknown) => {
        if (err instanceof HandlerStartError) throw new FatalError(err.message, err.temporary);
        throw err;
      });
      ctx.tlsHandler = tlsHandler;
      if (workers > 0) log.info(`info: TLS workers ${tlsHandler.pids.join(' ')}`);
    }
    // -g and -u after binding, through the toolkit's one privilege drop (groups cleared first).
    dropPrivileges({
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    });
  } catch (err) {
    server.close();
    tlsHandler?.close();
    throw err;
  }
  if (opts.printPort) io.stdout.write(`${server.port}\n`);

  const tls = loaded?.tls;
  // TLSTICKETKEYS rotation: this process's contexts (normal and -n modes) and its TLS handlers.
  const ticketWatch = loaded?.ticketKeys
    ? watchTicketKeys(
        loaded.ticketKeys,
        (keys) => {
          loaded.tls.setTicketKeys(keys);
          tlsHandler?.setTicketKeys(keys);
        },
        log,
      )
    : undefined;
  server.start(async (conn: Connection) => {
    if (plain) return plain.handle(conn);
    if (!tls) return;
    if (opts.ucspiTls) return serveUcspiTls(ctx, tls, conn);
    if (tlsHandler) return serveConfined(ctx, tlsHandler, conn);
    return serveTls(ctx, tls, conn);
  });

  const stopped = (io.stopSignal ?? new Promise<void>(() => undefined)).then(() => undefined);
  const why = await Promise.race([stopped, tlsHandler?.died ?? stopped]);
  ticketWatch?.close();
  if (why !== undefined) {
    // Without its TLS handler the server cannot serve: exit for the supervisor to restart it.
    server.close();
    tlsHandler?.close();
    throw new FatalError(why, true);
  }
  // The port refuses from now on; connections in progress finish (or are ended at the deadline).
  await drainServer(server, drainMs, io.endSignal);
  tlsHandler?.close();
  return 0;
}

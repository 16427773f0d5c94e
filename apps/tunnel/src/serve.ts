// One connection of a service, from accept to `Connection closed`, logged in stunnel's words: the
// accept logged, then the mode's flow (serve-server.ts: TLS in; serve-client.ts: TLS out).
import type { Socket } from 'node:net';
import type { ConnectionInfo, EnvBase } from '@ucspi/env';
import type { ServerTls } from '@ucspi/tls';
import { abort } from './abort.js';
import { addr, unmapped } from './address.js';
import type { ServiceConfig } from './config/types.js';
import { identAdmits } from './ident-check.js';
import { LOG, type TunnelLog } from './log.js';
import type { ClosedLog, Traffic } from './relay.js';
import { serveClient } from './serve-client.js';
import { serveStartTls, serveTls } from './serve-server.js';
import type { SniSecondary } from './sni.js';
import type { Targets } from './targets.js';
import type { ClientSide } from './tls-setup.js';

export { addr, unmapped } from './address.js';

/** A service ready to serve: its configuration, its TLS side, its targets. */
export interface RuntimeService {
  config: ServiceConfig;
  serverTls?: ServerTls;
  clientTls?: ClientSide;
  targets?: Targets;
  /** The `redirect` targets (redirect.ts). */
  redirectTargets?: Targets;
  /** A primary's SNI secondaries (`sni = PRIMARY:PATTERN` sections), linked by sni.ts. */
  sniSecondaries?: SniSecondary[];
}

/** What every connection shares. */
export interface ServeContext {
  log: TunnelLog;
  envBase: EnvBase;
  /** One connection's rule variables (set per connection, for `exec`). */
  rulesEnv?: ReadonlyArray<readonly [string, string]>;
  /** One connection's live byte counts (set per connection, for USR2's list). */
  traffic?: Traffic;
}

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
  /** Where the relay keeps this connection's byte counts while it runs (USR2's list). */
  traffic?: Traffic,
): Promise<void> {
  const { log } = ctx;
  const s = service.config;
  // `ident = USER`: before the accept is logged, as stunnel's auth_user(); a refusal ends the
  // client as any failure does (a reset unless `reset = no`), before any TLS.
  if (s.ident !== undefined && !(await identAdmits(s, info, id, log, socket.remoteAddress !== undefined))) {
    log.write(
      LOG.notice,
      id,
      `Connection ${s.reset ? 'reset' : 'closed'}: 0 byte(s) sent to TLS, 0 byte(s) sent to socket`,
    );
    abort(socket, s.reset);
    return;
  }
  log.write(
    LOG.notice,
    id,
    `Service [${s.name}] accepted connection from ${addr(unmapped(info.remoteIp), info.remotePort)}`,
  );
  const closed = closedLog(log, id, s);
  const timeouts = {
    idleTimeoutMs: s.timeoutIdle * 1000,
    closeTimeoutMs: s.timeoutClose * 1000,
    ...(traffic ? { traffic } : {}),
  };

  if (s.client) await serveClient(socket, service, id, log, timeouts, closed);
  else if (s.protocol !== undefined && s.protocol !== 'proxy' && s.protocol !== 'proxy-v2')
    await serveStartTls(socket, service, id, ctx, timeouts, closed);
  else
    await serveTls(socket, info, service, id, { ...ctx, rulesEnv, ...(traffic ? { traffic } : {}) }, closed);
}

/** `Connection closed: ...` for connection `id` of service `s` (also used by local-mode.ts). */
export function closedLog(log: TunnelLog, id: number, s: ServiceConfig): ClosedLog {
  // With `reset = no` stunnel says `closed` after a failure too: nothing was reset (client.c).
  return (how, toTls, toSocket) =>
    log.write(
      LOG.notice,
      id,
      `Connection ${s.reset ? how : 'closed'}: ${toTls} byte(s) sent to TLS, ${toSocket} byte(s) sent to socket`,
    );
}

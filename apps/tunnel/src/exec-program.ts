// `exec`: the connection served by a program, which reads and writes the TLS side through
// @ucspi/exec's pump, with stunnel's variables and the toolkit's TCP*/SSL* sets in its environment.

import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { type ConnectionInfo, childEnvList, modSslEnv, sslEnv, tcpEnv } from '@ucspi/env';
import { type ChildRun, type ExitStatus, type PumpOptions, spawnPumped } from '@ucspi/exec';
import { unmapped } from './address.js';
import type { ServiceConfig } from './config/types.js';
import { LOG, safe, type TunnelLog } from './log.js';
import type { ClosedLog, RelayTimeouts } from './relay.js';
import type { RuntimeService, ServeContext } from './serve.js';
import { errnoText } from './targets.js';

/** Run the service's `exec` program on `tls` until it exits and its output is flushed; never rejects. */
export async function runProgram(
  tls: TLSSocket,
  info: ConnectionInfo,
  service: RuntimeService,
  id: number,
  ctx: ServeContext,
  timeouts: RelayTimeouts,
  closed: ClosedLog,
  /** protocol = proxy | proxy-v2: the header the program reads first (not counted, as stunnel). */
  prelude?: Buffer,
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
  let toSocket = -(prelude?.length ?? 0);
  let toTls = 0;
  // Counted beside the pump's own listener; paused first, so that adding this listener does not
  // start the flow of data before the pump listens too.
  tls.pause();
  // USR2's live counts; the PROXY header is not counted, as in `Connection closed`.
  const live = timeouts.traffic;
  tls.on('data', (b: Buffer) => {
    toSocket += b.length;
    if (live) live.toSocket = Math.max(0, toSocket);
  });
  countWrites(tls, (n) => {
    toTls += n;
    if (live) live.toTls = toTls;
  });
  if (prelude !== undefined) tls.unshift(prelude);
  let failed = false;
  try {
    const child = await startProgram(tls, env, s, id, ctx.log, {
      idleTimeoutMs: timeouts.idleTimeoutMs,
      closeTimeoutMs: timeouts.closeTimeoutMs,
      onStreamError: (err) => {
        failed = true;
        ctx.log.write(LOG.err, id, `transfer: ${safe(errnoText(err))}`);
      },
      onIdleTimeout: () => {
        failed = true;
        ctx.log.write(LOG.info, id, 's_poll_wait: TIMEOUTidle exceeded: sending reset');
        child.kill('SIGTERM');
      },
    });
    const status = await child.exited;
    await child.done;
    logStatus(ctx.log, id, s, child.pid, status);
  } catch (err) {
    failed = true;
    ctx.log.write(LOG.err, id, `exec: ${safe((err as Error).message)}`);
    tls.destroy();
  }
  closed(failed ? 'reset' : 'closed', toTls, toSocket);
}

/**
 * Start the service's `exec` program on `stream` (pumped through pipes, or on a terminal with
 * `pty = yes`), logged as stunnel: `TTY=... allocated`, `Local mode child started (PID=N)`. Used
 * for a connection's program (above) and by stunnel's local mode (local-mode.ts). Rejects when it
 * cannot be started.
 */
export async function startProgram(
  stream: Duplex,
  env: readonly string[],
  s: ServiceConfig,
  id: number,
  log: TunnelLog,
  pump: PumpOptions,
): Promise<ChildRun & { readonly done: Promise<void> }> {
  // $0 is the path given in `exec` (the program file and its argv[0] are one value here).
  const argv = [s.exec!, ...(s.execArgs ?? []).slice(1)];
  // pty = yes: fd 0 and 1 on a new terminal (the peer's EOF hangs it up, as stunnel closes it).
  const child = await spawnPumped(stream, { argv, env }, { ...pump, pty: s.pty });
  if (child.tty !== undefined) log.write(LOG.debug, id, `TTY=${child.tty} allocated`);
  log.write(LOG.info, id, `Local mode child started (PID=${child.pid})`);
  return child;
}

/** How the program ended, in stunnel's words (`Child process N finished with code C`). */
export function logStatus(
  log: TunnelLog,
  id: number | 'ui',
  s: ServiceConfig,
  pid: number,
  status: ExitStatus,
): void {
  if (status.error) log.write(LOG.err, id, `execvp: ${s.exec}: ${errnoText(status.error)}`);
  log.write(
    LOG.info,
    id,
    `Child process ${pid} ${status.signal ? `terminated on ${status.signal}` : `finished with code ${status.code}`}`,
  );
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

// What every connection handler of sslserver and tcpserver shares.
import type { Socket } from 'node:net';
import type { EnvBase } from '@ucspi/env';
import type { PumpOptions } from '@ucspi/exec';
import type { ServerTls } from '@ucspi/tls';
import type { ServerLog } from './log.js';
import type { ServerOptions } from './options.js';
import type { TlsHandler } from './privsep.js';

/** The server's settings and services, prepared once at start. */
export interface ServeContext {
  opts: ServerOptions;
  log: ServerLog;
  /** The programs' base environment, prepared once. */
  baseEnv: EnvBase;
  /** sslserver: the TLS configuration. */
  tls?: ServerTls;
  /** sslserver with SSL_CHROOT/SSL_UID/SSL_GID: the confined TLS handler process. */
  tlsHandler?: TlsHandler;
  /** The close deadline after the program's output has ended (CLOSETIMEOUT), in ms. */
  closeTimeoutMs: number;
}

/** The pump's deadlines: -w and the close deadline. */
export function deadlines(ctx: ServeContext): Pick<PumpOptions, 'idleTimeoutMs' | 'closeTimeoutMs'> {
  return { idleTimeoutMs: ctx.opts.idleTimeout * 1000, closeTimeoutMs: ctx.closeTimeoutMs };
}

/**
 * -d (the default) asks for Nagle's algorithm. During the TLS handshake it would hold the first
 * response behind the handshake's trailing records (TLS 1.3 session tickets) until the client's
 * delayed ACK, about 40 ms per connection; so TCP_NODELAY stays on until the program's first
 * bytes have left, and Nagle is on from then on.
 */
export function nagleAfterHandshake(ctx: ServeContext, socket: Socket): Pick<PumpOptions, 'onFirstOutput'> {
  return ctx.opts.noDelay ? {} : { onFirstOutput: () => socket.setNoDelay(false) };
}

/** With -m/-z and -v, after an accepted client certificate. */
export function logClientCert(ctx: ServeContext, pid: number): void {
  if (ctx.opts.clientCert !== 'none') ctx.log.clientCertAccepted(pid);
}

// sslserver's normal mode with SSL_CHROOT/SSL_UID/SSL_GID: the handshake and the pump run in the
// confined TLS handler; the program's fd 0 and fd 1 are Unix socketpairs whose other ends are sent
// to it.
import { childEnvList, sslEnv, tcpEnv } from '@ucspi/env';
import { type HandOverRun, spawnHandOver } from '@ucspi/exec';
import type { Connection } from '@ucspi/server';
import { logClientCert, type ServeContext } from './context.js';
import type { TlsHandler } from './privsep.js';

/** Serve `conn` through the confined handler `h`. */
export async function serveConfined(ctx: ServeContext, h: TlsHandler, conn: Connection): Promise<void> {
  const { opts, log } = ctx;
  const { id, secure } = h.accept(conn.socket, {
    ...(conn.info.remoteHost !== undefined ? { remoteHost: conn.info.remoteHost } : {}),
    modSsl: opts.modSsl,
    banner: true,
  });
  // The connection lives in the handler: ended there too when the server ends it (drain). The
  // engine sends SIGTERM to the program only after this message is on its way, so the handler
  // resets the connection before the program's end could let it send close_notify.
  conn.signal.addEventListener('abort', () => h.abort(id), { once: true });
  const r = await secure;
  if (!r.ok) {
    if (r.handshake !== true) log.tlsFailed('accept', process.pid, r.reason);
    else log.certRefused(r.reason);
    return;
  }
  const env = childEnvList(
    ctx.baseEnv,
    sslEnv(conn.info),
    opts.tcpEnv ? tcpEnv(conn.info) : {},
    r.env ?? {},
    conn.rulesEnv,
  );
  let run: HandOverRun;
  try {
    run = await spawnHandOver({ argv: opts.prog, env });
  } catch (err) {
    h.abort(id);
    throw err;
  }
  conn.started(run.pid);
  logClientCert(ctx, run.pid);
  log.tlsAccepted(run.pid, () => ({ protocol: r.protocol ?? '', cipher: r.cipher ?? '' }));
  const done = h.pump(id, run.input, run.output);
  done.then(({ error }) => {
    if (error !== undefined) log.tlsFailed('speak', run.pid, error || undefined);
    run.kill('SIGTERM');
  });
  const st = await run.exited;
  await done;
  conn.ended(run.pid, st.wstat, st.error);
}

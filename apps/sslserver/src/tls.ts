// sslserver's normal mode: TLS on the connection, the program's fd 0 and fd 1 are pipes, and the
// server pumps between them.
import { childEnvList, modSslEnv, sslEnv, tcpEnv } from '@ucspi/env';
import { spawnPumped } from '@ucspi/exec';
import type { Connection } from '@ucspi/server';
import { acceptTls, negotiated, opensslReason, type ServerTls } from '@ucspi/tls';
import { deadlines, logClientCert, nagleAfterHandshake, type ServeContext } from './context.js';

/** Serve `conn`: the handshake only now, after the rules allowed the connection. */
export async function serveTls(ctx: ServeContext, tls: ServerTls, conn: Connection): Promise<void> {
  const { opts, log } = ctx;
  const shake = await acceptTls(conn.socket, tls, {
    timeoutMs: opts.handshakeTimeout * 1000,
    ...(conn.info.remoteHost !== undefined ? { remoteHost: conn.info.remoteHost } : {}),
  });
  if (!shake.ok) {
    if (shake.stage === 'handshake') log.tlsFailed('accept', process.pid, shake.reason);
    else log.certRefused(shake.reason);
    return;
  }
  const { tlsSocket } = shake;
  const env = childEnvList(
    ctx.baseEnv,
    sslEnv(conn.info),
    // -e: the TCP* set, and PROTO becomes TCP/TCP6 (0.95b and the man page).
    opts.tcpEnv ? tcpEnv(conn.info) : {},
    opts.modSsl ? modSslEnv(tlsSocket) : {},
    conn.rulesEnv,
  );
  // The pump may meet an error of the connection before spawnPumped returns (the connection
  // failed while the program was being started): the server's pid stands in until then.
  let pid = process.pid;
  const run = await spawnPumped(
    tlsSocket,
    { argv: opts.prog, env },
    {
      ...deadlines(ctx),
      onStreamError: (err) => log.tlsFailed('speak', pid, opensslReason(err)),
      ...(opts.banner ? { banner: opts.banner } : {}),
      ...nagleAfterHandshake(ctx, conn.socket),
    },
  );
  pid = run.pid;
  conn.started(run.pid);
  logClientCert(ctx, run.pid);
  log.tlsAccepted(run.pid, () => negotiated(tlsSocket));
  run.done.then(() => run.kill('SIGTERM'));
  const st = await run.exited;
  await run.done;
  conn.ended(run.pid, st.wstat, st.error);
}

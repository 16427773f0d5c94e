// sslserver -n (UCSPI-TLS): the program talks plaintext on the raw socket (fd 0/1) and writes `y`
// or `Y` on SSLCTLFD to start TLS; the server then runs the handshake on the raw socket and pumps
// between TLS and SSLREADFD/SSLWRITEFD. Plaintext the client pipelined after its STARTTLS that the
// program did not read stays in the socket and is fed to the TLS layer as handshake bytes (which
// fails the handshake): it is never delivered to the program as if it were protected (RFC 3207
// section 6).
import { childEnvList, encodeEnvList, modSslEnv, sslEnv, tcpEnv } from '@ucspi/env';
import { pumpStreams, spawnUcspiTls, type UcspiTlsRun } from '@ucspi/exec';
import type { Connection } from '@ucspi/server';
import { acceptTls, negotiated, opensslReason, type ServerTls } from '@ucspi/tls';
import { deadlines, logClientCert, nagleAfterHandshake, type ServeContext } from './context.js';
import type { TlsHandler } from './privsep.js';

/** Serve `conn` in UCSPI-TLS mode, with the TLS side here or in the confined handler. */
export async function serveUcspiTls(ctx: ServeContext, tls: ServerTls, conn: Connection): Promise<void> {
  const { opts } = ctx;
  const { socket } = conn;
  // PROXYPROTO: the program is given the socket itself, so client bytes that came in the same read
  // as the header (already out of the socket) could not reach it: such a connection is dropped.
  if (socket.readableLength > 0) {
    ctx.log.notice(
      `warning: dropping connection from ${conn.info.remoteIp}, client bytes came with the PROXY header (-n cannot pass them on)`,
    );
    socket.destroy();
    return;
  }
  // -B in -n mode goes out on the plain socket, before the program runs.
  if (opts.banner) socket.write(opts.banner);
  const run = await spawnUcspiTls(
    socket,
    {
      argv: opts.prog,
      env: childEnvList(ctx.baseEnv, sslEnv(conn.info), opts.tcpEnv ? tcpEnv(conn.info) : {}, conn.rulesEnv),
    },
    { handOver: ctx.tlsHandler !== undefined },
  );
  conn.started(run.pid);
  run.control.on('error', () => undefined);
  run.read.on('error', () => undefined);
  run.write.on('error', () => undefined);
  const closeAll = () => {
    socket.destroy();
    run.control.destroy();
    run.read.destroy();
    run.write.destroy();
  };
  const request = await new Promise<string | undefined>((resolve) => {
    run.control.once('data', (b: Buffer) => resolve(b.subarray(0, 1).toString('latin1')));
    run.control.once('end', () => resolve(undefined));
    run.control.once('close', () => resolve(undefined));
    run.exited.then(() => resolve(undefined));
  });
  if (request === 'y' || request === 'Y') {
    run.control.pause();
    run.reclaimSocket();
    socket.setNoDelay(true);
    if (ctx.tlsHandler) await throughHandler(ctx, ctx.tlsHandler, conn, run, request === 'Y');
    else await here(ctx, tls, conn, run, request === 'Y');
  }
  // No TLS requested: the program keeps the plain socket; only our copy is closed.
  closeAll();
  const st = await run.exited;
  conn.ended(run.pid, st.wstat, st.error);
}

/** The handshake and the pump in this process. */
async function here(ctx: ServeContext, tls: ServerTls, conn: Connection, run: UcspiTlsRun, modSsl: boolean) {
  const { log } = ctx;
  const shake = await acceptTls(conn.socket, tls, {
    timeoutMs: ctx.opts.handshakeTimeout * 1000,
    ...(conn.info.remoteHost !== undefined ? { remoteHost: conn.info.remoteHost } : {}),
  });
  if (!shake.ok) {
    if (shake.stage === 'handshake') log.tlsFailed('accept', run.pid, shake.reason);
    else log.certRefused(shake.reason);
    run.kill('SIGTERM');
    return;
  }
  const { tlsSocket } = shake;
  logClientCert(ctx, run.pid);
  log.tlsAccepted(run.pid, () => negotiated(tlsSocket));
  if (modSsl) run.control.write(encodeEnvList(modSslEnv(tlsSocket)));
  await pumpStreams(
    tlsSocket,
    run.write,
    run.read,
    {
      ...deadlines(ctx),
      onIdleTimeout: () => run.kill('SIGTERM'),
      onStreamError: (err) => log.tlsFailed('speak', run.pid, opensslReason(err)),
      ...nagleAfterHandshake(ctx, conn.socket),
    },
    run.exited,
  );
}

/** The handshake and the pump in the confined TLS handler (SSL_CHROOT, SSL_UID, SSL_GID). */
async function throughHandler(
  ctx: ServeContext,
  h: TlsHandler,
  conn: Connection,
  run: UcspiTlsRun,
  modSsl: boolean,
) {
  const { log } = ctx;
  const { id, secure } = h.accept(conn.socket, {
    ...(conn.info.remoteHost !== undefined ? { remoteHost: conn.info.remoteHost } : {}),
    modSsl,
    banner: false,
  });
  // The connection lives in the handler: ended there too when the server ends it (drain).
  conn.signal.addEventListener('abort', () => h.abort(id), { once: true });
  const r = await secure;
  if (!r.ok) {
    if (r.handshake !== true) log.tlsFailed('accept', run.pid, r.reason);
    else log.certRefused(r.reason);
    h.abort(id);
    run.kill('SIGTERM');
    return;
  }
  logClientCert(ctx, run.pid);
  log.tlsAccepted(run.pid, () => ({ protocol: r.protocol ?? '', cipher: r.cipher ?? '' }));
  if (modSsl) run.control.write(encodeEnvList(r.env ?? {}));
  const { idle, error } = await h.pump(id, run.read, run.write);
  if (error !== undefined) log.tlsFailed('speak', run.pid, error || undefined);
  if (idle) run.kill('SIGTERM');
}

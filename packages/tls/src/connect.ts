// The client side of a TLS connection on a socket that is already connected (tcpclient, the
// tunnel's client mode, after a STARTTLS dialogue): handshake within a deadline, then the
// decision about the server's certificate, by the ClientTls policy or by an EPIC5-style hook.
import diagnostics from 'node:diagnostics_channel';
import { isIP, type Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import type { ClientTls } from './client.js';
import { TlsConnectError, TlsErrorCodes } from './errors.js';
import { type CertEvaluation, type EvaluationPolicy, evaluateCertificate } from './evaluate.js';
import { waitForHandshake } from './handshake.js';

const connectChannel = diagnostics.channel('ucspi:tls:connect');

/** Options of {@link connectTls}. */
export interface ConnectTlsOptions {
  /** Deadline of the handshake in ms (and of the hook's decision). */
  timeoutMs: number;
  /**
   * The name sent in SNI, instead of the ClientTls's `servername`. An IP address or `''` sends
   * none (RFC 6066 section 3 allows host names only).
   */
  servername?: string;
  /**
   * The name the certificate must match in the evaluation report (SSL_CHECKHOST_ERROR); without
   * it the report has no host name mismatch. The ClientTls policy checks its own `servername`.
   */
  host?: string;
  /**
   * EPIC5's server_ssl_eval: called after the handshake, before any application data, with the
   * evaluation report whose `accept` is the ClientTls policy's verdict. Its answer is final both
   * ways: it may accept a certificate that failed verification and reject one that passed. A hook
   * that throws rejects. Without a hook the policy's verdict stands.
   */
  evaluate?: EvaluationPolicy;
  /** Called with the report when one was made (with `evaluate`), before the decision: for logs. */
  onReport?: (report: CertEvaluation) => void;
}

/**
 * Start TLS as the client on `socket` (connected, nothing read from it yet that belongs to TLS)
 * with the `clientTls` configuration. Resolves with the TLS socket once the handshake has
 * finished within `timeoutMs` and the server's certificate was accepted; the socket is then
 * paused (data the server sent early waits in it), and a TLS failure after the handshake (a bad
 * record, an alert) destroys it with that error (its 'error' event, and `errored` for a listener
 * attached later). Rejects with a {@link TlsConnectError}
 * (`UCSPI_ERR_TLS_HANDSHAKE`, `UCSPI_ERR_TLS_HANDSHAKE_TIMEOUT`, `UCSPI_ERR_TLS_PEER_REJECTED`),
 * having destroyed the TLS socket and `socket`.
 */
export async function connectTls(
  socket: Socket,
  clientTls: ClientTls,
  opts: ConnectTlsOptions,
): Promise<TLSSocket> {
  const sni = opts.servername ?? clientTls.connectOptions.servername;
  const { servername: _sni, ...connectOptions } = clientTls.connectOptions;
  const started = performance.now();
  const tlsSocket = connect({ ...connectOptions, socket, ...(sni && !isIP(sni) ? { servername: sni } : {}) });
  // Errors before the decision are the handshake's (waitForHandshake reports them); one listener
  // stays until the caller has its own, so that a late one never throws.
  const swallow = () => undefined;
  tlsSocket.on('error', swallow);
  const fail = (err: TlsConnectError): never => {
    tlsSocket.destroy();
    socket.destroy();
    if (connectChannel.hasSubscribers)
      connectChannel.publish({
        ok: false,
        ms: performance.now() - started,
        code: err.code,
        reason: err.reason,
      });
    throw err;
  };
  const deadline = performance.now() + opts.timeoutMs;
  const shaken = await waitForHandshake(tlsSocket, opts.timeoutMs);
  if (!shaken.ok) {
    if (shaken.timedOut)
      fail(
        new TlsConnectError(
          TlsErrorCodes.HANDSHAKE_TIMEOUT,
          `TLS handshake timed out after ${opts.timeoutMs} ms`,
        ),
      );
    const reason =
      shaken.reason ??
      (shaken.error as NodeJS.ErrnoException | undefined)?.code ??
      shaken.error?.message ??
      'connection closed';
    fail(
      new TlsConnectError(TlsErrorCodes.HANDSHAKE, `TLS handshake failed: ${reason}`, {
        reason,
        cause: shaken.error,
      }),
    );
  }
  // No 'data' listener until the caller attaches one: what the server sends now waits.
  tlsSocket.pause();
  let refusal: string | undefined;
  try {
    refusal = await withDeadline(decide(tlsSocket, clientTls, opts), deadline - performance.now());
  } catch (err) {
    refusal = `server certificate rejected: the evaluation hook failed: ${(err as Error).message}`;
  }
  if (refusal !== undefined)
    fail(new TlsConnectError(TlsErrorCodes.PEER_REJECTED, refusal, { reason: refusal }));
  if (tlsSocket.destroyed) fail(new TlsConnectError(TlsErrorCodes.HANDSHAKE, 'TLS connection closed', {}));
  tlsSocket.off('error', swallow);
  // A TLS failure after the handshake (an alert such as TLS 1.3's certificate_required, a bad
  // record) is only emitted by node:tls, the socket left open: end it, so that a caller that
  // attaches its listeners later still finds it destroyed with the error (`errored`).
  tlsSocket.on('error', (err: Error) => {
    if (!tlsSocket.destroyed) tlsSocket.destroy(err);
  });
  if (connectChannel.hasSubscribers)
    connectChannel.publish({ ok: true, ms: performance.now() - started, protocol: tlsSocket.getProtocol() });
  return tlsSocket;
}

/** `promise`, or a rejection once `ms` have passed. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no decision within the deadline`)), Math.max(ms, 0));
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** The decision after the handshake: undefined to go on, else why the server is refused. */
async function decide(
  tlsSocket: TLSSocket,
  clientTls: ClientTls,
  opts: ConnectTlsOptions,
): Promise<string | undefined> {
  const verdict = clientTls.checkServer(tlsSocket);
  if (!opts.evaluate) return verdict.ok ? undefined : (verdict.reason ?? 'server certificate refused');
  const report = evaluateCertificate(tlsSocket, opts.host !== undefined ? { host: opts.host } : {});
  if (!report) return 'server sent no certificate';
  report.accept = verdict.ok;
  opts.onReport?.(report);
  const accepted = (await opts.evaluate(report)) === true;
  if (accepted) return undefined;
  return verdict.ok
    ? 'server certificate rejected by the evaluation hook'
    : `server certificate rejected by the evaluation hook (${verdict.reason ?? 'refused'})`;
}

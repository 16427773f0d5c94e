// The server side of a connection's TLS: handshake within a deadline, then the peer checked.
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { surfaceTlsErrors, waitForHandshake } from './handshake.js';
import type { ServerTls } from './server.js';

/** Options of {@link acceptTls}. */
export interface AcceptTlsOptions {
  /** The handshake deadline (sslserver -T), in ms. */
  timeoutMs: number;
  /** The client's host name, for the -z check of its certificate. */
  remoteHost?: string;
}

/** The outcome of {@link acceptTls}. */
export type AcceptTlsResult =
  | { ok: true; tlsSocket: TLSSocket }
  | {
      ok: false;
      /** `handshake`: the handshake failed or timed out; `peer`: the client certificate was refused. */
      stage: 'handshake' | 'peer';
      /** OpenSSL's reason for a failed handshake, or why the certificate was refused. */
      reason?: string;
    };

/**
 * Run the server side of TLS on an accepted `socket`: create the TLS socket, wait for the
 * handshake at most `timeoutMs`, check the client certificate with `serverTls.checkPeer` (-m/-z),
 * and from then on turn TLS failures into 'error' events. On failure everything is destroyed; it
 * never rejects. The socket should have been accepted with allowHalfOpen.
 */
export async function acceptTls(
  socket: Socket,
  serverTls: ServerTls,
  options: AcceptTlsOptions,
): Promise<AcceptTlsResult> {
  const tlsSocket = new TLSSocket(socket, { isServer: true, ...serverTls.serverOptions });
  tlsSocket.on('error', () => undefined);
  const shake = await waitForHandshake(tlsSocket, options.timeoutMs);
  if (!shake.ok) {
    tlsSocket.destroy();
    socket.destroy();
    return { ok: false, stage: 'handshake', ...(shake.reason ? { reason: shake.reason } : {}) };
  }
  const peer = serverTls.checkPeer(tlsSocket, options.remoteHost);
  if (!peer.ok) {
    tlsSocket.destroy();
    return { ok: false, stage: 'peer', ...(peer.reason !== undefined ? { reason: peer.reason } : {}) };
  }
  surfaceTlsErrors(tlsSocket);
  return { ok: true, tlsSocket };
}

/** The negotiated protocol and cipher (OpenSSL's standard name), as the `tls PID accept` line shows. */
export function negotiated(tlsSocket: TLSSocket): { protocol: string; cipher: string } {
  const c = tlsSocket.getCipher();
  return { protocol: tlsSocket.getProtocol() ?? '', cipher: c.standardName ?? c.name };
}

// `protocol = proxy` (v1, as stunnel) and `protocol = proxy-v2` (beyond stunnel): the PROXY header
// the tunnel sends its backend (or its `exec` program) before the client's bytes, naming the
// client and the address it connected to; v2 adds what HAProxy's `send-proxy-v2-ssl` says of the
// client's TLS, and the client's SNI.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ConnectionInfo } from '@ucspi/env';
import { type ProxyEndpoint, type ProxySsl, proxyV1Header, proxyV2Header } from '@ucspi/server';
import { LOG, safe, type TunnelLog } from './log.js';

/** PP2_CLIENT_SSL, PP2_CLIENT_CERT_CONN, PP2_CLIENT_CERT_SESS (proxy-protocol.txt, 2.2.5). */
const CLIENT_SSL = 0x01;
const CLIENT_CERT_CONN = 0x02;
const CLIENT_CERT_SESS = 0x04;

/**
 * OpenSSL's X509_V_ERR_* numbers of the verification failures node names (the `verify` field is
 * OpenSSL's number); any other failure is 1, X509_V_ERR_UNSPECIFIED.
 */
const X509_ERRORS: Record<string, number> = {
  UNABLE_TO_GET_ISSUER_CERT: 2,
  CERT_NOT_YET_VALID: 9,
  CERT_HAS_EXPIRED: 10,
  DEPTH_ZERO_SELF_SIGNED_CERT: 18,
  SELF_SIGNED_CERT_IN_CHAIN: 19,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 20,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 21,
  CERT_REVOKED: 23,
};

/**
 * The header for `protocol` (`proxy` or `proxy-v2`; undefined for any other), or null, logged,
 * when the connection's addresses are not there (a descriptor that is not a TCP socket). Without
 * `acceptProxy` both ends are read from the accepted socket itself, as stunnel does; with it they
 * are the engine's facts, which name the client the incoming PROXY header named.
 */
export function proxyHeaderFor(
  protocol: string | undefined,
  acceptProxy: boolean,
  /** The service verifies client certificates (verifyChain or verifyPeer): one that passed was verified. */
  verifies: boolean,
  socket: Socket,
  info: ConnectionInfo,
  tls: TLSSocket,
  id: number,
  log: TunnelLog,
): Buffer | undefined | null {
  if (protocol !== 'proxy' && protocol !== 'proxy-v2') return undefined;
  const source: ProxyEndpoint = acceptProxy
    ? { ip: info.remoteIp, port: info.remotePort }
    : { ip: socket.remoteAddress ?? '', port: socket.remotePort ?? -1 };
  const destination: ProxyEndpoint = acceptProxy
    ? { ip: info.localIp, port: info.localPort }
    : { ip: socket.localAddress ?? '', port: socket.localPort ?? -1 };
  try {
    if (protocol === 'proxy') return Buffer.from(proxyV1Header(source, destination), 'latin1');
    const sni = tls.servername;
    return proxyV2Header(source, destination, {
      ...(typeof sni === 'string' && sni !== '' ? { authority: sni } : {}),
      ssl: sslOf(tls, verifies),
    });
  } catch (err) {
    log.write(LOG.err, id, `getpeername: ${safe((err as Error).message)}`);
    return null;
  }
}

/** PP2_TYPE_SSL as HAProxy fills it: the client bits, the verify result, version and cipher. */
function sslOf(tls: TLSSocket, verifies: boolean): ProxySsl {
  const cert = tls.getPeerCertificate();
  const presented = cert !== null && Object.keys(cert).length > 0;
  let client = CLIENT_SSL;
  // A certificate of a resumed session was presented on an earlier connection, not on this one.
  if (presented) client |= CLIENT_CERT_SESS | (tls.isSessionReused() ? 0 : CLIENT_CERT_CONN);
  // Zero only for a presented and verified certificate (proxy-protocol.txt: non-zero otherwise).
  // The tunnel verifies with its own policy after the handshake (tls-setup.ts), so node's
  // `authorized` may be false for a certificate that policy accepted: the handshake got here.
  const error = tls.authorizationError as unknown as string | undefined;
  const verified = presented && (verifies || tls.authorized);
  const verify = verified ? 0 : ((error ? X509_ERRORS[error] : undefined) ?? 1);
  const version = tls.getProtocol();
  return {
    client,
    verify,
    ...(version ? { version } : {}),
    cipher: tls.getCipher().name,
  };
}

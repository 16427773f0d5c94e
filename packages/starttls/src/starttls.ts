import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Conversation } from './_conversation.js';
import { publishOutcome } from './diagnostics.js';
import { StartTlsError, StartTlsErrorCodes } from './errors.js';
import type { StartTlsClientOptions, StartTlsProtocol, StartTlsServerOptions } from './protocol.js';
import { loadProtocol } from './registry.js';

/**
 * Creates the TLS socket on the raw socket and resolves when its handshake is done. It must create
 * the TLSSocket before its first `await` (synchronously), so that no byte of the peer's handshake
 * can be read as plaintext in between.
 */
export type Handshake = (socket: Socket) => Promise<TLSSocket>;

/**
 * Runs the client side of `protocol`'s plaintext dialogue on `socket`, then `handshake(socket)`,
 * then the protocol's after-TLS step (SMTP: EHLO again, its reply consumed; skipped with
 * `afterTls: false`), and resolves with the TLS socket, paused, nothing read ahead from it. The
 * server's greeting goes to `options.onGreeting` as soon as it was read and accepted.
 *
 * Never falls back to plaintext: a server that does not offer STARTTLS, refuses it, or says
 * anything unexpected rejects with a {@link StartTlsError} (match on `err.code`). Plaintext that
 * the server sent after its go-ahead is refused (UCSPI_ERR_STARTTLS_INJECTION), never handed to
 * the TLS session. On any failure the socket is destroyed; an error of `handshake` itself is
 * passed through unchanged.
 */
export async function startTlsClient(
  socket: Socket,
  protocol: string | StartTlsProtocol,
  handshake: Handshake,
  options: StartTlsClientOptions = {},
): Promise<TLSSocket> {
  const name = typeof protocol === 'string' ? protocol : protocol.name;
  let conv: Conversation | undefined;
  let tls: TLSSocket | undefined;
  try {
    checkOptions(name, options);
    const proto = typeof protocol === 'string' ? await loadProtocol(protocol, 'client') : protocol;
    conv = new Conversation(socket, 'client', proto.name, options, false);
    await conv.run((d) => proto.client(d));
    refuseLeftover(proto.name, conv.detach(), socket);
    publishOutcome('upgrade', { protocol: proto.name, side: 'client' });
    tls = await handshake(socket);
    // Bytes the raw socket read after the go-ahead and before TLS took over its handle.
    refuseLeftover(proto.name, Buffer.alloc(0), socket, tls);
    if (options.afterTls !== false) {
      conv = undefined;
      await runAfterTls(tls, proto, options);
    }
    publishOutcome('done', { protocol: proto.name, side: 'client' });
    return tls;
  } catch (err) {
    conv?.detach();
    tls?.destroy();
    fail(name, 'client', socket, err);
  }
}

/**
 * Runs `protocol`'s client after-TLS step (SMTP: EHLO again, then AUTH with the `auth` option) on
 * a TLS socket the caller already holds: for a caller that ran {@link startTlsClient} with
 * `afterTls: false` and checks the server's certificate names before any credentials go out.
 * Resolves with nothing read ahead; a protocol without an after-TLS step resolves at once. On
 * failure (a {@link StartTlsError}) the socket is destroyed.
 */
export async function afterTlsClient(
  tls: TLSSocket,
  protocol: string | StartTlsProtocol,
  options: StartTlsClientOptions = {},
): Promise<void> {
  const name = typeof protocol === 'string' ? protocol : protocol.name;
  try {
    checkOptions(name, options);
    const proto = typeof protocol === 'string' ? await loadProtocol(protocol, 'client') : protocol;
    await runAfterTls(tls, proto, options);
  } catch (err) {
    fail(name, 'client', tls, err);
  }
}

async function runAfterTls(
  tls: TLSSocket,
  proto: StartTlsProtocol,
  options: StartTlsClientOptions,
): Promise<void> {
  if (!proto.afterTls) return;
  const step = proto.afterTls.bind(proto);
  const after = new Conversation(tls, 'client', proto.name, options, true);
  try {
    await after.run((d) => step(d));
  } finally {
    // Nothing read ahead: anything the server sent beyond the after-TLS reply goes back.
    const rest = after.detach();
    if (rest.length) tls.unshift(rest);
  }
}

/**
 * Runs the server side of `protocol`'s plaintext dialogue on an accepted `socket` (greeting,
 * capabilities offering STARTTLS, other commands refused until TLS), sends the go-ahead when the
 * client asks for TLS, and resolves with the TLS socket `handshake(socket)` made. A client that
 * pipelined anything after its STARTTLS command is refused (UCSPI_ERR_STARTTLS_INJECTION, RFC 3207
 * section 6) before the go-ahead is sent. On any failure the socket is destroyed.
 */
export async function startTlsServer(
  socket: Socket,
  protocol: string | StartTlsProtocol,
  handshake: Handshake,
  options: StartTlsServerOptions = {},
): Promise<TLSSocket> {
  const name = typeof protocol === 'string' ? protocol : protocol.name;
  let conv: Conversation | undefined;
  try {
    checkOptions(name, options);
    const proto = typeof protocol === 'string' ? await loadProtocol(protocol, 'server') : protocol;
    const server = proto.server;
    if (!server) {
      throw new StartTlsError(StartTlsErrorCodes.UNKNOWN_PROTOCOL, `${name}: no server side`, {
        protocol: name,
      });
    }
    conv = new Conversation(socket, 'server', proto.name, options, false);
    const goAhead = await conv.run((d) => server.call(proto, d));
    refuseLeftover(proto.name, conv.detach(), socket);
    conv.write(goAhead);
    publishOutcome('upgrade', { protocol: proto.name, side: 'server' });
    // No await between the go-ahead and handshake(): the client's ClientHello must reach TLS.
    const tls = await handshake(socket);
    publishOutcome('done', { protocol: proto.name, side: 'server' });
    return tls;
  } catch (err) {
    conv?.detach();
    fail(name, 'server', socket, err);
  }
}

function checkOptions(name: string, options: StartTlsClientOptions & StartTlsServerOptions): void {
  const { timeoutMs, maxLineLength, onGreeting, afterTls, auth } = options as StartTlsClientOptions &
    StartTlsServerOptions;
  if (
    auth !== undefined &&
    ((auth !== 'plain' && auth !== 'login') ||
      typeof options.username !== 'string' ||
      typeof options.password !== 'string')
  ) {
    throw new StartTlsError(
      StartTlsErrorCodes.BAD_OPTION,
      `${name}: auth must be 'plain' or 'login', with username and password`,
      { protocol: name },
    );
  }
  if (onGreeting !== undefined && typeof onGreeting !== 'function') {
    throw new StartTlsError(StartTlsErrorCodes.BAD_OPTION, `${name}: onGreeting must be a function`, {
      protocol: name,
    });
  }
  if (afterTls !== undefined && typeof afterTls !== 'boolean') {
    throw new StartTlsError(StartTlsErrorCodes.BAD_OPTION, `${name}: afterTls must be a boolean`, {
      protocol: name,
    });
  }
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new StartTlsError(StartTlsErrorCodes.BAD_OPTION, `${name}: timeoutMs must be a positive number`, {
      protocol: name,
    });
  }
  if (maxLineLength !== undefined && !(Number.isInteger(maxLineLength) && maxLineLength >= 64)) {
    throw new StartTlsError(
      StartTlsErrorCodes.BAD_OPTION,
      `${name}: maxLineLength must be an integer >= 64`,
      {
        protocol: name,
      },
    );
  }
}

// CVE-2011-0411 and its kin: bytes that arrived after the go-ahead and before TLS would be taken
// for TLS-protected data if they were ever replayed; they are refused and the connection ends.
function refuseLeftover(name: string, rest: Buffer, socket: Socket, tls?: TLSSocket): void {
  const pending = rest.length + socket.readableLength;
  if (pending === 0) return;
  tls?.destroy();
  throw new StartTlsError(
    StartTlsErrorCodes.INJECTION,
    `${name}: the peer sent ${pending} bytes of plaintext after the STARTTLS request; refused (never replayed into TLS)`,
    { protocol: name },
  );
}

function fail(name: string, side: 'client' | 'server', socket: Socket, err: unknown): never {
  socket.destroy();
  const e = err as { code?: string; message?: string };
  publishOutcome('error', {
    protocol: name,
    side,
    code: e?.code ?? 'ERROR',
    message: e?.message ?? String(err),
  });
  throw err;
}

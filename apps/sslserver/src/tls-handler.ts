// The privilege-separated TLS handler of sslserver (SSL_CHROOT, SSL_UID, SSL_GID).
//
// ucspi-ssl runs the TLS side of every connection in a process of its own, which chroots to
// $SSL_CHROOT and drops to $SSL_GID/$SSL_UID before it reads a byte from the network, while the
// program keeps the identity of -u/-g. This server handles every connection in one process, so it
// does the same with one long-lived handler process for all connections: the server forks it
// before dropping its own privileges, the handler loads the certificates and key, confines itself,
// and from then on receives each allowed connection's socket (and the program's channels) over
// the IPC channel, runs the handshake and pumps the bytes. Accepting, rules, limits, spawning and
// logging stay in the server.
//
// Protocol (JSON messages; a `+` marks a message that carries a descriptor):
//   server -> handler: init; accept+ (the TCP socket); input+ and output+ (the program's fd 0 and
//                      fd 1 peers, Unix sockets); abort; ticketKeys (TLSTICKETKEYS rotated)
//   handler -> server: ready | fatal; secure (handshake result); done (pump finished)
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { modSslEnv } from '@ucspi/env';
import { jail, pumpStreams } from '@ucspi/exec';
import {
  acceptTls,
  type ClientCertPolicy,
  loadServerTls,
  negotiated,
  opensslReason,
  type ServerTls,
} from '@ucspi/tls';

/** The first message: what to load, where to confine, how to pump. */
export interface HandlerInit {
  op: 'init';
  /** The variables loadServerTls reads (CERTFILE, KEYFILE, CAFILE, ...). */
  tlsEnv: Record<string, string>;
  clientCert: ClientCertPolicy;
  /** The key's password (-3), base64. */
  keyPassword?: string;
  root?: string;
  uid?: number;
  gid?: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  /** The close deadline after the program's output has ended (CLOSETIMEOUT). */
  closeTimeoutMs: number;
  /** -B, sent through TLS before the program's output. */
  banner?: string;
  /** -d: Nagle on once the program's first bytes have left. */
  nagle: boolean;
  /**
   * Session ticket keys (48 bytes, base64): TLSTICKETKEYS, or random ones shared by the TLSWORKERS
   * handlers, so that a client resumes its session whichever handler it is dealt to next time.
   */
  ticketKeys?: string;
}

export interface AcceptMessage {
  op: 'accept';
  id: number;
  remoteHost?: string;
  /** Return the mod_ssl variables with the result (-s, or a `Y` on SSLCTLFD). */
  modSsl: boolean;
  /** Send the banner before the program's output (normal mode). */
  banner: boolean;
  /**
   * PROXYPROTO: client bytes that came in the same read as the PROXY header (base64). They were
   * already taken off the socket, so they do not travel with its descriptor: the TLS socket gets
   * them first.
   */
  preface?: string;
}

export type ToHandler =
  | HandlerInit
  | AcceptMessage
  | { op: 'input' | 'output'; id: number }
  | { op: 'abort'; id: number }
  /** New ticket keys (48 bytes, base64): the server read them, a chroot may hide the file. */
  | { op: 'ticketKeys'; keys: string };

/** The handshake's outcome, as the handler reports it. */
export interface SecureResult {
  ok: boolean;
  /** On failure: false when the handshake itself failed, true when the client certificate was refused. */
  handshake?: boolean;
  /** Why: OpenSSL's reason for a failed handshake, the refusal for a certificate. */
  reason?: string;
  protocol?: string;
  cipher?: string;
  env?: Record<string, string>;
}

/** How the pump ended: `idle` when -w ended it; `error` (OpenSSL's reason, or '') when TLS failed. */
export interface PumpResult {
  idle: boolean;
  error?: string;
}

export type FromHandler =
  | { op: 'ready' }
  | { op: 'fatal'; message: string; temporary: boolean }
  | ({ op: 'secure'; id: number } & SecureResult)
  | ({ op: 'done'; id: number } & PumpResult);

interface Conn {
  /** Whether -B goes out before the program's output. */
  banner: boolean;
  /** Until the handshake is done: none. */
  tls?: TLSSocket;
  raw: Socket;
  input?: Socket;
  output?: Socket;
}

function send(msg: FromHandler): void {
  process.send?.(msg);
}

async function handler(): Promise<void> {
  let init: HandlerInit | undefined;
  let tls: ServerTls | undefined;
  const conns = new Map<number, Conn>();

  const startPump = (id: number, c: Conn) => {
    if (!init || !c.tls || !c.input || !c.output) return;
    const raw = c.raw;
    let idle = false;
    let error: string | undefined;
    pumpStreams(c.tls, c.output, c.input, {
      idleTimeoutMs: init.idleTimeoutMs,
      closeTimeoutMs: init.closeTimeoutMs,
      onIdleTimeout: () => {
        idle = true;
      },
      onStreamError: (err) => {
        error = opensslReason(err) ?? '';
      },
      ...(c.banner && init.banner ? { banner: init.banner } : {}),
      ...(init.nagle ? { onFirstOutput: () => raw.setNoDelay(false) } : {}),
    }).then(() => {
      conns.delete(id);
      send({ op: 'done', id, idle, ...(error !== undefined ? { error } : {}) });
    });
  };

  const accept = (msg: AcceptMessage, socket: Socket) => {
    if (!init || !tls) return;
    const serverTls = tls;
    socket.allowHalfOpen = true;
    socket.on('error', () => undefined);
    if (msg.preface) socket.unshift(Buffer.from(msg.preface, 'base64'));
    const c: Conn = { raw: socket, banner: msg.banner };
    conns.set(msg.id, c);
    acceptTls(socket, serverTls, {
      timeoutMs: init.handshakeTimeoutMs,
      ...(msg.remoteHost !== undefined ? { remoteHost: msg.remoteHost } : {}),
    }).then((shake) => {
      if (!shake.ok) {
        conns.delete(msg.id);
        send({
          op: 'secure',
          id: msg.id,
          ok: false,
          handshake: shake.stage === 'peer',
          ...(shake.reason !== undefined ? { reason: shake.reason } : {}),
        });
        return;
      }
      // Aborted meanwhile (the server gave up on the connection).
      if (conns.get(msg.id) !== c) {
        shake.tlsSocket.destroy();
        return;
      }
      c.tls = shake.tlsSocket;
      const { protocol, cipher } = negotiated(shake.tlsSocket);
      send({
        op: 'secure',
        id: msg.id,
        ok: true,
        protocol,
        cipher,
        ...(msg.modSsl ? { env: modSslEnv(shake.tlsSocket) } : {}),
      });
      startPump(msg.id, c);
    });
  };

  const channel = (id: number, which: 'input' | 'output', socket: Socket) => {
    const c = conns.get(id);
    if (!c) {
      // Its connection failed or was aborted meanwhile: the program gets EOF, and the server
      // still hears that this connection is done (it waits for that to free the slot).
      socket.destroy();
      send({ op: 'done', id, idle: false });
      return;
    }
    socket.allowHalfOpen = true;
    socket.on('error', () => undefined);
    c[which] = socket;
    startPump(id, c);
  };

  process.on('message', (msg: ToHandler, handle?: Socket) => {
    switch (msg.op) {
      case 'init':
        init = msg;
        setup(msg).then(
          (loaded) => {
            tls = loaded;
            send({ op: 'ready' });
          },
          (err: { message?: string; temporary?: boolean }) => {
            send({ op: 'fatal', message: err.message ?? String(err), temporary: err.temporary !== false });
            process.disconnect?.();
          },
        );
        break;
      case 'accept':
        if (handle) accept(msg, handle);
        break;
      case 'input':
      case 'output':
        if (handle) channel(msg.id, msg.op, handle);
        break;
      case 'ticketKeys':
        // The keys were checked by the server; the previous ones still open tickets (ticket-keys.ts
        // of @ucspi/tls).
        tls?.setTicketKeys(Buffer.from(msg.keys, 'base64'));
        break;
      case 'abort': {
        const c = conns.get(msg.id);
        conns.delete(msg.id);
        // A reset (the server gave up on it, a drain's deadline included): the client must see
        // the connection fail, where a bare FIN may pass for the end of a complete stream.
        c?.raw.resetAndDestroy();
        c?.tls?.destroy();
        c?.input?.destroy();
        c?.output?.destroy();
        break;
      }
    }
  });
  // A supervisor that signals the whole process group (systemd's default) reaches this process
  // too: its end comes from the server instead, through the IPC channel closing, so that the
  // server does not take its exit for a crash and the connections in progress can finish.
  process.on('SIGTERM', () => undefined);
  // The server is gone: nothing more can come; connections in progress finish on their own.
  process.on('disconnect', () => {
    if (conns.size === 0) process.exit(0);
    const poll = setInterval(() => {
      if (conns.size === 0) process.exit(0);
    }, 200);
    poll.unref();
  });
}

/** Load the certificates and key with the server's privileges, then confine this process. */
async function setup(init: HandlerInit): Promise<ServerTls> {
  const tls = await loadServerTls(init.tlsEnv, {
    clientCert: init.clientCert,
    ...(init.keyPassword !== undefined ? { keyPassword: Buffer.from(init.keyPassword, 'base64') } : {}),
    ...(init.ticketKeys !== undefined ? { ticketKeys: Buffer.from(init.ticketKeys, 'base64') } : {}),
  });
  jail({
    ...(init.root !== undefined ? { root: init.root } : {}),
    ...(init.gid !== undefined ? { gid: init.gid } : {}),
    ...(init.uid !== undefined ? { uid: init.uid } : {}),
  });
  return tls;
}

if (process.send) void handler();

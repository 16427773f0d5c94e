// The server's side of the privilege-separated TLS handler (see tls-handler.ts).
import { type ChildProcess, fork } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type {
  AcceptMessage,
  FromHandler,
  HandlerInit,
  PumpResult,
  SecureResult,
  ToHandler,
} from './tls-handler.js';

export type { PumpResult, SecureResult } from './tls-handler.js';

export interface TlsHandler {
  /** Hand over an allowed connection's socket; resolves with the handshake's outcome. */
  accept(
    socket: Socket,
    options: Omit<AcceptMessage, 'op' | 'id'>,
  ): { id: number; secure: Promise<SecureResult> };
  /**
   * Hand over the program's channels once the handshake succeeded (`input`: what the program
   * reads; `output`: what it writes). Resolves when the handler has finished pumping; `idle` is
   * true when -w ended it.
   */
  pump(id: number, input: Socket, output: Socket): Promise<PumpResult>;
  /** Give up on a connection (the program could not be started, a drain's deadline): a reset. */
  abort(id: number): void;
  /** Resolves if the handler process dies while the server still needs it. */
  readonly died: Promise<string>;
  /** The handler processes' ids (one here; TLSWORKERS=N: N, see tls-workers.ts). */
  readonly pids: readonly number[];
  /** Let the handler finish the connections it has, then exit. */
  close(): void;
  /** TLSTICKETKEYS rotated: the handler's new session ticket keys (48 bytes). */
  setTicketKeys(keys: Buffer): void;
}

/** The handler's module beside this one; from the sources (a TypeScript loader), the built one. */
function handlerFile(): string {
  const url = new URL(
    import.meta.url.endsWith('.ts') ? '../dist/tls-handler.js' : './tls-handler.js',
    import.meta.url,
  );
  return fileURLToPath(url);
}

/** Thrown when the handler could not load the certificates or confine itself. */
export class HandlerStartError extends Error {
  constructor(
    message: string,
    readonly temporary: boolean,
  ) {
    super(message);
  }
}

/**
 * Fork the handler (with the server's privileges still in place), send it its configuration and
 * wait until it has loaded the certificates and confined itself.
 */
export async function startTlsHandler(
  init: Omit<HandlerInit, 'op'>,
  env: Record<string, string | undefined>,
): Promise<TlsHandler> {
  const child: ChildProcess = fork(handlerFile(), [], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env,
    execArgv: [],
    serialization: 'json',
  });
  const secures = new Map<number, (r: SecureResult) => void>();
  const pumps = new Map<number, (r: PumpResult) => void>();
  let closing = false;
  let onDeath: (why: string) => void = () => undefined;
  const died = new Promise<string>((resolve) => {
    onDeath = resolve;
  });
  const failAll = () => {
    for (const done of secures.values()) done({ ok: false });
    for (const done of pumps.values()) done({ idle: false });
    secures.clear();
    pumps.clear();
  };

  await new Promise<void>((resolve, reject) => {
    const early = (code: number | null, signal: NodeJS.Signals | null) =>
      reject(
        new HandlerStartError(`TLS handler exited before it was ready (${signal ?? `status ${code}`})`, true),
      );
    child.once('exit', early);
    child.once('error', (err) =>
      reject(new HandlerStartError(`unable to start the TLS handler: ${err.message}`, true)),
    );
    child.on('message', function first(msg: FromHandler) {
      if (msg.op === 'ready') {
        child.off('message', first);
        child.off('exit', early);
        resolve();
      } else if (msg.op === 'fatal') {
        child.off('message', first);
        child.off('exit', early);
        reject(new HandlerStartError(msg.message, msg.temporary));
      }
    });
    child.send({ op: 'init', ...init } satisfies ToHandler);
  });

  child.on('message', (msg: FromHandler) => {
    if (msg.op === 'secure') {
      const done = secures.get(msg.id);
      secures.delete(msg.id);
      done?.(msg);
    } else if (msg.op === 'done') {
      const done = pumps.get(msg.id);
      pumps.delete(msg.id);
      done?.({ idle: msg.idle, ...(msg.error !== undefined ? { error: msg.error } : {}) });
    }
  });
  child.once('exit', (code, signal) => {
    failAll();
    if (!closing) onDeath(`TLS handler ${child.pid} died (${signal ?? `status ${code}`})`);
  });

  let nextId = 1;
  const sendHandle = (msg: ToHandler, socket: Socket, onFail: () => void) => {
    if (!child.connected) {
      socket.destroy();
      onFail();
      return;
    }
    child.send(msg, socket, (err) => {
      if (err) {
        socket.destroy();
        onFail();
      }
    });
  };

  return {
    accept(socket, options) {
      const id = nextId++;
      // PROXYPROTO: bytes read with the header wait in this process's buffer; they go in the
      // message (the handler puts them back in front of the descriptor's stream).
      const buffered = socket.readableLength > 0 ? (socket.read() as Buffer | null) : null;
      const preface = buffered ? { preface: buffered.toString('base64') } : {};
      const secure = new Promise<SecureResult>((resolve) => {
        secures.set(id, resolve);
        sendHandle({ op: 'accept', id, ...options, ...preface }, socket, () => {
          secures.delete(id);
          resolve({ ok: false });
        });
      });
      return { id, secure };
    },
    pump(id, input, output) {
      return new Promise((resolve) => {
        pumps.set(id, resolve);
        const fail = () => {
          pumps.delete(id);
          input.destroy();
          output.destroy();
          resolve({ idle: false });
        };
        sendHandle({ op: 'input', id }, input, fail);
        sendHandle({ op: 'output', id }, output, fail);
      });
    },
    abort(id) {
      if (child.connected) child.send({ op: 'abort', id } satisfies ToHandler);
    },
    died,
    pids: child.pid !== undefined ? [child.pid] : [],
    setTicketKeys(keys) {
      if (child.connected)
        child.send({ op: 'ticketKeys', keys: keys.toString('base64') } satisfies ToHandler);
    },
    close() {
      closing = true;
      if (child.connected) child.disconnect();
    },
  };
}

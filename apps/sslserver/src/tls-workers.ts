// TLSWORKERS=N: the TLS side of sslserver spread over N handler processes.
//
// One Node.js process does its TLS (handshakes, encryption) on one core. The privilege-separated
// handler (tls-handler.ts) already takes each allowed connection over IPC and does the handshake
// and the pump; with TLSWORKERS=N the server starts N of them and deals every connection to the
// one with the fewest connections in progress (in turn among equals). Accepting, the rules, -c,
// MAXCONIP, spawning the program and the log stay in the server process, so the limits and the
// status lines count across all handlers by construction.
import { randomBytes } from 'node:crypto';
import { nativeSpawn } from '@ucspi/exec';
import type { ServerOptions } from './options.js';
import { startTlsHandler, type TlsHandler } from './privsep.js';
import type { HandlerInit } from './tls-handler.js';
import { FatalError, type JailSettings } from './tls-setup.js';

type Env = Record<string, string | undefined>;

/** More handlers than this is taken for a typo: each one is a Node.js process of some 40 MiB. */
export const MAX_TLS_WORKERS = 64;

/**
 * TLSWORKERS: how many TLS handler processes; 0 (unset, empty or 0) keeps TLS in the server
 * process. Anything but a whole number from 0 to {@link MAX_TLS_WORKERS} is a configuration
 * error (exit 100), as is a platform without the native spawner (the program's channels are
 * handed to the handler, which needs it).
 */
export function tlsWorkers(env: Env): number {
  const v = env.TLSWORKERS;
  if (v === undefined || v === '' || v === '0') return 0;
  if (!/^\d+$/.test(v) || Number(v) > MAX_TLS_WORKERS)
    throw new FatalError(
      `TLSWORKERS must be a whole number of processes from 0 to ${MAX_TLS_WORKERS}, not ${v}`,
      false,
    );
  if (!nativeSpawn)
    throw new FatalError(
      'TLSWORKERS needs the native spawner of @ucspi/exec (Linux x64/arm64, see its README)',
      false,
    );
  return Number(v);
}

/**
 * Where TLSWORKERS handlers go without SSL_CHROOT/SSL_UID/SSL_GID: the identity the server drops
 * to (-u, -g), since they are forked before it drops its privileges and must not keep them.
 */
export function workerIdentity(opts: Pick<ServerOptions, 'uid' | 'gid'>): JailSettings {
  return {
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  };
}

/**
 * Start `count` TLS handlers with the same configuration and return them as one. With more than
 * one, they share the ticket keys of `init` (TLSTICKETKEYS) or else fresh ones. If any of them
 * fails to start, the others are closed and its error is thrown.
 */
export async function startTlsHandlers(
  count: number,
  init: Omit<HandlerInit, 'op'>,
  env: Env,
): Promise<TlsHandler> {
  if (count <= 1) return startTlsHandler(init, env);
  const shared = { ...init, ticketKeys: init.ticketKeys ?? randomBytes(48).toString('base64') };
  const started = await Promise.allSettled(Array.from({ length: count }, () => startTlsHandler(shared, env)));
  const handlers: TlsHandler[] = [];
  let failure: unknown;
  for (const s of started) {
    if (s.status === 'fulfilled') handlers.push(s.value);
    else failure ??= s.reason;
  }
  if (failure !== undefined) {
    for (const h of handlers) h.close();
    throw failure;
  }
  return balance(handlers);
}

/** Where a connection went: the handler's index and the id that handler gave it. */
interface Route {
  at: number;
  id: number;
}

/**
 * The handlers as one {@link TlsHandler}: a connection goes to the handler with the fewest
 * connections in progress, scanning from the one after the last chosen, so that equals take turns.
 * A connection counts from its hand-over until its handshake fails, it is aborted or its pump ends.
 */
export function balance(handlers: readonly TlsHandler[]): TlsHandler {
  const load = handlers.map(() => 0);
  const routes = new Map<number, Route>();
  let next = 0;
  let nextId = 1;

  const pick = (): number => {
    let best = next;
    for (let i = 1; i < handlers.length; i++) {
      const j = (next + i) % handlers.length;
      if (load[j]! < load[best]!) best = j;
    }
    next = (best + 1) % handlers.length;
    return best;
  };
  // Once per connection, whichever of its ends comes first.
  const release = (id: number): Route | undefined => {
    const r = routes.get(id);
    if (r === undefined) return undefined;
    routes.delete(id);
    load[r.at]!--;
    return r;
  };

  return {
    accept(socket, options) {
      const at = pick();
      load[at]!++;
      const inner = handlers[at]!.accept(socket, options);
      const id = nextId++;
      routes.set(id, { at, id: inner.id });
      const secure = inner.secure.then((r) => {
        if (!r.ok) release(id);
        return r;
      });
      return { id, secure };
    },
    pump(id, input, output) {
      const r = routes.get(id);
      if (r === undefined) {
        input.destroy();
        output.destroy();
        return Promise.resolve({ idle: false });
      }
      return handlers[r.at]!.pump(r.id, input, output).finally(() => release(id));
    },
    abort(...[id, ...rest]: Parameters<TlsHandler['abort']>) {
      const r = release(id);
      if (r !== undefined) handlers[r.at]!.abort(r.id, ...rest);
    },
    // Any handler's death ends the server (exit 111), as with one: the supervisor restarts it,
    // while the other handlers finish the connections they have.
    died: Promise.race(handlers.map((h) => h.died)),
    pids: handlers.flatMap((h) => h.pids),
    close() {
      for (const h of handlers) h.close();
    },
    setTicketKeys(keys) {
      for (const h of handlers) h.setTicketKeys(keys);
    },
  };
}

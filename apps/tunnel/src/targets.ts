// The `connect` targets of a service and the connection to one of them: several lines, each
// `[host:]port` (host default localhost), names resolved at start or per connection (`delay`),
// tried in order (`failover = prio`) or starting from the next one each time (`rr`), each within
// TIMEOUTconnect, as stunnel's s_connect.
import { lookup } from 'node:dns/promises';
import { connect, isIP, type Socket } from 'node:net';
import { resolvePort } from '@ucspi/server';
import { splitHostPort } from './config/values.js';
import { applyTuning, type SocketTuning } from './socket-options.js';

/** One address to connect to. */
export interface Target {
  host: string;
  port: number;
  /** The service's `socket = r:...` lines (socket-options.ts). */
  tuning?: SocketTuning | undefined;
}

/** The targets of a service. */
export class Targets {
  #resolved: Target[] | undefined;
  #next = 0;

  private constructor(
    private readonly specs: ReadonlyArray<{ host: string; port: string }>,
    private readonly failover: 'rr' | 'prio',
    private readonly tuning: SocketTuning | undefined,
  ) {}

  /**
   * From the `connect` lines. Without `delay` names are resolved now (a name that does not
   * resolve is then a configuration error).
   */
  static async create(
    lines: readonly string[],
    failover: 'rr' | 'prio',
    delay: boolean,
    tuning?: SocketTuning,
  ): Promise<Targets> {
    const t = new Targets(
      lines.map((l) => {
        const { host, port } = splitHostPort(l);
        return { host: host ?? 'localhost', port };
      }),
      failover,
      tuning,
    );
    if (!delay) t.#resolved = await t.#resolve();
    return t;
  }

  async #resolve(): Promise<Target[]> {
    const out: Target[] = [];
    for (const { host, port } of this.specs) {
      const p = /^\d+$/.test(port) ? Number(port) : await resolvePort(port);
      const tuning = this.tuning;
      if (isIP(host)) out.push({ host, port: p, tuning });
      else for (const a of await lookup(host, { all: true })) out.push({ host: a.address, port: p, tuning });
    }
    return out;
  }

  /** The addresses in the order to try them for one connection. */
  async order(): Promise<Target[]> {
    const list = this.#resolved ?? (await this.#resolve());
    if (this.failover === 'prio' || list.length < 2) return list;
    const start = this.#next++ % list.length;
    return [...list.slice(start), ...list.slice(0, start)];
  }
}

/** stunnel's words for a system error: `Connection refused (111)`. */
export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const known: Record<string, string> = {
    ECONNREFUSED: 'Connection refused (111)',
    ETIMEDOUT: 'Connection timed out (110)',
    EHOSTUNREACH: 'No route to host (113)',
    ENETUNREACH: 'Network is unreachable (101)',
    ECONNRESET: 'Connection reset by peer (104)',
    EADDRINUSE: 'Address already in use (98)',
    EACCES: 'Permission denied (13)',
    EADDRNOTAVAIL: 'Cannot assign requested address (99)',
    EPIPE: 'Broken pipe (32)',
  };
  return (e.code && known[e.code]) ?? e.message ?? String(err);
}

/** What happened to one attempt, for the log. */
export type AttemptReport = (target: Target, outcome: 'connected' | 'timeout' | Error) => void;

/**
 * Connect to the first target that answers within `timeoutMs`, in `order`. Resolves with the
 * socket (half-open allowed) or undefined when none did.
 */
export async function connectFirst(
  order: readonly Target[],
  timeoutMs: number,
  local: string | undefined,
  report: AttemptReport,
): Promise<Socket | undefined> {
  for (const target of order) {
    const socket = await new Promise<Socket | undefined>((resolve) => {
      const s = connect({
        host: target.host,
        port: target.port,
        allowHalfOpen: true,
        noDelay: true,
        ...(local ? { localAddress: local } : {}),
      });
      const timer = setTimeout(() => {
        s.destroy();
        report(target, 'timeout');
        resolve(undefined);
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        applyTuning(s, target.tuning);
        s.removeAllListeners('error');
        s.on('error', () => undefined);
        report(target, 'connected');
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        report(target, err);
        resolve(undefined);
      });
    });
    if (socket) return socket;
  }
  return undefined;
}

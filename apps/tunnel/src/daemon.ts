// The running tunnel (its services built first, services.ts): one @ucspi/server listener per
// `accept`, the local-mode sessions, the pid file, and what the signals do to them: TERM/INT/QUIT
// drain, HUP reloads (the old configuration stays when the new one is bad; listeners whose address
// did not change are kept, so no client is refused during a reload; established connections go
// on with the service they started with), USR2 lists the connections in progress.
import { unlinkSync, writeFileSync } from 'node:fs';
import { EnvBase } from '@ucspi/env';
import { createServer, type UcspiServer } from '@ucspi/server';
import { badProxyLines } from './accept-proxy.js';
import { ActiveConnections } from './active.js';
import { refusalLines, rulesSettings } from './admission.js';
import type { ServiceConfig, TunnelConfig } from './config/types.js';
import { splitHostPort } from './config/values.js';
import { isLocalMode, LocalSession } from './local-mode.js';
import { LOG, syslogSettings, type TunnelLog } from './log.js';
import { connectionLabel } from './log-id.js';
import { type RuntimeService, type ServeContext, serveConnection } from './serve.js';
import { prepareServices, ServiceSetupError } from './services.js';
import { applyTuning, tuningFor } from './socket-options.js';

/** The key of a listening address: the same `accept` text keeps its listener across a reload. */
const acceptKey = (line: string) => {
  const { host, port } = splitHostPort(line);
  return `${host ?? '::'}|${port}`;
};

interface Binding {
  server: UcspiServer;
  service: RuntimeService;
}

/** The daemon of a standalone (sectioned) configuration. */
export class Tunnel {
  #bindings = new Map<string, Binding>();
  /** Every listener made, closed ones too: their connections in progress are drained on TERM. */
  readonly #servers = new Set<UcspiServer>();
  #nextId = 0;
  /** The connections in progress (USR2 lists them). */
  readonly active = new ActiveConnections();
  #pidFile: string | undefined;
  readonly #ctx: ServeContext;
  /** stunnel's local mode: the exec+connect sections running (local-mode.ts). */
  readonly #local = new Set<LocalSession>();

  constructor(
    private config: TunnelConfig,
    readonly log: TunnelLog,
  ) {
    this.#ctx = { log, envBase: new EnvBase(process.env) };
  }

  /** Bind every service's accept addresses; on a failure nothing stays bound. */
  async bind(services: RuntimeService[]): Promise<void> {
    const fresh = new Map<string, Binding>();
    try {
      for (const service of services)
        for (const line of service.config.accept) {
          const key = acceptKey(line);
          const kept = this.#bindings.get(key);
          if (kept && !fresh.has(key)) {
            fresh.set(key, { server: kept.server, service });
            continue;
          }
          fresh.set(key, { server: await this.#listen(service.config, line), service });
        }
    } catch (err) {
      for (const [key, b] of fresh) if (this.#bindings.get(key)?.server !== b.server) b.server.close();
      throw err;
    }
    for (const [key, b] of this.#bindings)
      if (fresh.get(key)?.server !== b.server) {
        this.log.write(LOG.debug, 'ui', `Service [${b.service.config.name}] closed`);
        b.server.close();
      }
    // A kept listener takes the new configuration's rules (only now: a failed reload keeps the old).
    for (const b of fresh.values()) b.server.setRules(rulesSettings(b.service.config));
    this.#bindings = fresh;
  }

  async #listen(s: ServiceConfig, line: string): Promise<UcspiServer> {
    const { host, port } = splitHostPort(line);
    // stunnel 5 binds every address (IPv6 and IPv4) when no host is given.
    const bindHost =
      host === undefined || host === '' ? ':0' : host === '0.0.0.0' ? '0' : host === '::' ? ':0' : host;
    const current = () => this.#bindings.get(acceptKey(line))?.service.config ?? s;
    let server: UcspiServer;
    try {
      server = await createServer({
        host: bindHost,
        port,
        limit: 500,
        backlog: 128,
        remoteHost: false,
        paranoid: false,
        remoteInfo: false,
        infoTimeoutMs: 0,
        // stunnel looks up no name per connection: no reverse lookup of the local address either
        // (it cost a PTR query per connection, and seconds under load when the resolver is slow).
        localName: false,
        // stunnel's default socket options include l:TCP_NODELAY=1: the first answer after the
        // handshake does not wait behind the TLS 1.3 session tickets for a delayed ACK.
        onAccepted: (socket) => {
          socket.setNoDelay(true);
          // `socket = a:...` then `l:...` (socket-options.ts), from the binding's current service.
          applyTuning(socket, tuningFor(current().socketOptions, ['a', 'l']));
        },
        ...rulesSettings(s),
        // acceptProxy = yes: the engine reads these at each connection, so that a reload that
        // changes them applies to a kept listener too (from the binding's current service).
        get proxyProtocol() {
          return current().acceptProxy;
        },
        get proxyTimeoutMs() {
          return current().timeoutBusy * 1000;
        },
        onEvent: (e) => {
          if (e.type === 'warning') this.log.write(LOG.err, 'ui', `Service [${s.name}]: ${String(e.error)}`);
          if (e.type === 'drain' && e.connections > 0) this.log.write(...drainLine(current().name, e));
          // Refused before the tunnel saw it: a connection number of its own, as in stunnel.
          const refused = refusalLines(e, current().name) ?? badProxyLines(e, current().name);
          if (refused) {
            const id = this.#nextId++;
            this.log.label(id, connectionLabel(current().logId, id));
            for (const [level, text] of refused) this.log.write(level, id, text);
            this.log.forget(id);
          }
        },
      });
    } catch (err) {
      throw new Error(`Binding service [${s.name}] to ${line}: ${(err as Error).message}`);
    }
    this.#servers.add(server);
    this.log.write(LOG.info, 'ui', `Service [${s.name}] bound to ${server.host}:${server.port}`);
    const key = acceptKey(line);
    server.start(async (conn) => {
      const binding = this.#bindings.get(key);
      if (!binding) {
        conn.socket.destroy();
        return;
      }
      const id = this.#nextId++;
      const config = binding.service.config;
      // logId: the lines of this connection show its number, a unique word or the pid (log-id.ts).
      this.log.label(id, connectionLabel(config.logId, id));
      const traffic = this.active.open(id, config.name);
      try {
        await serveConnection(conn.socket, conn.info, binding.service, id, this.#ctx, conn.rulesEnv, traffic);
      } finally {
        this.active.close(id);
        this.log.forget(id);
      }
    });
    return server;
  }

  /** Start every local-mode section (exec and connect, no accept), as stunnel's exec_connect_start. */
  startLocal(services: RuntimeService[]): void {
    for (const service of services) {
      if (!isLocalMode(service.config)) continue;
      const session = new LocalSession(service, {
        log: this.log,
        envBase: this.#ctx.envBase,
        active: this.active,
        nextId: () => this.#nextId++,
      });
      this.#local.add(session);
      void session.done.then(() => this.#local.delete(session));
    }
  }

  /** Write the pid file (after binding, as stunnel). */
  writePid(path: string | undefined): void {
    if (!path) return;
    writeFileSync(path, `${process.pid}\n`);
    this.#pidFile = path;
    this.log.write(LOG.debug, 'ui', `Created pid file ${path}`);
  }

  /** Stop accepting, remove the pid file. */
  stop(): void {
    for (const b of this.#bindings.values()) b.server.close();
    this.#bindings.clear();
    this.#removePid();
  }

  /**
   * TERM: every port refuses at once, the pid file goes; connections in progress may finish
   * within `deadlineMs`, then the engine ends the rest visibly (a TCP reset, never a clean end a
   * client could take for the whole stream). `endNow` (a second TERM) ends them at once.
   */
  async drain(deadlineMs: number, endNow: Promise<void>): Promise<{ draining: number; ended: number }> {
    const servers = [...this.#servers];
    const drains = servers.map((s) => s.drain(deadlineMs));
    endNow.then(() => {
      for (const s of servers) void s.drain(0);
    });
    this.#removePid();
    // Local-mode programs get TERM, and their end ends their connections, within the same deadline.
    const local = [...this.#local];
    for (const l of local) l.terminate();
    const cut = () => {
      for (const l of local) l.cut();
    };
    const timer = local.length > 0 ? setTimeout(cut, deadlineMs) : undefined;
    endNow.then(cut);
    await Promise.all(local.map((l) => l.finished()));
    clearTimeout(timer);
    const results = await Promise.all(drains);
    return {
      draining: results.reduce((n, r) => n + r.draining, 0),
      ended: results.reduce((n, r) => n + r.ended, 0),
    };
  }

  #removePid(): void {
    if (this.#pidFile) {
      try {
        unlinkSync(this.#pidFile);
        this.log.write(LOG.debug, 'ui', `Removed pid file ${this.#pidFile}`);
      } catch {
        // Already gone.
      }
    }
  }

  /** HUP: the new configuration, checked and built aside; the running one stays if it fails. */
  async reload(load: () => TunnelConfig): Promise<boolean> {
    let next: TunnelConfig;
    let services: RuntimeService[];
    try {
      next = load();
      if (next.inetd) throw new Error('Inetd mode configuration cannot replace a running daemon');
      services = await prepareServices(next);
      await this.bind(services);
    } catch (err) {
      // A configuration error's own first lines (why a secret is unreadable, ...) come first, as at start.
      // A file that cannot be read (inside a chroot jail it is looked up in the jail): stunnel's words.
      const lines =
        err instanceof ServiceSetupError
          ? err.lines
          : (err as NodeJS.ErrnoException).syscall !== undefined
            ? ['Cannot open configuration file', 'Configuration failed']
            : [...((err as { before?: readonly string[] }).before ?? []), (err as Error).message];
      for (const l of lines) this.log.write(LOG.err, 'ui', l);
      this.log.write(LOG.err, 'ui', 'Failed to reload the configuration file');
      return false;
    }
    // Not re-applied on reload, as stunnel: chroot, foreground, pid, setuid, setgid.
    this.log.retarget(next.globals.output, next.globals.debugLevel);
    this.log.setSyslog(syslogSettings(next.globals));
    for (const w of next.warnings) this.log.write(LOG.warning, 'ui', warningText(w));
    this.config = next;
    this.log.write(LOG.notice, 'ui', 'Configuration successful');
    // As stunnel's reload: the local sessions running are not restarted any more (each goes on to
    // its end), and the new configuration's local sections all start afresh.
    for (const l of this.#local) l.stopRetrying();
    this.startLocal(services);
    return true;
  }

  get current(): TunnelConfig {
    return this.config;
  }
}

/** TERM's drain, per listener with connections in progress (beyond stunnel, which cuts them). */
function drainLine(
  name: string,
  e: { phase: 'start' | 'deadline' | 'now'; connections: number },
): [number, string, string] {
  const n = `${e.connections} connection(s)`;
  if (e.phase === 'start') return [LOG.notice, 'ui', `Service [${name}]: waiting for ${n} in progress`];
  const why = e.phase === 'deadline' ? 'drainTimeout reached' : 'signalled again';
  return [LOG.warning, 'ui', `Service [${name}]: ${why}, resetting ${n}`];
}

/** A warning in stunnel's line form. */
export function warningText(w: {
  where: { file: string; line: number; text: string };
  message: string;
}): string {
  return `${w.where.file}:${w.where.line}: "${w.where.text}": ${w.message}`;
}

// stunnel's local mode: a section with `exec` and `connect` and no `accept` (stunnel.c's
// exec_connect_start, client.c's exec_connect_loop and exec_connect_once). The program is started
// when the daemon starts, with no client at all, and its stdin/stdout are the local side of a
// connection to the `connect` targets: in client mode the tunnel speaks TLS to the target and the
// program plaintext; in server mode the program speaks TLS (the tunnel accepts it) and the target
// gets plaintext. With `retry = yes` the program and the connection start again a second after the
// connection ended (`Retrying an exec+connect section`, the round-robin moving on). A reload stops
// the retries of the sessions running (each goes on to its end) and starts the new configuration's
// local sections afresh, as stunnel does; TERM ends the programs and their connections.
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { childEnvList, type EnvBase } from '@ucspi/env';
import type { ChildRun } from '@ucspi/exec';
import type { ActiveConnections } from './active.js';
import type { ServiceConfig } from './config/types.js';
import { logStatus, startProgram } from './exec-program.js';
import { LOG, safe, type TunnelLog } from './log.js';
import { connectionLabel } from './log-id.js';
import { closedLog, type RuntimeService } from './serve.js';
import { serveClient } from './serve-client.js';
import { serveTls } from './serve-server.js';

/** Whether `s` is a local-mode section (stunnel's test: exec and connect; accept is then absent). */
export function isLocalMode(s: ServiceConfig): boolean {
  return s.exec !== undefined && s.connect.length > 0 && s.accept.length === 0;
}

/** What the sessions need of the daemon. */
export interface LocalHost {
  log: TunnelLog;
  envBase: EnvBase;
  active: ActiveConnections;
  /** The next connection number (stunnel counts local sessions with the accepted connections). */
  nextId(): number;
}

/** One local-mode section running: its program, its connection, and with `retry` the next ones. */
export class LocalSession {
  #retry: boolean;
  #stopped = false;
  readonly #children = new Set<ChildRun>();
  /** The local end of the connection in progress (destroying it ends the connection). */
  #plain: PairEnd | undefined;
  /** Ends the pause between two runs early. */
  #wake: (() => void) | undefined;
  /** Resolves when the section will run no more (its last connection ended). */
  readonly done: Promise<void>;

  constructor(
    private readonly service: RuntimeService,
    private readonly host: LocalHost,
  ) {
    this.#retry = service.config.retry;
    this.done = this.#loop();
  }

  /** A reload: the connection in progress goes on, and is not started again (stunnel's unbind_ports). */
  stopRetrying(): void {
    this.#retry = false;
    this.#wake?.();
  }

  /** TERM: no more runs; the program gets SIGTERM, and its end ends the connection. */
  terminate(): void {
    this.#stopped = true;
    this.stopRetrying();
    for (const c of this.#children) c.kill('SIGTERM');
  }

  /** Resolves once the section runs no more and its programs have been reaped (TERM waits for it). */
  async finished(): Promise<void> {
    await this.done;
    await Promise.all([...this.#children].map((c) => c.exited));
  }

  /** TERM's deadline or a second TERM: the connection ended at once, the program killed. */
  cut(): void {
    this.terminate();
    this.#plain?.destroy();
    for (const c of this.#children) c.kill('SIGKILL');
  }

  async #loop(): Promise<void> {
    const s = this.service.config;
    const { log } = this.host;
    log.write(LOG.debug, 'ui', `Starting exec+connect service [${s.name}]`);
    const id = this.host.nextId();
    const base = connectionLabel(s.logId, id);
    try {
      for (let run = 0; !this.#stopped; run++) {
        // With retry each run is `ID_N`, as stunnel's exec_connect_loop names them.
        log.label(id, s.retry ? `${base}_${run}` : base);
        if (run === 0) log.write(LOG.debug, id, `Service [${s.name}] started`);
        await this.#once(id);
        if (!this.#retry) break;
        log.write(LOG.info, id, 'Retrying an exec+connect section');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
        // A reload during the pause: not started again (stunnel would still run it once more).
        if (!this.#retry) break;
      }
    } finally {
      log.forget(id);
    }
  }

  /** One run: the program started, then the connection to the targets relayed to it until it ends. */
  async #once(id: number): Promise<void> {
    const s = this.service.config;
    const { log } = this.host;
    const [local, plain] = duplexPair();
    // Their users listen for errors while they use them; a late one (EPIPE) must not go unheard.
    local.on('error', () => undefined);
    plain.on('error', () => undefined);
    let child: ChildRun;
    try {
      // stunnel's variables come from the accepted socket and the TLS session: none here yet.
      child = await startProgram(local, childEnvList(this.host.envBase), s, id, log, {});
    } catch (err) {
      log.write(LOG.err, id, `exec: ${safe((err as Error).message)}`);
      local.destroy();
      return;
    }
    this.#children.add(child);
    // Reaped whenever it ends, logged by the daemon's thread as stunnel's SIGCHLD handler does.
    void child.exited.then((status) => {
      this.#children.delete(child);
      logStatus(log, 'ui', s, child.pid, status);
    });
    if (this.#stopped) child.kill('SIGTERM');
    this.#plain = plain;
    const traffic = this.host.active.open(id, s.name);
    try {
      // The program's pipes are no socket: stunnel's line for a local end without a peer address.
      log.write(LOG.notice, id, `Service [${s.name}] accepted connection`);
      const closed = closedLog(log, id, s);
      const socket = plain as unknown as Socket;
      if (s.client) {
        const timeouts = {
          idleTimeoutMs: s.timeoutIdle * 1000,
          closeTimeoutMs: s.timeoutClose * 1000,
          traffic,
        };
        await serveClient(socket, this.service, id, log, timeouts, closed);
      } else {
        // The program is the TLS peer and the targets the backend: the exec line is not the backend.
        const asBackend: RuntimeService = { ...this.service, config: { ...s, exec: undefined } };
        const info = { localIp: '', localPort: 0, remoteIp: '', remotePort: 0 };
        await serveTls(socket, info, asBackend, id, { log, envBase: this.host.envBase, traffic }, closed);
      }
    } finally {
      plain.destroy();
      this.#plain = undefined;
      this.host.active.close(id);
    }
  }
}

/**
 * One end of an in-memory connection (Node.js 22's stream.duplexPair, which Node.js 20 lacks):
 * what one end writes the other reads, with backpressure (a write waits until the peer is read)
 * and half-close (end() is the peer's EOF). Destroying an end that had not ended its writing
 * breaks the peer (ECONNRESET), and writing to a destroyed peer fails (EPIPE), as with a socket:
 * the program pumped on that end then has its pipes closed at once and gets SIGPIPE at its next
 * write, as stunnel's does when it closes its end of the program's socket.
 */
class PairEnd extends Duplex {
  peer!: PairEnd;
  /** The peer's write, waiting until this end is read. */
  waiting: ((err?: Error | null) => void) | undefined;

  constructor() {
    super({ allowHalfOpen: true });
  }

  override _read(): void {
    const cb = this.waiting;
    this.waiting = undefined;
    cb?.();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.peer.destroyed) cb(broken('EPIPE', 'write'));
    else if (this.peer.push(chunk)) cb();
    else this.peer.waiting = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.(broken('EPIPE', 'write'));
    if (!this.writableFinished && !this.peer.destroyed) this.peer.destroy(broken('ECONNRESET', 'read'));
    cb(err);
  }
}

function duplexPair(): [PairEnd, PairEnd] {
  const a = new PairEnd();
  const b = new PairEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** The error a socket gives when its peer is gone. */
function broken(code: 'EPIPE' | 'ECONNRESET', syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${syscall} ${code}`), { code, syscall });
}

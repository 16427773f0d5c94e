// The connection engine: listen -> slot -> facts -> admit -> handler -> release.
//
// One connection's life, in the order of DESIGN.md's pipeline and of ucspi-tcp's tcpserver: the
// listener accepts it (or leaves it in the kernel's backlog while every slot is taken), it takes a
// slot, its facts are looked up, the rules and the per-address limit decide, and the app's handler
// (TLS, a program, a backend) serves it. Whatever way it ends, its slot is given back in one
// `finally`, once.
//
// A little over 300 lines, on purpose: this is the one file where a connection's whole life reads
// in order; the steps themselves (facts, admission, slots, PROXY header, drain) have modules of their own.
import type { Socket } from 'node:net';
import { createDnsClient, type DnsClient } from '@ucspi/dns';
import { killIpOptions, type PausableListener } from '@ucspi/exec';
import { RulesFile } from '@ucspi/rules';
import { admit } from './admit.js';
import { type DrainResult, LiveConnections, type Tracked } from './drain.js';
import { ServerError, ServerErrorCodes } from './errors.js';
import { publish, type ServerEvent } from './events.js';
import { type FactOptions, gatherFacts, plainIp } from './facts.js';
import { listenPaused, resolveBindAddress, resolvePort } from './listen.js';
import { proxyEnv } from './proxy/env.js';
import type { ProxyHeader } from './proxy/header.js';
import { readProxyHeader } from './proxy/read.js';
import { type SlotStatus, Slots } from './slots.js';
import type { ConnectionHandler, RulesSettings, ServerOptions, UcspiServer } from './types.js';

/**
 * Bind a server (paused: until `start`, clients wait in the backlog). Name lookups go through
 * @ucspi/dns with `options.env`.
 *
 * @throws {ServerError} UCSPI_ERR_SERVER_ADDRESS, UCSPI_ERR_SERVER_PORT, UCSPI_ERR_SERVER_BIND,
 *   UCSPI_ERR_SERVER_MAXCONIP.
 */
export async function createServer(options: ServerOptions): Promise<UcspiServer> {
  const limit = options.limit ?? 40;
  const maxPerIp = Math.min(options.maxPerIp ?? 0, limit);
  if (!Number.isInteger(maxPerIp) || maxPerIp < 0)
    throw new ServerError(
      ServerErrorCodes.MAXCONIP,
      `MAXCONIP must be a whole number, not ${options.maxPerIp}`,
      false,
    );
  const dns = createDnsClient(options.env ?? process.env);
  const { host, linkLocal } = await resolveBindAddress(options.host, dns, {
    ...(options.family !== undefined ? { family: options.family } : {}),
    ...(options.ipv4Only ? { ipv4Only: true } : {}),
    ...(options.netInterface !== undefined ? { netInterface: options.netInterface } : {}),
    ...(options.forSeparator !== undefined ? { forSeparator: options.forSeparator } : {}),
  });
  const port = await resolvePort(options.port);
  // Read the peer's address at accept time: a client that resets later leaves none on the socket.
  const peers = new WeakMap<Socket, string>();
  const early: Socket[] = [];
  let onConnection = (socket: Socket) => {
    if (socket.remoteAddress) peers.set(socket, socket.remoteAddress);
    early.push(socket);
  };
  const listener = await listenPaused(host, port, options.backlog ?? 20, (s) => onConnection(s));
  const address = listener.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  return new Engine(
    options,
    listener,
    dns,
    limit,
    maxPerIp,
    host,
    boundPort,
    linkLocal,
    peers,
    early,
    (f) => {
      onConnection = f;
    },
  );
}

class Engine implements UcspiServer {
  readonly #slots: Slots;
  readonly #waiting: Socket[] = [];
  readonly #facts: FactOptions;
  #rules: RulesFile | undefined;
  #rulesSettings: RulesSettings;
  #handler: ConnectionHandler | undefined;
  #closed = false;
  readonly #live = new LiveConnections(
    () => this.#waiting.length,
    () => {
      for (const s of this.#waiting.splice(0)) s.resetAndDestroy();
    },
    (phase, connections) => this.#emit({ type: 'drain', phase, connections }),
  );

  constructor(
    private readonly options: ServerOptions,
    private readonly listener: PausableListener,
    private readonly dns: DnsClient,
    limit: number,
    private readonly maxPerIp: number,
    readonly host: string,
    readonly port: number,
    linkLocal: boolean,
    private readonly peers: WeakMap<Socket, string>,
    private readonly early: Socket[],
    private readonly setOnConnection: (f: (socket: Socket) => void) => void,
  ) {
    this.#slots = new Slots(limit);
    this.#facts = {
      remoteHost: options.remoteHost,
      paranoid: options.paranoid,
      remoteInfo: options.remoteInfo,
      infoTimeoutMs: options.infoTimeoutMs,
      ...(options.localName !== undefined ? { localName: options.localName } : {}),
      ...(options.netInterface && linkLocal ? { netInterface: options.netInterface } : {}),
    };
    this.#rulesSettings = {};
    this.setRules(options);
  }

  setRules(settings: RulesSettings): void {
    const { rules, allowNoRules, maxPerIpFromRules } = settings;
    this.#rulesSettings = {
      ...(rules !== undefined ? { rules } : {}),
      ...(allowNoRules !== undefined ? { allowNoRules } : {}),
      ...(maxPerIpFromRules !== undefined ? { maxPerIpFromRules } : {}),
    };
    // Keep the cached cdb when the path did not change.
    if (rules === undefined) this.#rules = undefined;
    else if (this.#rules?.path !== rules) this.#rules = new RulesFile(rules);
  }

  status(): SlotStatus {
    return this.#slots.status(this.#waiting.length);
  }

  start(handler: ConnectionHandler): void {
    if (this.#handler) throw new Error('server already started');
    this.#handler = handler;
    this.#emitStatus();
    const accept = (socket: Socket) => {
      if (socket.remoteAddress) this.peers.set(socket, socket.remoteAddress);
      if (this.#slots.full) this.#waiting.push(socket);
      else this.#begin(socket);
      // -c: with every slot taken, stop accepting, so that further clients wait in the kernel's
      // backlog (-b) as with the original, which does not call accept() then. Connections libuv
      // had already accepted in the same batch wait in #waiting.
      if (this.#slots.full) this.listener.pause();
    };
    this.setOnConnection(accept);
    for (const socket of this.early.splice(0)) if (!socket.destroyed) accept(socket);
    if (!this.#slots.full) this.listener.resume();
  }

  close(): void {
    this.#stopAccepting();
    for (const s of this.#waiting.splice(0)) s.destroy();
  }

  drain(deadlineMs: number): Promise<DrainResult> {
    // Nothing resumes accepting from now on; the listener closes in a moment (see drain.ts).
    this.#closed = true;
    return this.#live.drain(deadlineMs, () => this.#stopAccepting());
  }

  /**
   * Close the listening socket (the port refuses from now on; closing twice is harmless) and the
   * clients that came before `start`.
   */
  #stopAccepting(): void {
    this.#closed = true;
    this.listener.close();
    for (const s of this.early.splice(0)) s.destroy();
  }

  #emit(event: ServerEvent): void {
    publish(event, this.options.onEvent);
  }

  #emitStatus(): void {
    this.#emit({
      type: 'status',
      active: this.#slots.active,
      limit: this.#slots.limit,
      maxPerIp: this.maxPerIp,
    });
  }

  /**
   * Take a slot for `socket` and serve it. The slot is given back once: right after the
   * connection's `end` event (so that each `end` line is followed by its `status` line, as the
   * original's SIGCHLD handler prints them), or in the `finally` below whatever way the connection
   * ended without one.
   */
  #begin(socket: Socket): void {
    const slot = this.#slots.acquire();
    const tracked = this.#live.track(socket);
    this.#emitStatus();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      slot.release();
      this.#emitStatus();
      this.#next();
      // After #next: a waiting connection that took the slot keeps a drain waiting.
      tracked.untrack();
    };
    this.#serve(socket, slot, release, tracked)
      .catch((error: unknown) => {
        this.#emit({ type: 'warning', error });
        socket.destroy();
      })
      .finally(release);
  }

  /** A slot is free: the next waiting connection takes it, or accepting resumes. */
  #next(): void {
    while (this.#waiting.length > 0 && !this.#slots.full) {
      const next = this.#waiting.shift()!;
      if (!next.destroyed) this.#begin(next);
    }
    if (!this.#slots.full && !this.#closed) this.listener.resume();
  }

  async #serve(
    socket: Socket,
    slot: ReturnType<Slots['acquire']>,
    release: () => void,
    tracked: Tracked,
  ): Promise<void> {
    socket.on('error', () => undefined);
    const remoteAddress = this.peers.get(socket) ?? socket.remoteAddress;
    // A connection reset before it was accepted has no peer any more (getpeername fails): nobody
    // is there to serve, so nothing is started for it (the original, which learns the address
    // from accept(), would run a program that fails on its first write).
    if (!remoteAddress) {
      socket.destroy();
      return;
    }
    // -O (the default): replies ignore a source route the client's SYN carried; -o keeps it.
    if (!this.options.ipOptions) killIpOptions(socket);
    this.options.onAccepted?.(socket);
    // PROXYPROTO=1: the balancer's header comes first and says who the client is.
    let proxy: ProxyHeader | undefined;
    if (this.options.proxyProtocol) {
      try {
        proxy = await readProxyHeader(socket, this.options.proxyTimeoutMs ?? 10_000);
      } catch (error) {
        this.#emit({
          type: 'proxy',
          peerIp: plainIp(remoteAddress),
          peerPort: socket.remotePort ?? 0,
          error: error as Error,
        });
        socket.destroy();
        return;
      }
    }
    const info = await gatherFacts(socket, remoteAddress, this.port, this.dns, this.#facts, proxy);
    const decision = await admit(info, {
      ...(this.#rules ? { rules: this.#rules } : {}),
      allowNoRules: this.#rulesSettings.allowNoRules ?? false,
      maxPerIp: this.maxPerIp,
      maxPerIpFromRules: this.#rulesSettings.maxPerIpFromRules ?? false,
      limit: this.#slots.limit,
    });
    // A connection that ends without a program: the server's pid stands in for the original's
    // short-lived child, with that child's exit status (100 for a deny, 111 for a drop).
    const pid = process.pid;
    if (decision.verdict === 'drop') {
      this.#emit({ type: 'drop', pid, info, what: 'rules', file: decision.file, error: decision.error });
      socket.destroy();
      this.#emit({ type: 'end', pid, status: 111 << 8 });
      release();
      return;
    }
    if (decision.verdict === 'deny') {
      this.#emit({ type: 'deny', pid, info, reason: 'rules' });
      socket.destroy();
      this.#emit({ type: 'end', pid, status: 100 << 8 });
      release();
      return;
    }
    if (!slot.claimAddress(info.remoteIp, decision.maxPerIp)) {
      this.#emit({
        type: 'deny',
        pid,
        info,
        reason: 'maxconip',
        limit: decision.maxPerIp,
        fromRule: decision.fromRule,
      });
      socket.destroy();
      this.#emit({ type: 'end', pid, status: 100 << 8 });
      release();
      return;
    }
    const emit = (e: ServerEvent) => this.#emit(e);
    await this.#handler!({
      socket,
      info,
      rulesEnv: proxy
        ? [...proxyEnv(proxy, { ip: plainIp(remoteAddress), port: socket.remotePort ?? 0 }), ...decision.env]
        : decision.env,
      signal: tracked.signal,
      detach: tracked.detach,
      started: (p) => {
        tracked.setPid(p);
        emit({ type: 'ok', pid: p, info });
      },
      ended: (p, status, error) => {
        emit({ type: 'end', pid: p, status, ...(error ? { error } : {}) });
        release();
      },
    });
  }
}

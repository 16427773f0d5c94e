// The engine's public shapes: a server's options, the connection a handler gets, the server.
import type { Socket } from 'node:net';
import type { ConnectionInfo } from '@ucspi/env';
import type { DrainResult } from './drain.js';
import type { ServerEvent } from './events.js';
import type { FactOptions } from './facts.js';
import type { SlotStatus } from './slots.js';

/** What a server listens on and how it treats connections: the originals' options. */
export interface ServerOptions extends Omit<FactOptions, 'netInterface'> {
  /** The host operand: an IP address, `0` (every IPv4 address), `:0` (every IPv6 one), or a name. */
  host: string;
  /** The port operand: a number (0: any free port) or a service name. */
  port: string;
  /** -4 / -6 for a host name. */
  family?: 4 | 6;
  /** Bind IPv4 addresses only, as ucspi-tcp's tcpserver (names are looked up for A records). */
  ipv4Only?: boolean;
  /** -I: the interface of an IPv6 link-local host. */
  netInterface?: string;
  /** Separator in the address lookup messages (tcpserver `for NAME`, sslserver `for: NAME`). */
  forSeparator?: string;
  /** -b. Default 20. */
  backlog?: number;
  /** -c. Default 40. */
  limit?: number;
  /** -x: the rules cdb. */
  rules?: string;
  /** -X. */
  allowNoRules?: boolean;
  /** MAXCONIP: connections per remote address, 0 (default) for none; capped at `limit`. */
  maxPerIp?: number;
  /** Whether a rule's +MAXCONIP=n applies (sslserver). */
  maxPerIpFromRules?: boolean;
  /** -o (true): keep the IP options of the client's SYN; default false (-O drops them). */
  ipOptions?: boolean;
  /**
   * PROXYPROTO=1: every connection must begin with a PROXY protocol header (v1 or v2, detected),
   * read before anything else; its source and destination are the connection's remote and local
   * addresses for the facts, the rules, the per-address limit, the events and the program. A
   * connection without a valid header is closed (a `proxy` event) and nothing runs for it.
   * Read at each connection (with proxyTimeoutMs), so a getter can change it while the server runs.
   */
  proxyProtocol?: boolean;
  /** How long the PROXY header may take to arrive, in ms. Default 10000. Read at each connection. */
  proxyTimeoutMs?: number;
  /** The environment DNS settings come from ($DNSCACHEIP, ...). Default process.env. */
  env?: Record<string, string | undefined>;
  /** Every event, for the app's log wording. They also go to `ucspi:server:*` diagnostics channels. */
  onEvent?: (event: ServerEvent) => void;
  /**
   * Called for each connection right after it took its slot, before any lookup: tcpserver's -B
   * banner and socket options belong here. Never called for a connection that is already gone.
   */
  onAccepted?: (socket: Socket) => void;
}

/** An admitted connection, as the engine hands it to the app's handler. */
export interface Connection {
  readonly socket: Socket;
  readonly info: ConnectionInfo;
  /**
   * Variables for the program's environment beyond tcp-environ: with a PROXY header its PROXY*
   * variables (see proxyEnv), then the matching rule's (+NAME=value), in rule order.
   */
  readonly rulesEnv: ReadonlyArray<readonly [string, string]>;
  /**
   * Aborted when the server ends the connection before it is over (a drain's deadline passed, or
   * `drain(0)`): the engine has already reset the socket and sent SIGTERM to the program given to
   * `started`; a handler whose connection also lives elsewhere (another process) ends it there.
   */
  readonly signal: AbortSignal;
  /**
   * The program was handed the socket itself and no longer needs this process (tcpserver): a
   * drain neither waits for this connection nor ends it.
   */
  detach(): void;
  /** The handler started the connection's program (or stands in for one): the `ok` event. */
  started(pid: number): void;
  /**
   * The program ended with this raw wait status (`error`: it could not be run): the `end` event,
   * and the slot is given back at once (the handler should have nothing left to do).
   */
  ended(pid: number, status: number, error?: NodeJS.ErrnoException): void;
}

/** Serves one admitted connection; resolves when the connection is over. */
export type ConnectionHandler = (connection: Connection) => Promise<void>;

/** A bound server, not yet accepting until {@link UcspiServer.start}. */
export interface UcspiServer {
  /** The bound address and port (port 0 resolved). */
  readonly host: string;
  readonly port: number;
  /** Accept connections and hand the admitted ones to `handler`. */
  start(handler: ConnectionHandler): void;
  /** The slots now. */
  status(): SlotStatus;
  /** Stop accepting; connections waiting for a slot are closed, those being served go on. */
  close(): void;
  /**
   * Stop accepting at once (the listening socket is closed: the port refuses), serve the
   * connections in progress and those already waiting for a slot, and resolve when none is left
   * or `deadlineMs` has passed; then end the rest visibly (TCP reset, SIGTERM to the program;
   * `signal` aborted) and resolve once their ends are reported (at most about a second later).
   * A further call returns the same drain, its deadline brought forward (`0`: end the rest now).
   * Detached connections are neither waited for nor ended.
   */
  drain(deadlineMs: number): Promise<DrainResult>;
  /**
   * Replace the rules settings (a configuration reload that keeps the listener): connections
   * admitted from now on use them; the cdb of an unchanged path stays cached.
   */
  setRules(settings: RulesSettings): void;
}

/** The admission settings {@link UcspiServer.setRules} replaces. */
export type RulesSettings = Pick<ServerOptions, 'rules' | 'allowNoRules' | 'maxPerIpFromRules'>;

// What the engine publishes. Libraries never print: every event goes to the app's callback (which
// turns it into its own log wording) and to a node:diagnostics_channel channel `ucspi:server:<type>`.
import { channel } from 'node:diagnostics_channel';
import type { ConnectionInfo } from '@ucspi/env';

/** The slot counts: `status` lines. */
export interface StatusEvent {
  type: 'status';
  /** Connections holding a slot. */
  active: number;
  /** -c. */
  limit: number;
  /** The global per-address limit (MAXCONIP), 0 for none. */
  maxPerIp: number;
}

/**
 * A connection's program started (`pid PID from IP`, then `ok PID ...`): `pid` is the program's;
 * for a connection that ends without one (deny, drop) the server's own pid stands in for the
 * original's short-lived child.
 */
export interface OkEvent {
  type: 'ok';
  pid: number;
  info: ConnectionInfo;
}

/** A connection refused by the rules or a per-address limit (`deny PID ...`); no program runs. */
export interface DenyEvent {
  type: 'deny';
  pid: number;
  info: ConnectionInfo;
  /** `rules`: a deny rule; `maxconip`: the per-address limit `limit` was reached. */
  reason: 'rules' | 'maxconip';
  limit?: number;
  /** For `maxconip`: whether the limit came from the rule (+MAXCONIP=n) rather than the environment. */
  fromRule?: boolean;
}

/**
 * A connection dropped before its program could start, with the original child's reason: the
 * rules file could not be read (`warning: dropping connection, unable to read FILE: REASON`).
 */
export interface DropEvent {
  type: 'drop';
  pid: number;
  info: ConnectionInfo;
  what: 'rules';
  file: string;
  error: unknown;
}

/**
 * A connection is over (`end PID status WSTAT`): `status` is the raw wait status of its program,
 * or the original child's (25600 for a deny, exit 100; 28416 for a drop, exit 111). `error` is
 * set when the program could not be run at all.
 */
export interface EndEvent {
  type: 'end';
  pid: number;
  status: number;
  error?: NodeJS.ErrnoException;
}

/**
 * PROXYPROTO=1 and the connection did not begin with a valid PROXY header (missing, malformed, cut
 * short or late): it was closed before anything else; `peerIp`/`peerPort` are the TCP peer's.
 */
export interface ProxyEvent {
  type: 'proxy';
  peerIp: string;
  peerPort: number;
  error: Error;
}

/**
 * A drain: `start`, the listener was closed and `connections` are in progress (or waiting for a
 * slot); `deadline`, the drain deadline passed and the server is ending the `connections` left;
 * `now`, the same at once (`drain(0)`).
 */
export interface DrainEvent {
  type: 'drain';
  phase: 'start' | 'deadline' | 'now';
  connections: number;
}

/** A connection's handler failed unexpectedly; the connection was closed. */
export interface WarningEvent {
  type: 'warning';
  error: unknown;
}

/** Everything the engine publishes. */
export type ServerEvent =
  | StatusEvent
  | OkEvent
  | DenyEvent
  | DropEvent
  | EndEvent
  | ProxyEvent
  | DrainEvent
  | WarningEvent;

const channels = {
  status: channel('ucspi:server:status'),
  ok: channel('ucspi:server:ok'),
  deny: channel('ucspi:server:deny'),
  drop: channel('ucspi:server:drop'),
  end: channel('ucspi:server:end'),
  proxy: channel('ucspi:server:proxy'),
  drain: channel('ucspi:server:drain'),
  warning: channel('ucspi:server:warning'),
} as const;

/** Publish `event` on its channel and hand it to `listener`. */
export function publish(event: ServerEvent, listener: ((e: ServerEvent) => void) | undefined): void {
  const ch = channels[event.type];
  if (ch.hasSubscribers) ch.publish(event);
  listener?.(event);
}

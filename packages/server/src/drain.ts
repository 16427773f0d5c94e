// Draining: the connections in progress, and how a server that stopped accepting waits for them
// and, past its deadline, ends the rest so that their clients see it.
//
// A connection whose only copy of the socket is here (a TLS pump, a program behind pipes) dies
// with this process; one whose program was handed the socket itself (tcpserver's) does not, and is
// "detached": a drain neither waits for it nor ends it, as ucspi-tcp's tcpserver, which exits at
// once on TERM while its children go on serving.
import type { Socket } from 'node:net';

/** What {@link UcspiServer.drain} resolves with. */
export interface DrainResult {
  /** Connections in progress when the drain began (detached ones not counted). */
  draining: number;
  /** Connections still in progress at the deadline (or at `drain(0)`), ended by the server. */
  ended: number;
}

/** One connection in progress, as the engine tracks it. */
export interface Tracked {
  /** Aborted when the server ends the connection. */
  readonly signal: AbortSignal;
  /** The connection's program (from `started`): sent SIGTERM when the connection is ended. */
  setPid(pid: number): void;
  /** The program owns the socket now: a drain leaves this connection alone. */
  detach(): void;
  /** The connection is over (its slot was given back). */
  untrack(): void;
}

interface Entry {
  socket: Socket;
  controller: AbortController;
  pid?: number;
}

/**
 * After the connections were ended, how long a drain still waits for their handlers to report
 * their programs' ends (`end` events), so that those lines are written before the process exits;
 * a program that ignores SIGTERM is not waited for longer.
 */
const END_GRACE_MS = 1000;

/**
 * End one connection visibly: a TCP reset (SO_LINGER 0), never a FIN that a TLS client could take
 * for the end of the stream, then SIGTERM to its program. The socket goes first, so that the
 * program's end cannot let a pump send close_notify on a truncated stream.
 */
function endVisibly(entry: Entry): void {
  entry.controller.abort();
  const { socket } = entry;
  try {
    socket.resetAndDestroy();
  } catch {
    // Not a TCP handle any more (handed over): the app's abort listener ends it where it lives.
    socket.destroy();
  }
  if (entry.pid !== undefined && entry.pid !== process.pid) {
    try {
      process.kill(entry.pid, 'SIGTERM');
    } catch {
      // Already gone: its end is on its way.
    }
  }
}

/** The connections in progress and the drain of them; the engine owns one. */
export class LiveConnections {
  readonly #live = new Set<Entry>();
  #listenerClosed: Promise<void> | undefined;
  #drain: Promise<DrainResult> | undefined;
  #deadline: ReturnType<typeof setTimeout> | undefined;
  #settle: (() => void) | undefined;
  #endNow: ((atDeadline: boolean) => void) | undefined;
  #deadlineAt: number | undefined;

  /**
   * @param waiting accepted connections waiting for a slot (they are drained too).
   * @param endWaiting resets those.
   * @param report the drain's phases, for the `drain` event.
   */
  constructor(
    private readonly waiting: () => number,
    private readonly endWaiting: () => void,
    private readonly report: (phase: 'start' | 'deadline' | 'now', connections: number) => void,
  ) {}

  /** Connections a drain waits for: those here and those waiting for a slot. */
  get holding(): number {
    return this.#live.size + this.waiting();
  }

  track(socket: Socket): Tracked {
    const entry: Entry = { socket, controller: new AbortController() };
    this.#live.add(entry);
    const forget = () => {
      this.#live.delete(entry);
      this.changed();
    };
    return {
      signal: entry.controller.signal,
      setPid: (pid) => {
        entry.pid = pid;
      },
      detach: forget,
      untrack: forget,
    };
  }

  /** A connection ended or a waiting one was dropped: a drain may be over. */
  changed(): void {
    if (this.#drain && this.holding === 0) this.#settle?.();
  }

  /**
   * Close the listener (`closeListener`), wait until no connection is left or `deadlineMs`
   * passed, then end the rest. A further call returns the same drain, its deadline moved earlier
   * if the new one is sooner (`0`: at once).
   */
  drain(deadlineMs: number, closeListener: () => void): Promise<DrainResult> {
    if (!this.#listenerClosed) {
      // The listener is closed after the event loop's next poll phase (two check phases later),
      // where libuv accepts every connection whose handshake the kernel has completed (they are
      // drained too): closing a listening socket resets those it still queues, and a reset,
      // unlike a refusal, is not retried by a load balancer.
      this.#listenerClosed = new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve))).then(
        () => {
          closeListener();
          this.report('start', this.holding);
        },
      );
    }
    return this.#listenerClosed.then(() => this.#run(deadlineMs));
  }

  #run(deadlineMs: number): Promise<DrainResult> {
    if (this.#drain) {
      if (deadlineMs <= 0) this.#endNow?.(false);
      else this.#arm(deadlineMs);
      return this.#drain;
    }
    const result: DrainResult = { draining: this.holding, ended: 0 };
    this.#drain = new Promise<DrainResult>((resolve) => {
      let grace: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        clearTimeout(this.#deadline);
        clearTimeout(grace);
        this.#endNow = () => undefined;
        this.#settle = () => undefined;
        resolve(result);
      };
      this.#settle = finish;
      this.#endNow = (atDeadline) => {
        this.#endNow = () => undefined;
        clearTimeout(this.#deadline);
        result.ended = this.holding;
        if (result.ended === 0) return finish();
        this.report(atDeadline ? 'deadline' : 'now', result.ended);
        this.endWaiting();
        for (const entry of [...this.#live]) endVisibly(entry);
        if (this.holding === 0) return finish();
        grace = setTimeout(finish, END_GRACE_MS);
      };
    });
    if (this.holding === 0) this.#settle?.();
    else if (deadlineMs <= 0) this.#endNow?.(false);
    else this.#arm(deadlineMs);
    return this.#drain;
  }

  /** Set the deadline, or bring it forward (a later one never postpones it). */
  #arm(deadlineMs: number): void {
    const at = Date.now() + deadlineMs;
    if (this.#deadlineAt !== undefined && this.#deadlineAt <= at) return;
    this.#deadlineAt = at;
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => this.#endNow?.(true), deadlineMs);
  }
}

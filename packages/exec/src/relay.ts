// Two connections relayed to each other: the tunnel's pump between a TLS socket and a backend
// socket (or two plain ones). pumpStreams serves a connection and a program's two pipes, where the
// program's input is closed once flushed; here each side is one duplex, so a side's EOF is passed
// on as a half-close (FIN, or close_notify for TLS) and the other direction keeps flowing.
import diagnostics from 'node:diagnostics_channel';
import type { Duplex } from 'node:stream';
import { PUMP_BUFFER_BYTES } from './pump.js';

const timeoutChannel = diagnostics.channel('ucspi:exec:timeout');
const closeTimeoutChannel = diagnostics.channel('ucspi:exec:close-timeout');

/** Options of {@link relayStreams}. */
export interface RelayOptions {
  /** Give up when no byte moves in either direction for this many ms (stunnel's TIMEOUTidle). 0: never. */
  idleTimeoutMs?: number;
  /**
   * Once one side has ended and everything was passed on, give the other this many ms of silence
   * to end too (stunnel's TIMEOUTclose). 0 or undefined: no deadline.
   */
  closeTimeoutMs?: number;
  /** Bytes that may wait for a destination before its source is paused (default 256 KiB). */
  bufferBytes?: number;
  /**
   * Called when the relay gives up (`idle`, or a side failed: `error`), just before both sides are
   * destroyed: the caller may end them its own way first (stunnel resets TCP connections then).
   */
  onAbort?: (reason: 'idle' | 'error') => void;
}

/** How a relay ended, and how many bytes went each way. */
export interface RelayResult {
  /** Bytes read from `a` and written to `b`, and the other way. */
  aToB: number;
  bToA: number;
  /** `end`: both sides ended; `idle`, `close-timeout`: a timer fired; `error`: a side failed (`error`, `side`). */
  reason: 'end' | 'idle' | 'close-timeout' | 'error';
  error?: Error;
  side?: 'a' | 'b';
}

/**
 * Relay bytes between `a` and `b` both ways, with backpressure (a source is paused once
 * `bufferBytes` wait for its destination, resumed on 'drain') and half-close (a side's EOF ends
 * the other side's writable once everything was written, and the other direction goes on).
 * Resolves when both directions have ended, a side failed, or a timer fired; both are destroyed
 * then. Both streams should allow half-open connections. Never rejects.
 */
export function relayStreams(a: Duplex, b: Duplex, options: RelayOptions = {}): Promise<RelayResult> {
  return new Promise<RelayResult>((resolve) => {
    const limit = options.bufferBytes ?? PUMP_BUFFER_BYTES;
    const idle = options.idleTimeoutMs ?? 0;
    const closeAfter = options.closeTimeoutMs ?? 0;
    const count = { aToB: 0, bToA: 0 };
    let last = performance.now();
    let finished = false;
    let idleTimer: NodeJS.Timeout | undefined;
    let closeTimer: NodeJS.Timeout | undefined;
    let doneDirections = 0;

    const finish = (reason: RelayResult['reason'], error?: Error, side?: 'a' | 'b') => {
      if (finished) return;
      finished = true;
      if (idleTimer) clearTimeout(idleTimer);
      if (closeTimer) clearTimeout(closeTimer);
      if (reason === 'idle' || reason === 'error') options.onAbort?.(reason);
      a.destroy();
      b.destroy();
      resolve({ ...count, reason, ...(error ? { error } : {}), ...(side ? { side } : {}) });
    };
    // Timers re-arm themselves for the rest of their interval instead of being reset per chunk.
    const onIdle = () => {
      const rest = idle - (performance.now() - last);
      if (rest > 1) {
        idleTimer = setTimeout(onIdle, rest);
        return;
      }
      if (timeoutChannel.hasSubscribers) timeoutChannel.publish({ idleTimeoutMs: idle });
      finish('idle');
    };
    const onClose = () => {
      const rest = closeAfter - (performance.now() - last);
      if (rest > 1) {
        closeTimer = setTimeout(onClose, rest);
        return;
      }
      if (closeTimeoutChannel.hasSubscribers) closeTimeoutChannel.publish({ closeTimeoutMs: closeAfter });
      finish('close-timeout');
    };
    if (idle) idleTimer = setTimeout(onIdle, idle);

    const directionDone = () => {
      doneDirections++;
      if (doneDirections === 2) finish('end');
      else if (closeAfter && !closeTimer) {
        last = performance.now();
        closeTimer = setTimeout(onClose, closeAfter);
      }
    };

    const pipe = (src: Duplex, dst: Duplex, key: 'aToB' | 'bToA') => {
      let ending = false;
      const end = () => {
        if (ending) return;
        ending = true;
        // 'finish' once everything was written and the end sent (FIN, close_notify for TLS).
        if (dst.destroyed || dst.writableEnded) directionDone();
        else dst.end(() => directionDone());
      };
      const resume = () => src.resume();
      src.on('data', (chunk: Buffer) => {
        last = performance.now();
        count[key] += chunk.length;
        if (ending) return;
        if (!dst.write(chunk) && dst.writableLength >= limit) {
          src.pause();
          dst.once('drain', resume);
        }
      });
      src.on('end', end);
      // Closed without an error and without EOF: nothing more comes from it.
      src.on('close', end);
      // Already over before the relay began: its events will not come again.
      if (src.readableEnded || (src.destroyed && !src.errored)) end();
    };
    pipe(a, b, 'aToB');
    pipe(b, a, 'bToA');
    a.on('error', (err: Error) => finish('error', err, 'a'));
    b.on('error', (err: Error) => finish('error', err, 'b'));
    a.resume();
    b.resume();
    // A side that failed before the relay began has emitted its events already.
    for (const [s, side] of [
      [a, 'a'],
      [b, 'b'],
    ] as const)
      if (s.errored) finish('error', s.errored, side);
  });
}

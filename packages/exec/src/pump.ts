// The byte pump between a connection and a program's pipes: backpressure, half-close both ways,
// the idle timer (-w) and the close deadline. Shared by every layout that pumps (sslserver's
// normal mode, UCSPI-TLS, the privilege-separated handler, tcpclient's prog mode over TLS).
import diagnostics from 'node:diagnostics_channel';
import type { Duplex } from 'node:stream';

const timeoutChannel = diagnostics.channel('ucspi:exec:timeout');
const closeTimeoutChannel = diagnostics.channel('ucspi:exec:close-timeout');

/** Options of {@link pumpStreams} (and of spawnPumped, which passes them on). */
export interface PumpOptions {
  /**
   * sslserver -w: give up when no byte moves in either direction for this many ms
   * (the TLS stream is destroyed, the program's pipes closed). 0 or undefined: no limit.
   */
  idleTimeoutMs?: number;
  /** Bytes sent to the peer before anything the program writes (sslserver -B). */
  banner?: Buffer | string;
  /**
   * Called when the idle timer fires, before the streams are destroyed. {@link spawnPumped}
   * defaults it to killing the program with SIGTERM (sslserver -w gives up on the program too).
   */
  onIdleTimeout?: () => void;
  /**
   * Called once the program's first bytes have been handed to the connection's socket. sslserver
   * keeps TCP_NODELAY on during the TLS handshake and until this point (the handshake's trailing
   * records, such as TLS 1.3 session tickets, and the first response then leave at once instead of
   * waiting for a delayed ACK), and turns Nagle's algorithm on here unless -D was given.
   */
  onFirstOutput?: () => void;
  /**
   * Called once per side when it is under pressure: `to` when a write to the program had to wait
   * (its input is full), `from` when a read from the program filled the whole read buffer (its
   * output was full). {@link spawnPumped} grows the pipe then (see growPipe).
   */
  onPressure?: (side: 'to' | 'from') => void;
  /**
   * Called when `stream` fails (a reset, a TLS alert or a bad record), before everything is
   * destroyed: sslserver logs `unable to speak TLS for pid: PID REASON` then.
   */
  onStreamError?: (err: Error) => void;
  /**
   * How many bytes may wait in memory for each destination before its source is paused (default
   * 256 KiB, {@link PUMP_BUFFER_BYTES}). A TLS socket's own high-water mark is 16 KiB: pausing there
   * would stop and restart reading the program's output (two epoll_ctl calls and a JS turn) for
   * every 64 KiB it writes.
   */
  bufferBytes?: number;
  /**
   * The close deadline: once everything the program wrote has been sent and the end sent
   * (close_notify and FIN for TLS), a peer that has not ended its side and sends nothing for this
   * many ms is given up on, as stunnel's TIMEOUTclose. Without it a silent peer would hold the
   * connection until the idle timeout. 0 or undefined: no deadline.
   */
  closeTimeoutMs?: number;
  /** Called when the close deadline passed, before everything is destroyed. */
  onCloseTimeout?: () => void;
}

/** The default of {@link PumpOptions.bufferBytes}. */
export const PUMP_BUFFER_BYTES = 256 * 1024;

/**
 * Pump bytes between a connection and a pair of program pipes (`from` is what the program writes,
 * `to` what it reads). Backpressure: pause the source when write() returns false with at least
 * `bufferBytes` waiting, resume on 'drain'. Each direction ends gracefully: the peer's EOF ends `to` once everything
 * has been written to the program (then its descriptor is closed: the program reads EOF); the
 * program's EOF ends `stream` once everything has been written to the peer (for TLS: then
 * close_notify and FIN). Resolves once both directions have ended (or the stream failed, or the
 * idle timer fired) and `exited` has settled; everything is destroyed at that point.
 */
export function pumpStreams(
  stream: Duplex,
  from: NodeJS.ReadableStream & { destroy?: () => void },
  to: NodeJS.WritableStream & { destroy?: () => void },
  options: PumpOptions = {},
  exited: Promise<unknown> = Promise.resolve(),
): Promise<void> {
  return new Promise<void>((resolve) => {
    let upDone = false; // peer -> program: `to` flushed and closed
    let downDone = false; // program -> peer: `stream` flushed and ended
    const idle = options.idleTimeoutMs ?? 0;
    // -w: the time of the last byte in either direction; the timer re-arms itself for the rest
    // of the interval instead of being refreshed on every chunk.
    let last = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const onTimer = () => {
      const rest = idle - (performance.now() - last);
      if (rest > 1) {
        timer = setTimeout(onTimer, rest);
        return;
      }
      if (timeoutChannel.hasSubscribers) timeoutChannel.publish({ idleTimeoutMs: idle });
      options.onIdleTimeout?.();
      finishAll();
    };
    if (idle) timer = setTimeout(onTimer, idle);
    // The close deadline, armed once the program's side is done and the peer's is not; like the
    // idle timer it re-arms itself while the peer still sends.
    const closeAfter = options.closeTimeoutMs ?? 0;
    let closeTimer: NodeJS.Timeout | undefined;
    const onCloseTimer = () => {
      // The peer is not silent while it waits for the program to read what it sent.
      if (upPaused) last = performance.now();
      const rest = closeAfter - (performance.now() - last);
      if (rest > 1) {
        closeTimer = setTimeout(onCloseTimer, rest);
        return;
      }
      if (closeTimeoutChannel.hasSubscribers) closeTimeoutChannel.publish({ closeTimeoutMs: closeAfter });
      options.onCloseTimeout?.();
      finishAll();
    };
    let finished = false;
    const finishAll = () => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      if (closeTimer) clearTimeout(closeTimer);
      stream.destroy();
      from.destroy?.();
      to.destroy?.();
      exited.then(() => resolve());
    };
    const upEnded = () => {
      if (upDone) return;
      upDone = true;
      if (downDone) finishAll();
    };
    const downEnded = () => {
      if (downDone) return;
      downDone = true;
      if (upDone) finishAll();
      else if (closeAfter && !finished) {
        last = performance.now();
        closeTimer = setTimeout(onCloseTimer, closeAfter);
      }
    };

    // peer -> program
    let toEnding = false; // nothing more is written to the program
    let toBroken = false; // the program closed its stdin
    const endTo = () => {
      if (toBroken) upEnded();
      if (toEnding) return;
      toEnding = true;
      // A pipe cannot be shut down for writing as a socket can: close it once flushed.
      to.end();
    };
    to.on('finish', () => {
      to.destroy?.();
      upEnded();
    });
    to.on('error', () => {
      // The program closed its stdin (EPIPE): what the peer still sends is read and dropped until
      // its EOF (a lingering close). Ending here would close the socket with unread bytes in its
      // receive queue, and the kernel then answers with a reset that throws away whatever of the
      // program's output is still in the send queue. The close deadline and the idle timer bound
      // the wait: dropped bytes do not count as traffic.
      toEnding = true;
      toBroken = true;
      if (upPaused) resumeStream();
      if (stream.readableEnded || stream.destroyed) upEnded();
    });
    let upPaused = false;
    const resumeStream = () => {
      upPaused = false;
      stream.resume();
    };
    const limit = options.bufferBytes ?? PUMP_BUFFER_BYTES;
    const pressure = options.onPressure;
    let toPressed = false;
    let fromPressed = false;
    // TLS hands over at most 16 KiB at a time, several per network read: gather the records of one
    // pass of the poll phase into one writev, so the program wakes up once per batch, not per record.
    const w = to as NodeJS.WritableStream & {
      cork?: () => void;
      uncork?: () => void;
      writableLength?: number;
    };
    let corked = false;
    const uncork = () => {
      corked = false;
      w.uncork?.();
    };
    stream.on('data', (chunk: Buffer) => {
      if (toEnding) return;
      last = performance.now();
      if (!corked && w.cork) {
        corked = true;
        w.cork();
        setImmediate(uncork);
      }
      if (!to.write(chunk) && (w.writableLength ?? limit) >= limit) {
        if (pressure && !toPressed) {
          toPressed = true;
          pressure('to');
        }
        upPaused = true;
        stream.pause();
        to.once('drain', resumeStream);
      }
    });
    stream.on('end', endTo);
    // A broken connection (reset, TLS error): nothing more can come or go.
    stream.on('error', (err: Error) => {
      if (!finished) options.onStreamError?.(err);
      finishAll();
    });
    stream.on('close', () => {
      // Closed without an error: the program still gets what was read, then EOF.
      endTo();
      downEnded();
    });

    // program -> peer
    if (options.banner !== undefined && options.banner.length > 0) stream.write(options.banner);
    let streamEnding = false;
    const endStream = () => {
      if (streamEnding) return;
      streamEnding = true;
      // 'finish' once everything has been written and the end sent (close_notify for TLS).
      stream.end(() => downEnded());
    };
    const resumeFrom = () => (from as NodeJS.ReadableStream).resume();
    let firstOutput = options.onFirstOutput;
    from.on('data', (chunk: Buffer) => {
      last = performance.now();
      // libuv reads at most 64 KiB at a time: a full read means the program's output was full.
      if (pressure && !fromPressed && chunk.length >= 65536) {
        fromPressed = true;
        pressure('from');
      }
      if (streamEnding) return;
      let ok: boolean;
      if (firstOutput) {
        const cb = firstOutput;
        firstOutput = undefined;
        ok = stream.write(chunk, () => cb());
      } else ok = stream.write(chunk);
      if (!ok && stream.writableLength >= limit) {
        from.pause();
        stream.once('drain', resumeFrom);
      }
    });
    from.on('end', endStream);
    from.on('error', endStream);
    // A socket accepted with pauseOnConnect stays paused until resumed explicitly.
    stream.resume();
    (from as NodeJS.ReadableStream).resume();
    // The connection may have gone before the pump started (a client that resets right after its
    // handshake, while the program was being started): its 'close' has been emitted already and
    // will not come again. Without this the program would wait for input until -w.
    if (stream.destroyed) {
      if (stream.errored) {
        options.onStreamError?.(stream.errored);
        finishAll();
      } else {
        endTo();
        downEnded();
      }
    }
  });
}

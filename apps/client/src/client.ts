// Client mode (no program): standard input to the connection, the connection to standard output,
// like telnet or `openssl s_client`. Standard input's EOF half-closes the connection (for TLS,
// close_notify then FIN) and the server's answer is still read; the server's EOF ends the run
// once everything has been written out, whether or not standard input has ended.
import { createReadStream, fstatSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { type Duplex, Writable } from 'node:stream';
import { pumpStreams } from '@ucspi/exec';

/** A stream on one of this process's descriptors: a socket for pipes and sockets, else a file stream. */
function fdStream(
  fd: number,
  mode: 'read' | 'write',
): NodeJS.ReadableStream & NodeJS.WritableStream & { destroy(): void } {
  const st = fstatSync(fd);
  if (st.isFIFO() || st.isSocket())
    return new Socket({
      fd,
      readable: mode === 'read',
      writable: mode === 'write',
      allowHalfOpen: true,
    }) as never;
  if (mode === 'read') return createReadStream('', { fd, autoClose: false }) as never;
  return new SyncWriter(fd) as never;
}

/**
 * Output to a file, a terminal or /dev/null, written synchronously as Node.js writes its own
 * stdout there: an asynchronous file stream makes a threadpool round trip for each TLS record
 * (16 KiB), a quarter of the rate.
 */
class SyncWriter extends Writable {
  constructor(private readonly fd: number) {
    super({ highWaterMark: 256 * 1024 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    try {
      for (let off = 0; off < chunk.length; ) off += writeSync(this.fd, chunk, off);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }
}

/** How client mode ended. */
export interface ClientResult {
  /** The connection failed (reset, TLS alert) or stalled (-a): why. */
  error?: string;
}

/**
 * Copy between `connection` and the descriptors `stdinFd`/`stdoutFd` until the server's EOF (or
 * a failure); `idleTimeoutMs` (-a) ends a connection on which nothing moved for that long.
 */
export function clientMode(
  connection: Duplex,
  opts: { stdinFd: number; stdoutFd: number; idleTimeoutMs: number },
): Promise<ClientResult> {
  const input = fdStream(opts.stdinFd, 'read');
  const output = fdStream(opts.stdoutFd, 'write');
  return new Promise((resolve) => {
    let error: string | undefined;
    const finish = () => resolve(error === undefined ? {} : { error });
    // The server's EOF, written out: the end, even while standard input is still open (a terminal).
    output.on('finish', finish);
    // Standard output went away (`| head -1`): nothing more can be delivered.
    output.on('error', finish);
    pumpStreams(connection, input, output, {
      idleTimeoutMs: opts.idleTimeoutMs,
      onIdleTimeout: () => {
        error = 'timed out';
      },
      onStreamError: (err) => {
        error = (err as { reason?: string }).reason ?? (err as NodeJS.ErrnoException).code ?? err.message;
      },
    }).then(finish);
  });
}

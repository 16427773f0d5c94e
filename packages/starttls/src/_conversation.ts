import type { Socket } from 'node:net';
import { publishLine } from './diagnostics.js';
import {
  StartTlsError,
  type StartTlsErrorCode,
  StartTlsErrorCodes,
  type StartTlsErrorDetails,
} from './errors.js';
import type { Dialogue, StartTlsClientOptions, StartTlsServerOptions } from './protocol.js';

/** Default deadline of a plaintext dialogue. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Default longest line. */
export const DEFAULT_MAX_LINE_LENGTH = 8192;
// A binary message (MySQL greeting, LDAP response) may be larger than a text line, never huge.
const MAX_BINARY_MESSAGE = 65_536;

type Options = StartTlsClientOptions & StartTlsServerOptions;

/**
 * The core behind {@link Dialogue}: reads from the socket only while a read waits for more bytes
 * (the socket is paused otherwise, so nothing is read ahead of the protocol), frames lines, enforces
 * the line limit and the deadline, and publishes every line. `detach()` hands the socket back,
 * paused, with whatever the peer sent beyond what the protocol read.
 */
export class Conversation implements Dialogue {
  readonly side: 'client' | 'server';
  readonly protocol: string;
  readonly options: Readonly<Options>;
  readonly maxLineLength: number;
  private readonly socket: Socket;
  private readonly tls: boolean;
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private error: StartTlsError | undefined;
  private waiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private onAbort: ((e: Error) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly onData: (chunk: Buffer) => void;
  private readonly onEnd: () => void;
  private readonly onError: (err: Error) => void;

  constructor(socket: Socket, side: 'client' | 'server', protocol: string, options: Options, tls: boolean) {
    this.socket = socket;
    this.side = side;
    this.protocol = protocol;
    this.options = options;
    this.tls = tls;
    this.maxLineLength = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
    this.onData = (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      // Read on demand only: a paused socket leaves later bytes in the kernel (or the stream).
      socket.pause();
      this.wake();
    };
    this.onEnd = () => {
      this.ended = true;
      this.wake();
    };
    this.onError = (err: Error) =>
      this.abort(
        new StartTlsError(StartTlsErrorCodes.SOCKET, `${protocol}: connection failed: ${err.message}`, {
          protocol,
          cause: err,
        }),
      );
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    socket.pause();
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.timer = setTimeout(() => {
      this.abort(
        new StartTlsError(
          StartTlsErrorCodes.TIMEOUT,
          `${protocol}: no STARTTLS within ${timeoutMs} ms${tls ? ' (after TLS)' : ''}`,
          { protocol },
        ),
      );
    }, timeoutMs);
  }

  /** Runs a protocol step; rejects as soon as the conversation is aborted (deadline, socket error). */
  run<T>(step: (d: Dialogue) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.onAbort = reject;
      if (this.error) return reject(this.error);
      step(this).then(resolve, reject);
    });
  }

  /** Stops listening and returns the socket to the caller, paused; returns bytes received and not read. */
  detach(): Buffer {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  /** Fails the conversation from outside a read (deadline, socket error). The first failure wins. */
  abort(err: StartTlsError): void {
    if (this.error) return;
    this.error = err;
    clearTimeout(this.timer);
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(err);
    this.onAbort?.(err);
  }

  greeted(lines: readonly string[]): void {
    // Only the plaintext client dialogue has a greeting to report; a copy, so the caller cannot
    // change what the protocol goes on to check.
    if (this.side === 'client' && !this.tls) this.options.onGreeting?.([...lines]);
  }

  fail(code: StartTlsErrorCode, message: string, details: StartTlsErrorDetails = {}): never {
    throw new StartTlsError(code, `${this.protocol}: ${message}`, { protocol: this.protocol, ...details });
  }

  async readLine(): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl >= 0) {
        const end = nl > 0 && this.buf[nl - 1] === 0x0d ? nl - 1 : nl;
        if (end > this.maxLineLength) this.tooLong(end);
        const line = this.buf.toString('utf8', 0, end);
        this.buf = this.buf.subarray(nl + 1);
        this.publish('received', line);
        return line;
      }
      // +1: the CR of a line of exactly maxLineLength may already be here.
      if (this.buf.length > this.maxLineLength + 1) this.tooLong(this.buf.length);
      await this.more();
    }
  }

  async readBytes(n: number): Promise<Buffer> {
    if (n > Math.max(this.maxLineLength, MAX_BINARY_MESSAGE)) this.tooLong(n);
    while (this.buf.length < n) await this.more();
    const out = Buffer.from(this.buf.subarray(0, n));
    this.buf = this.buf.subarray(n);
    this.publish('received', hex(out));
    return out;
  }

  async readUntil(pattern: RegExp, maxBytes = this.maxLineLength): Promise<string> {
    for (;;) {
      const text = this.buf.toString('latin1');
      pattern.lastIndex = 0;
      const m = pattern.exec(text);
      if (m) {
        const end = m.index + m[0].length;
        const out = text.slice(0, end);
        this.buf = this.buf.subarray(end);
        this.publish('received', out);
        return out;
      }
      if (this.buf.length > maxBytes) this.tooLong(this.buf.length);
      await this.more();
    }
  }

  writeLine(line: string, shown?: string): void {
    this.publish('sent', shown ?? line);
    this.socket.write(`${line}\r\n`);
  }

  write(data: Buffer | string, shown?: string): void {
    if (shown !== undefined) this.publish('sent', shown);
    else if (typeof data === 'string')
      for (const l of data.replace(/\r?\n$/, '').split(/\r?\n/)) this.publish('sent', l);
    else this.publish('sent', hex(data));
    this.socket.write(data);
  }

  private tooLong(length: number): never {
    this.fail(
      StartTlsErrorCodes.LINE_TOO_LONG,
      `the peer sent a line of ${length} bytes or more, longer than the limit of ${this.maxLineLength}`,
    );
  }

  private publish(direction: 'sent' | 'received', line: string): void {
    publishLine({ protocol: this.protocol, side: this.side, direction, line, tls: this.tls });
  }

  private more(): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    if (this.ended) {
      const partial = this.buf.length ? ` in the middle of a line (${this.buf.length} bytes)` : '';
      return Promise.reject(
        new StartTlsError(
          StartTlsErrorCodes.EOF,
          `${this.protocol}: the ${this.side === 'client' ? 'server' : 'client'} closed the connection during the STARTTLS dialogue${partial}`,
          { protocol: this.protocol },
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.socket.resume();
    });
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve();
  }
}

/** A short rendering of binary bytes for diagnostics. */
function hex(data: Buffer): string {
  const shown = data.subarray(0, 64).toString('hex');
  return `<${data.length} bytes: ${shown}${data.length > 64 ? '...' : ''}>`;
}

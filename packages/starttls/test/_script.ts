import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import type { TestPki } from '@ucspi/testkit';
import { type StartTlsClientOptions, type StartTlsProtocol, startTlsClient } from '../src/index.js';

/**
 * A transcript step of a scripted peer:
 * - `S: text` the server sends text and CRLF; `S~ text` text without CRLF; `S= hex` raw bytes.
 *   Consecutive S steps go out in one write (one packet on loopback, as a real server's reply).
 * - `S| ...` as `S:`, but written separately from the steps before it, on a later turn of the
 *   event loop (a reply split across packets).
 * - (Played as the client, `C` steps are sent and `S` steps expected, the same way round.)
 * - `C: text` the peer must receive this line (`C: /regex/` matches instead); `C~ text` exactly
 *   these bytes; `C= hex` exactly these bytes.
 * - `TLS` the scripted server starts TLS on the connection (server side of the handshake); `TLS*`
 *   the same when the client may already have sent its ClientHello (no go-ahead to wait for).
 * - `EOF` the scripted side must see the other side close the connection; `DRAIN` reads anything
 *   until it does.
 */
export type Step = string;

/** Reads lines and byte counts from a socket on demand (the socket is paused between reads). */
class Reader {
  private buf = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;
  private readonly onData = (b: Buffer) => {
    this.buf = Buffer.concat([this.buf, b]);
    this.socket.pause();
    this.wake?.();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.wake?.();
  };
  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onEnd);
    socket.pause();
  }
  private async more(): Promise<void> {
    if (this.ended) throw new Error(`peer closed; unread: ${JSON.stringify(this.buf.toString('latin1'))}`);
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      this.socket.resume();
    });
    this.wake = undefined;
  }
  async line(): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl >= 0) {
        const line = this.buf.toString('latin1', 0, nl).replace(/\r$/, '');
        this.buf = this.buf.subarray(nl + 1);
        return line;
      }
      await this.more();
    }
  }
  async bytes(n: number): Promise<Buffer> {
    while (this.buf.length < n) await this.more();
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  async eof(): Promise<void> {
    while (!this.ended) {
      await this.more().catch(() => {});
      if (this.buf.length)
        throw new Error(`expected EOF, got ${JSON.stringify(this.buf.toString('latin1'))}`);
    }
  }
  async drain(): Promise<void> {
    while (!this.ended) {
      this.buf = Buffer.alloc(0);
      await this.more().catch(() => {});
    }
  }
  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onEnd);
    this.socket.pause();
    return this.buf;
  }
}

function chunkOf(step: Step): Buffer {
  const body = step.slice(3);
  if (step[1] === '=') return Buffer.from(body.replace(/\s+/g, ''), 'hex');
  if (step[1] === '~') return Buffer.from(body, 'latin1');
  return Buffer.from(`${body}\r\n`, 'latin1');
}

/** Plays `steps` as the server side on `socket`; rejects on the first difference. */
export function playServer(socket: Socket, steps: readonly Step[], pki: TestPki): Promise<void> {
  return play(socket, steps, pki, 'server');
}

/**
 * Plays `steps` as the client side on `socket`: `C` steps are sent, `S` steps expected, `TLS` is
 * the client side of the handshake. Rejects on the first difference.
 */
export function playClient(socket: Socket, steps: readonly Step[], pki: TestPki): Promise<void> {
  return play(socket, steps, pki, 'client');
}

async function play(
  socket: Socket,
  steps: readonly Step[],
  pki: TestPki,
  role: 'server' | 'client',
): Promise<void> {
  const mine = role === 'server' ? 'S' : 'C';
  const theirs = role === 'server' ? 'C' : 'S';
  let sock: Socket = socket;
  let reader = new Reader(sock);
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as Step;
    if (step === 'TLS' || step === 'TLS*') {
      const rest = reader.detach();
      let under: Duplex = sock;
      if (step === 'TLS*') {
        // The client starts TLS without waiting for an answer (MySQL): its ClientHello may already
        // be here; the server side goes on over a stream that replays it first.
        under = prefixed(sock, rest);
      } else if (rest.length || sock.readableLength) {
        throw new Error(`client pipelined ${rest.length + sock.readableLength} bytes before TLS`);
      }
      if (role === 'client') {
        sock = await clientHandshake(pki)(under as Socket);
      } else {
        const tls = new TLSSocket(under as Socket, {
          isServer: true,
          key: readFileSync(pki.serverKey),
          cert: readFileSync(pki.serverChain),
        });
        await once(tls, 'secure');
        sock = tls;
      }
      reader = new Reader(sock);
    } else if (step === 'EOF') {
      await reader.eof();
    } else if (step === 'DRAIN') {
      await reader.drain();
    } else if (step.startsWith(mine)) {
      if (step.startsWith(`${mine}| `)) await new Promise((r) => setImmediate(r));
      const chunks = [chunkOf(step)];
      const same = new RegExp(`^${mine}[:~=] `);
      while (i + 1 < steps.length && same.test(steps[i + 1] as string))
        chunks.push(chunkOf(steps[++i] as Step));
      sock.write(Buffer.concat(chunks));
    } else if (step.startsWith(`${theirs}: `)) {
      const want = step.slice(3);
      const got = await reader.line();
      const ok =
        want.startsWith('/') && want.endsWith('/') ? new RegExp(want.slice(1, -1)).test(got) : got === want;
      if (!ok) throw new Error(`step ${i}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
    } else if (step.startsWith(`${theirs}~ `) || step.startsWith(`${theirs}= `)) {
      const want = step.startsWith(`${theirs}= `)
        ? Buffer.from(step.slice(3).replace(/\s+/g, ''), 'hex')
        : Buffer.from(step.slice(3), 'latin1');
      const got = await reader.bytes(want.length);
      if (!got.equals(want)) {
        throw new Error(`step ${i}: expected ${want.toString('hex')}, got ${got.toString('hex')}`);
      }
    } else {
      throw new Error(`bad step ${JSON.stringify(step)}`);
    }
  }
}

function prefixed(sock: Socket, rest: Buffer): Duplex {
  const d = new Duplex({
    read() {
      sock.resume();
    },
    write(chunk, _enc, cb) {
      sock.write(chunk, cb);
    },
    final(cb) {
      sock.end();
      cb();
    },
    destroy(err, cb) {
      sock.destroy();
      cb(err);
    },
  });
  if (rest.length) d.push(rest);
  sock.on('data', (b) => {
    if (!d.push(b)) sock.pause();
  });
  sock.on('end', () => d.push(null));
  return d;
}

/** A one-connection scripted server on a free loopback port, and the outcome of its transcript. */
export async function scriptedServer(
  steps: readonly Step[],
  pki: TestPki,
): Promise<{ port: number; done: Promise<void>; server: Server }> {
  const server = createServer({ allowHalfOpen: false });
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const done = accepted.then(async ([socket]) => {
    server.close();
    socket.on('error', () => {});
    try {
      await playServer(socket, steps, pki);
    } finally {
      socket.destroy();
    }
  });
  done.catch(() => {});
  return { port, done, server };
}

/** The caller's handshake: node:tls on the raw socket, trusting the test CA, SNI localhost. */
export function clientHandshake(pki: TestPki): (s: Socket) => Promise<TLSSocket> {
  return (s) =>
    new Promise((resolve, reject) => {
      const t = tlsConnect({ socket: s, ca: readFileSync(pki.caBundle), servername: 'localhost' });
      t.once('secureConnect', () => resolve(t));
      t.once('error', reject);
    });
}

/** The server's handshake for {@link startTlsServer}: a TLSSocket made at once on the raw socket. */
export function serverHandshake(pki: TestPki): (s: Socket) => Promise<TLSSocket> {
  const key = readFileSync(pki.serverKey);
  const cert = readFileSync(pki.serverChain);
  return (s) => {
    const t = new TLSSocket(s, { isServer: true, key, cert });
    return new Promise((resolve, reject) => {
      t.once('secure', () => resolve(t));
      t.once('error', reject);
    });
  };
}

/** Connects to `port` and runs startTlsClient with the test handshake. */
export function runClient(
  port: number,
  protocol: string,
  pki: TestPki,
  options: StartTlsClientOptions = {},
): Promise<TLSSocket> {
  return runClientWith(port, protocol, pki, options);
}

/** {@link runClient} for a protocol name or object. */
export async function runClientWith(
  port: number,
  protocol: string | StartTlsProtocol,
  pki: TestPki,
  options: StartTlsClientOptions = {},
): Promise<TLSSocket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  return startTlsClient(socket, protocol, clientHandshake(pki), { helo: 'client.test', ...options });
}

/** Runs the client against a scripted server and returns the error it failed with (or an Error saying it succeeded). */
export async function clientFailure(
  pki: TestPki,
  protocol: string,
  steps: Step[],
  options: StartTlsClientOptions = {},
): Promise<{ code: string; temporary: boolean; message: string; reply?: string }> {
  const { port, done } = await scriptedServer(steps, pki);
  const err = await runClient(port, protocol, pki, options).then(
    (tls) => {
      tls.destroy();
      return Object.assign(new Error('the dialogue succeeded'), { code: 'NONE', temporary: false });
    },
    (e: unknown) => e as { code: string; temporary: boolean; message: string; reply?: string },
  );
  await done;
  return err;
}

/** The next line from a (TLS) socket, bounded. */
export async function readLineFrom(socket: Socket, timeoutMs = 10_000): Promise<string> {
  const reader = new Reader(socket);
  const timer = setTimeout(() => socket.destroy(new Error('readLineFrom: timed out')), timeoutMs);
  try {
    return await reader.line();
  } finally {
    clearTimeout(timer);
    const rest = reader.detach();
    if (rest.length) socket.unshift(rest);
  }
}

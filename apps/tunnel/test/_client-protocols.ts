// Helpers of the client-mode protocol tests: the same plain-client session through Debian's
// stunnel4 and through ucspi-tunnel, compared; scripted one-protocol servers (with TLS after the
// go-ahead) for what real servers cannot be made to do.
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { TLSSocket } from 'node:tls';
import { freePort, type LogWatch, type TestPki, toolAvailable, watchLog } from '@ucspi/testkit';
import { expect } from 'vitest';
import { startDaemon, stopAll, writeConfig } from './_helpers.js';

const DAEMONS = ['stunnel4', 'ucspi-tunnel'] as const;
type Daemon = (typeof DAEMONS)[number];
export const hasStunnel = toolAvailable('stunnel4');
const daemons = hasStunnel ? DAEMONS : (['ucspi-tunnel'] as const);
const fakes: Server[] = [];

/** Close the scripted servers started so far (afterAll). */
export async function closeFakes(): Promise<void> {
  for (const s of fakes.splice(0)) await new Promise<void>((r) => s.close(() => r()));
}

/** A client-mode section to `connect` with `protocol`, verifying the server's certificate. */
export const clientConf = (pki: TestPki, accept: number, connect: number, protocol: string, extra = '') =>
  `foreground = yes\ndebug = info\n[p]\nclient = yes\naccept = 127.0.0.1:${accept}\n` +
  `connect = 127.0.0.1:${connect}\nprotocol = ${protocol}\nCAfile = ${pki.caBundle}\n` +
  `verifyChain = yes\ncheckHost = localhost\n${extra}`;

/** A plain client of the tunnel: what it received so far (a LogWatch on the socket), and send. */
export async function plainClient(
  port: number,
): Promise<{ seen: LogWatch; send(t: string): void; gone: Promise<void> }> {
  const socket: Socket = tcpConnect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const gone = new Promise<void>((r) => socket.once('close', () => r()));
  socket.on('error', () => undefined); // stunnel resets the client after a failed dialogue
  socket.on('end', () => socket.end());
  const seen = watchLog(socket);
  await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
  return { seen, send: (t) => socket.write(t), gone };
}

export interface Outcome {
  /** What the plain client received, dates (exim's greeting) blanked. */
  transcript: string;
  /** The daemon's log lines at levels 0-5 for connection 0, past the accept and connect lines. */
  lines: string[];
}

/**
 * Starts `daemon` on `conf(port)`, runs `talk` as the plain client and waits until the connection
 * is over on both sides; returns what the client saw and what the daemon logged.
 */
export async function through(
  dir: string,
  daemon: Daemon,
  conf: (accept: number) => string,
  talk: (c: Awaited<ReturnType<typeof plainClient>>) => Promise<void>,
): Promise<Outcome> {
  const port = await freePort();
  const file = writeConfig(dir, `${daemon}-${port}.conf`, conf(port));
  const d = await startDaemon(daemon, file);
  const c = await plainClient(port);
  await talk(c);
  await c.gone;
  await d.log.waitFor(/LOG5\[0\]: Connection (closed|reset)/);
  const lines = [...d.log.text().matchAll(/LOG[0-5]\[0\]: (.*)/g)]
    .map((m) => m[1] as string)
    .filter(
      (l) => !/accepted connection|s_connect: connected|connected remote server|Certificate accepted/.test(l),
    );
  const transcript = c.seen.text().replace(/\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [-+]\d{4}/g, 'DATE');
  return { transcript, lines };
}

/** Runs the same case through stunnel4 (when installed) and ucspi-tunnel; returns both, ours last. */
export async function both(
  dir: string,
  conf: (accept: number) => string,
  talk: (c: Awaited<ReturnType<typeof plainClient>>) => Promise<void>,
): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const d of daemons) {
    out.push(await through(dir, d, conf, talk));
    await stopAll();
  }
  if (out.length === 2) expect(out[1]).toEqual(out[0]);
  return out;
}

/**
 * A one-protocol plaintext server on loopback: sends `greeting`, answers each line with
 * `answer(line)`; an answer of `TLS` is sent as `go` and the connection becomes the server side
 * of TLS, where each line is echoed as `211 you said LINE`. `heard` keeps every line received,
 * those inside TLS as `TLS: LINE`.
 */
export async function fakeServer(
  pki: TestPki,
  greeting: string,
  answer: (line: string) => string,
  go = '',
): Promise<{ port: number; heard: string[] }> {
  const heard: string[] = [];
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.write(`${greeting}\r\n`);
    let buf = '';
    const onData = (b: Buffer) => {
      buf += b.toString('latin1');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        heard.push(line);
        const reply = answer(line);
        if (reply !== 'TLS') {
          socket.write(`${reply}\r\n`);
          continue;
        }
        socket.off('data', onData);
        socket.write(`${go}\r\n`);
        const tls = new TLSSocket(socket, {
          isServer: true,
          key: readFileSync(pki.serverKey),
          cert: readFileSync(pki.serverChain),
        });
        tls.on('error', () => undefined);
        let inner = '';
        tls.on('data', (d: Buffer) => {
          inner += d.toString();
          for (let n = inner.indexOf('\n'); n >= 0; n = inner.indexOf('\n')) {
            const l = inner.slice(0, n).replace(/\r$/, '');
            inner = inner.slice(n + 1);
            heard.push(`TLS: ${l}`);
            if (l === 'QUIT') tls.end('205 bye\r\n');
            else tls.write(`211 you said ${l}\r\n`);
          }
        });
        return;
      }
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fakes.push(server);
  return { port: (server.address() as { port: number }).port, heard };
}

/** Waits for the tunnel's end of the connection (the client sends nothing). */
export const listen = async (c: Awaited<ReturnType<typeof plainClient>>) => {
  await c.gone;
};

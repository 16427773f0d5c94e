// PROXYPROTO in the engine, with real sockets: the header's client is the connection's everywhere
// (facts, rules, events, PROXY* variables), the bytes after it reach the handler (TLS included,
// also when they came in the same segment as the header), and a connection without a valid header
// is closed with a `proxy` event, its slot given back, the server still serving.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, createServer as netServer } from 'node:net';
import { join } from 'node:path';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import { compileRules } from '@ucspi/rules';
import { createTestPki, tempDir, waitUntil } from '@ucspi/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type Connection,
  type ConnectionHandler,
  createServer,
  proxyV2Header,
  type ServerEvent,
  type UcspiServer,
} from '../src/index.js';

const dir = tempDir();
const pki = createTestPki(join(dir.path, 'pki'));
afterAll(() => dir.cleanup());
const servers: UcspiServer[] = [];
const closers: Array<() => void> = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const c of closers.splice(0)) c();
});

async function start(handler: ConnectionHandler, extra: { rules?: string; proxyTimeoutMs?: number } = {}) {
  const events: ServerEvent[] = [];
  const server = await createServer({
    host: '127.0.0.1',
    port: '0',
    remoteHost: false,
    paranoid: false,
    remoteInfo: false,
    infoTimeoutMs: 1000,
    localName: 'L',
    env: { DNSCACHEIP: '127.0.0.1' },
    proxyProtocol: true,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  servers.push(server);
  server.start(handler);
  return { server, events };
}

/** Send `bytes` in one write, then read everything until the server closes. */
function exchange(port: number, bytes: Buffer | string): Promise<string> {
  return new Promise((resolve) => {
    const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let out = '';
    c.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.on('error', () => resolve(out));
    c.on('close', () => resolve(out));
    c.on('end', () => c.end());
    c.end(bytes);
  });
}

/** Bytes waiting in the receive queue of the 127.0.0.1 socket local:remote (/proc/net/tcp). */
function receiveQueue(local: number, remote: number): number {
  const hex = (port: number) => `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === hex(local) && f[2] === hex(remote)) return Number.parseInt(f[4]!.split(':')[1]!, 16);
  }
  return -1;
}

/** Answers with its facts and the first line the client sent after the header. */
const facts: ConnectionHandler = async (conn) => {
  conn.started(1);
  conn.socket.resume();
  const [line] = (await once(conn.socket, 'data')) as [Buffer];
  const { remoteIp, remotePort, localIp, localPort } = conn.info;
  const env = Object.fromEntries(conn.rulesEnv);
  await new Promise<void>((r) =>
    conn.socket.end(`${remoteIp}:${remotePort} ${localIp}:${localPort} ${JSON.stringify(env)} ${line}`, r),
  );
  conn.ended(1, 0);
};

describe('PROXYPROTO in the engine', () => {
  it("v1 and v2: the header's client and destination are the connection's; the bytes after it reach the handler", async () => {
    const { server } = await start(facts);
    const v1 = await exchange(server.port, 'PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nhello\n');
    expect(v1).toMatch(
      /^192\.0\.2\.7:56324 198\.51\.100\.1:443 \{"PROXYVERSION":"1","PROXYPEERIP":"127\.0\.0\.1","PROXYPEERPORT":"\d+"\} hello\n$/,
    );
    const header = proxyV2Header(
      { ip: '2001:db8::7', port: 1234 },
      { ip: '2001:db8::1', port: 993 },
      { authority: 'imap.example' },
    );
    const v2 = await exchange(server.port, Buffer.concat([header, Buffer.from('again\n')]));
    expect(v2).toMatch(/^2001:db8::7:1234 2001:db8::1:993 .*"PROXYAUTHORITY":"imap\.example"\} again\n$/);
    // LOCAL (a balancer's health check): the connection's own addresses.
    const local = await exchange(
      server.port,
      Buffer.concat([proxyV2Header(undefined, undefined), Buffer.from('x\n')]),
    );
    expect(local).toMatch(/^127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ .* x\n$/);
  });

  it("the rules and their variables see the header's client", async () => {
    const rules = join(dir.path, 'proxy.cdb');
    await compileRules(Buffer.from('192.0.2.:deny\n:allow,WHO="any"\n'), rules, `${rules}.tmp`);
    const { server, events } = await start(facts, { rules });
    expect(await exchange(server.port, 'PROXY TCP4 192.0.2.9 127.0.0.1 1 2\r\nx\n')).toBe('');
    expect(events.find((e) => e.type === 'deny')).toMatchObject({ info: { remoteIp: '192.0.2.9' } });
    expect(await exchange(server.port, 'PROXY TCP4 203.0.113.9 127.0.0.1 1 2\r\nx\n')).toMatch(
      /"WHO":"any"\} x/,
    );
  });

  it('TLS behind the header: the ClientHello that came in the same segment as the header is not lost', async () => {
    const { server } = await start(async (conn) => {
      conn.started(1);
      const tls = new TLSSocket(conn.socket, {
        isServer: true,
        key: readFileSync(pki.serverKey),
        cert: readFileSync(pki.serverChain),
      });
      await once(tls, 'secure');
      await new Promise<void>((r) => tls.end(`tls from ${conn.info.remoteIp}\n`, r));
      conn.ended(1, 0);
    });
    // A balancer of our own: it reads the client's whole first TLS record, then sends the header
    // and that record to the server in one write.
    const balancer = netServer((client) => {
      let first = Buffer.alloc(0);
      const onData = (b: Buffer) => {
        first = Buffer.concat([first, b]);
        if (first.length < 5 || first.length < 5 + first.readUInt16BE(3)) return;
        client.off('data', onData);
        const upstream = connect({ port: server.port, host: '127.0.0.1' }, () => {
          upstream.write(
            Buffer.concat([Buffer.from('PROXY TCP4 198.51.100.20 127.0.0.1 5555 443\r\n'), first]),
          );
          client.pipe(upstream).pipe(client);
        });
        upstream.on('error', () => client.destroy());
      };
      client.on('data', onData);
      client.on('error', () => undefined);
    });
    balancer.listen(0, '127.0.0.1');
    await once(balancer, 'listening');
    closers.push(() => balancer.close());
    const port = (balancer.address() as { port: number }).port;
    const answer = await new Promise<string>((resolve, reject) => {
      const c = tlsConnect({
        port,
        host: '127.0.0.1',
        ca: readFileSync(pki.rootCert),
        servername: 'localhost',
      });
      let out = '';
      c.on('data', (b: Buffer) => {
        out += b.toString();
      });
      c.on('error', reject);
      c.on('end', () => resolve(out));
    });
    expect(answer).toBe('tls from 198.51.100.20\n');
  }, 10_000);

  it('bytes that come after the header wait in the kernel for the handler (a program given the descriptor gets them)', async () => {
    let handed: (conn: Connection) => void = () => undefined;
    const got = new Promise<Connection>((resolve) => {
      handed = resolve;
    });
    const { server } = await start(async (conn) => {
      handed(conn);
      await once(conn.socket, 'close');
    });
    const c = connect({ port: server.port, host: '127.0.0.1' });
    c.write('PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r\n');
    const conn = await got;
    await new Promise((resolve) => c.write('later\n', resolve));
    // In the server's receive queue, and still there after the event loop has polled the socket
    // again: not read into the socket's buffer behind the handler's back.
    await waitUntil(() => receiveQueue(conn.socket.localPort!, conn.socket.remotePort!) === 6, 5000);
    for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(receiveQueue(conn.socket.localPort!, conn.socket.remotePort!)).toBe(6);
    expect(conn.socket.readableLength).toBe(0);
    conn.socket.resume();
    const [chunk] = (await once(conn.socket, 'data')) as [Buffer];
    expect(chunk.toString()).toBe('later\n');
    c.destroy();
    conn.socket.destroy();
  });

  it('no header, a bad one, one cut short or late: closed with a proxy event, nothing served, the next client served', async () => {
    let served = 0;
    const { server, events } = await start(
      async (conn) => {
        served++;
        await facts(conn);
      },
      { proxyTimeoutMs: 300 },
    );
    expect(await exchange(server.port, 'GET / HTTP/1.0\r\n\r\n')).toBe('');
    expect(await exchange(server.port, 'PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n')).toBe('');
    expect(await exchange(server.port, 'PROXY TCP4 1.2.3')).toBe('');
    // Late: the client sends half a header and waits; the deadline closes it.
    const late = connect({ port: server.port, host: '127.0.0.1' });
    late.write('PROXY TCP4 ');
    late.on('error', () => undefined);
    await once(late, 'close');
    const reasons = events
      .filter((e) => e.type === 'proxy')
      .map((e) => (e as { error: Error }).error.message);
    expect(reasons).toEqual([
      'no PROXY header',
      'v1 port "99999"',
      'the header was cut short',
      'no complete PROXY header within 300 ms',
    ]);
    expect(events.find((e) => e.type === 'proxy')).toMatchObject({ peerIp: '127.0.0.1' });
    expect(served).toBe(0);
    expect(server.status()).toMatchObject({ active: 0 });
    expect(await exchange(server.port, 'PROXY UNKNOWN\r\nok\n')).toMatch(/^127\.0\.0\.1:\d+ .* ok\n$/);
  });
});

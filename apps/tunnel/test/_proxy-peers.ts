// The peers of the PROXY protocol tests: a backend that parses the header it gets with
// @ucspi/server's parser, a TLS client, and Debian's HAProxy in front of the tunnel.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { type ProxyHeader, parseProxyHeader } from '@ucspi/server';
import { freePort, startHaproxy, waitUntil } from '@ucspi/testkit';

/** The client's source address behind the balancer. */
export const FROM_2 = { localAddress: '127.0.0.2' } as ConnectionOptions;

/** What a backend connection got: the PROXY header parsed with @ucspi/server, and the bytes after it. */
export interface Received {
  header: ProxyHeader;
  rest: string;
}

/** A backend that parses the PROXY header each connection begins with and answers `ok` at the end. */
export async function parsingBackend(
  servers: Server[],
): Promise<{ port: number; next(): Promise<Received> }> {
  const received: Array<Promise<Received>> = [];
  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    received.push(
      new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        socket.on('data', (b: Buffer) => chunks.push(b));
        socket.on('error', reject);
        socket.on('end', () => {
          socket.end('ok');
          const all = Buffer.concat(chunks);
          try {
            const parsed = parseProxyHeader(all);
            if (!parsed) throw new Error(`no complete PROXY header in ${all.length} bytes`);
            resolve({ header: parsed.header, rest: all.subarray(parsed.length).toString('latin1') });
          } catch (err) {
            reject(err);
          }
        });
      }),
    );
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  let taken = 0;
  return {
    port: (server.address() as { port: number }).port,
    next: async () => {
      await waitUntil(() => received.length > taken, 10_000);
      return (await received[taken++]) as Received;
    },
  };
}

/** A TLS client: sends `text`, half-closes, reads to the end; its source port and cipher too. */
export async function tlsClient(
  port: number,
  text: string,
  options: ConnectionOptions = {},
): Promise<{ reply: string; localPort: number; cipher: string; version: string }> {
  const c = tlsConnect({
    host: '127.0.0.1',
    port,
    rejectUnauthorized: false,
    allowHalfOpen: true,
    ...options,
  } as ConnectionOptions);
  c.on('error', () => undefined);
  await once(c, 'secureConnect');
  const facts = {
    localPort: c.localPort as number,
    cipher: c.getCipher().name,
    version: c.getProtocol() ?? '',
  };
  let reply = '';
  c.on('data', (b: Buffer) => {
    reply += b.toString('latin1');
  });
  c.end(text);
  await once(c, 'end');
  c.destroy();
  return { reply, ...facts };
}

/** HAProxy in TCP mode in front of `backendPort`: one front port for send-proxy, one for v2. */
export async function haproxy(
  dir: string,
  backendPort: number,
  balancers: ChildProcess[],
): Promise<{ v1: number; v2: number }> {
  const v1 = await freePort();
  const v2 = await freePort();
  const sections = [
    `listen one\n  bind 127.0.0.1:${v1}\n  server s 127.0.0.1:${backendPort} send-proxy`,
    `listen two\n  bind 127.0.0.1:${v2}\n  server s 127.0.0.1:${backendPort} send-proxy-v2`,
  ];
  balancers.push(await startHaproxy(dir, sections, [v1, v2]));
  return { v1, v2 };
}

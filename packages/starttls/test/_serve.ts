import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { TestPki } from '@ucspi/testkit';
import type { StartTlsServerOptions } from '../src/index.js';
import { startTlsServer } from '../src/index.js';
import { playClient, readLineFrom, type Step, serverHandshake } from './_script.js';

export interface Outcome {
  port: number;
  server: Server;
  /** The first connection's result: the TLS socket's echo done, or the error. */
  result: Promise<{ ok: true } | { ok: false; err: { code?: string } }>;
}

/** A server running startTlsServer on its first connection, then greeting and echoing one line over TLS. */
export async function serve(
  pki: TestPki,
  protocol: string,
  options: StartTlsServerOptions = {},
  app?: (tls: TLSSocket) => Promise<void>,
): Promise<Outcome> {
  const server = createServer();
  const first = once(server, 'connection') as Promise<[Socket]>;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const result = first.then(async ([socket]) => {
    server.close();
    try {
      const tls: TLSSocket = await startTlsServer(socket, protocol, serverHandshake(pki), {
        hostname: 'mx.test',
        ...options,
      });
      await app?.(tls);
      tls.write('hello over TLS\r\n');
      const line = await readLineFrom(tls);
      tls.end(`pong ${line}\r\n`);
      return { ok: true as const };
    } catch (err) {
      return { ok: false as const, err: err as { code?: string } };
    }
  });
  return { port: (server.address() as { port: number }).port, server, result };
}

export async function scripted(
  pki: TestPki,
  protocol: string,
  steps: Step[],
  options: StartTlsServerOptions = {},
) {
  const s = await serve(pki, protocol, options);
  const socket = connect(s.port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  const played = playClient(socket, steps, pki).finally(() => socket.destroy());
  return { played, result: s.result };
}

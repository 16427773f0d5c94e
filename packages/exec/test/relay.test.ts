// relayStreams between real loopback TCP connections: both directions, half-close each way, a
// large transfer with backpressure, the idle and close deadlines, a reset.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { relayStreams } from '../src/index.js';

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A connected pair of loopback sockets (client end, server end), both half-open. */
async function pair(): Promise<[Socket, Socket]> {
  const server = createServer({ allowHalfOpen: true });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise<void>((r) => c.once('connect', () => r()));
  return [c, await accepted];
}

const readAll = (s: Socket) =>
  new Promise<Buffer>((resolve) => {
    const out: Buffer[] = [];
    s.on('data', (b: Buffer) => out.push(b));
    s.on('end', () => resolve(Buffer.concat(out)));
  });

describe('relayStreams', () => {
  it('relays both ways; an end on one side is passed on while the other direction goes on', async () => {
    // client ... [a relay b] ... backend
    const [client, a] = await pair();
    const [b, backend] = await pair();
    const done = relayStreams(a, b);
    const atBackend = readAll(backend);
    client.end('question');
    expect((await atBackend).toString()).toBe('question');
    // The backend answers after the client's end and then ends too.
    const atClient = readAll(client);
    backend.end('answer after EOF');
    expect((await atClient).toString()).toBe('answer after EOF');
    const r = await done;
    expect(r).toMatchObject({ reason: 'end', aToB: 8, bToA: 16 });
    expect(a.destroyed && b.destroyed).toBe(true);
  });

  it('moves 8 MiB each way intact under backpressure', async () => {
    const [client, a] = await pair();
    const [b, backend] = await pair();
    const done = relayStreams(a, b, { bufferBytes: 64 * 1024 });
    const up = Buffer.alloc(8 << 20, 'u');
    const down = Buffer.alloc(8 << 20, 'd');
    const atBackend = readAll(backend);
    const atClient = readAll(client);
    client.end(up);
    backend.end(down);
    expect((await atBackend).equals(up)).toBe(true);
    expect((await atClient).equals(down)).toBe(true);
    expect(await done).toMatchObject({ reason: 'end', aToB: up.length, bToA: down.length });
  });

  it('gives up on a silent connection after the idle timeout', async () => {
    const [client, a] = await pair();
    const [b] = await pair();
    // The relay's side is destroyed: the client reads its end.
    const ended = new Promise((r) => client.once('end', r));
    client.on('error', () => undefined);
    client.resume();
    const r = await relayStreams(a, b, { idleTimeoutMs: 200 });
    expect(r.reason).toBe('idle');
    await ended;
  });

  it('gives a side that does not end its own half the close deadline', async () => {
    const [client, a] = await pair();
    const [b, backend] = await pair();
    client.resume();
    const t0 = performance.now();
    const done = relayStreams(a, b, { closeTimeoutMs: 300 });
    backend.end('bye'); // the client never ends
    const r = await done;
    expect(r.reason).toBe('close-timeout');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('ends on a reset of one side, saying which', async () => {
    const [client, a] = await pair();
    const [b, backend] = await pair();
    backend.on('error', () => undefined);
    const done = relayStreams(a, b);
    client.resetAndDestroy();
    const r = await done;
    expect(r.reason).toBe('error');
    expect(r.side).toBe('a');
  });
});

// drain(): the listener closes at once, connections in progress (and those waiting for a slot)
// are served to their end, the rest is ended visibly at the deadline or at drain(0), and detached
// connections are left alone. Real sockets on loopback, a real process as the "program".
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Connection,
  type ConnectionHandler,
  createServer,
  type ServerEvent,
  type UcspiServer,
} from '../src/index.js';

const servers: UcspiServer[] = [];
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const c of cleanups.splice(0)) c();
});

async function start(handler: ConnectionHandler, limit = 40) {
  const events: ServerEvent[] = [];
  const server = await createServer({
    host: '127.0.0.1',
    port: '0',
    limit,
    remoteHost: false,
    paranoid: false,
    remoteInfo: false,
    infoTimeoutMs: 1000,
    localName: 'L',
    env: { DNSCACHEIP: '127.0.0.1' },
    onEvent: (e) => events.push(e),
  });
  servers.push(server);
  server.start(handler);
  return { server, events };
}

/** A connected client that collects what it reads; `outcome` is `end` or the error's code. */
async function client(port: number) {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  cleanups.push(() => socket.destroy());
  let text = '';
  socket.on('data', (b: Buffer) => {
    text += b.toString();
  });
  const outcome = new Promise<string>((resolve) => {
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    socket.once('end', () => resolve('end'));
  });
  await once(socket, 'connect');
  return { socket, outcome, text: () => text };
}

function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = connect({ port, host: '127.0.0.1' });
    c.once('connect', () => {
      c.destroy();
      resolve('connected');
    });
    c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** Echo until the client ends, as a program would; `onConn` sees each connection first. */
function echo(onConn: (c: Connection) => void = () => undefined): ConnectionHandler {
  return async (conn) => {
    onConn(conn);
    conn.started(process.pid);
    conn.socket.pipe(conn.socket);
    await once(conn.socket, 'close');
    conn.ended(process.pid, 0);
  };
}

/** Resolves with the first connection handed to the handler. */
function firstConnection(): { onConn: (c: Connection) => void; conn: Promise<Connection> } {
  let give: (c: Connection) => void = () => undefined;
  const conn = new Promise<Connection>((resolve) => {
    give = resolve;
  });
  return { onConn: (c) => give(c), conn };
}

describe('drain', () => {
  it('closes the port at once and waits for every connection in progress', async () => {
    let served = 0;
    let bothServed: () => void = () => undefined;
    const both = new Promise<void>((resolve) => {
      bothServed = resolve;
    });
    const { server, events } = await start(
      echo(() => {
        if (++served === 2) bothServed();
      }),
    );
    const a = await client(server.port);
    const b = await client(server.port);
    await both;
    let settled = false;
    const drained = server.drain(60_000).then((r) => {
      settled = true;
      return r;
    });
    // The start event comes once the listening socket is closed.
    while (!events.some((e) => e.type === 'drain')) await new Promise((r) => setImmediate(r));
    expect(events).toContainEqual({ type: 'drain', phase: 'start', connections: 2 });
    expect(await tryConnect(server.port)).toBe('ECONNREFUSED');
    a.socket.end('a');
    expect(await a.outcome).toBe('end');
    expect(a.text()).toBe('a');
    // One left: the drain still waits.
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    b.socket.end('b');
    expect(await b.outcome).toBe('end');
    expect(b.text()).toBe('b');
    expect(await drained).toEqual({ draining: 2, ended: 0 });
    expect(settled).toBe(true);
  });

  it('serves a client the kernel had accepted just before the drain, instead of resetting it', async () => {
    const { server } = await start(echo());
    // On loopback the handshake completes within connect(): the client sits in the accept queue.
    const c = connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(() => c.destroy());
    const drained = server.drain(60_000);
    let text = '';
    c.on('data', (b: Buffer) => {
      text += b.toString();
    });
    const outcome = new Promise<string>((resolve) => {
      c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      c.once('end', () => resolve('end'));
    });
    c.end('queued');
    expect(await outcome).toBe('end');
    expect(text).toBe('queued');
    expect(await drained).toEqual({ draining: 1, ended: 0 });
  });

  it('at the deadline resets the connections left, aborts their signal and sends SIGTERM to their program', async () => {
    const prog = spawn('sleep', ['60'], { stdio: 'ignore' });
    cleanups.push(() => prog.kill('SIGKILL'));
    await once(prog, 'spawn');
    const exited = once(prog, 'exit');
    const first = firstConnection();
    const { server, events } = await start(async (conn) => {
      first.onConn(conn);
      conn.started(prog.pid!);
      const [, signal] = (await exited) as [number | null, string | null];
      conn.ended(prog.pid!, signal === 'SIGTERM' ? 15 : 0);
    });
    const c = await client(server.port);
    const conn = await first.conn;
    const result = await server.drain(200);
    expect(result).toEqual({ draining: 1, ended: 1 });
    expect(conn.signal.aborted).toBe(true);
    expect(await c.outcome).toBe('ECONNRESET');
    expect((await exited)[1]).toBe('SIGTERM');
    expect(events).toContainEqual({ type: 'drain', phase: 'deadline', connections: 1 });
    expect(events).toContainEqual({ type: 'end', pid: prog.pid, status: 15 });
  });

  it('drain(0) during a drain ends the rest at once; both calls resolve alike', async () => {
    const first = firstConnection();
    const { server, events } = await start(echo(first.onConn));
    const c = await client(server.port);
    await first.conn;
    const long = server.drain(60_000);
    const now = server.drain(0);
    expect(await c.outcome).toBe('ECONNRESET');
    expect(await now).toEqual({ draining: 1, ended: 1 });
    expect(await long).toEqual({ draining: 1, ended: 1 });
    expect(events).toContainEqual({ type: 'drain', phase: 'now', connections: 1 });
  });

  it('neither waits for nor ends a detached connection', async () => {
    const first = firstConnection();
    const { server } = await start(
      echo((conn) => {
        first.onConn(conn);
        conn.detach();
      }),
    );
    const c = await client(server.port);
    await first.conn;
    expect(await server.drain(60_000)).toEqual({ draining: 0, ended: 0 });
    // Still served after the drain, to its clean end.
    c.socket.end('still here');
    expect(await c.outcome).toBe('end');
    expect(c.text()).toBe('still here');
  });
});

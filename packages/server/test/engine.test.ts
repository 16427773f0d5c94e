// The engine with real sockets on loopback: every way a connection can end gives its slot back
// once, the events say what happened, and bad settings fail with their codes.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdirSync } from 'node:fs';
import { connect, createServer as netServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { compileRules } from '@ucspi/rules';
import { tempDir } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Connection,
  type ConnectionHandler,
  createServer,
  type ServerEvent,
  type ServerOptions,
  Slots,
  type UcspiServer,
} from '../src/index.js';

const dir = tempDir();
const cdb = (name: string) => join(dir.path, `${name}.cdb`);
beforeAll(async () => {
  await compileRules(Buffer.from('127.0.0.1:deny\n'), cdb('deny'), join(dir.path, 'deny.tmp'));
  await compileRules(Buffer.from(':allow,MAXCONIP="1",X="y"\n'), cdb('one'), join(dir.path, 'one.tmp'));
  // A directory where the rules should be: it exists and cannot be read as a cdb.
  mkdirSync(cdb('unreadable'));
});
afterAll(() => dir.cleanup());

const servers: UcspiServer[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** Start an engine on 127.0.0.1 with lookups off; collects its events. */
async function start(handler: ConnectionHandler, options: Partial<ServerOptions> = {}) {
  const events: ServerEvent[] = [];
  const waiters: Array<() => void> = [];
  const server = await createServer({
    host: '127.0.0.1',
    port: '0',
    remoteHost: false,
    paranoid: false,
    remoteInfo: false,
    infoTimeoutMs: 1000,
    localName: 'L',
    env: { DNSCACHEIP: '127.0.0.1' },
    onEvent: (e) => {
      events.push(e);
      for (const w of waiters.splice(0)) w();
    },
    ...options,
  });
  servers.push(server);
  server.start(handler);
  /** Resolves once `n` events of `type` have been seen. */
  const seen = (type: ServerEvent['type'], n = 1) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${n} ${type} events expected: ${JSON.stringify(events)}`)),
        5000,
      );
      const check = () => {
        if (events.filter((e) => e.type === type).length >= n) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  /** Resolves once every slot is free again after `ended` connections. */
  const idle = async (ended: number) => {
    await seen('end', ended);
    // The release follows the end event: its status event comes last.
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(server.status()).toMatchObject({ active: 0, waiting: 0 });
    expect(server.status().perIp.size).toBe(0);
  };
  return { server, events, seen, idle };
}

/** Connect, send `input`, end, and collect what comes back until the server closes. */
function talk(port: number, input = ''): Promise<string> {
  return new Promise((resolve) => {
    const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let out = '';
    c.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.on('error', () => resolve(out));
    c.on('close', () => resolve(out));
    c.on('end', () => c.end());
    c.end(input);
  });
}

/** A handler that answers with the facts it was given, then ends like a program exiting 0. */
const echoFacts: ConnectionHandler = async (conn: Connection) => {
  conn.started(4242);
  await new Promise<void>((resolve) =>
    conn.socket.end(
      `${conn.info.remoteIp} ${conn.info.localHost} ${JSON.stringify(conn.rulesEnv)}\n`,
      resolve,
    ),
  );
  conn.ended(4242, 0);
};

describe('@ucspi/server engine', () => {
  it('serves a connection: facts, ok and end events, status before and after', async () => {
    const s = await start(echoFacts);
    expect(await talk(s.server.port)).toBe('127.0.0.1 L []\n');
    await s.idle(1);
    const types = s.events.map((e) => e.type);
    expect(types).toEqual(['status', 'status', 'ok', 'end', 'status']);
    expect(s.events[1]).toMatchObject({ type: 'status', active: 1, limit: 40, maxPerIp: 0 });
    expect(s.events[2]).toMatchObject({
      type: 'ok',
      pid: 4242,
      info: { remoteIp: '127.0.0.1', localPort: s.server.port },
    });
  });

  it('publishes the same events on the ucspi:server:* diagnostics channels', async () => {
    const got: string[] = [];
    const onOk = (m: unknown) => got.push(`ok ${(m as { pid: number }).pid}`);
    const onEnd = (m: unknown) => got.push(`end ${(m as { status: number }).status}`);
    subscribe('ucspi:server:ok', onOk);
    subscribe('ucspi:server:end', onEnd);
    try {
      const s = await start(echoFacts);
      await talk(s.server.port);
      await s.idle(1);
    } finally {
      unsubscribe('ucspi:server:ok', onOk);
      unsubscribe('ucspi:server:end', onEnd);
    }
    expect(got).toEqual(['ok 4242', 'end 0']);
  });

  it('a handler that throws: a warning event, the connection closed, the slot freed', async () => {
    const s = await start(async () => {
      throw new Error('handler broke');
    });
    expect(await talk(s.server.port, 'x')).toBe('');
    await s.seen('warning');
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(s.server.status().active).toBe(0);
    expect(s.events.find((e) => e.type === 'warning')).toMatchObject({ error: { message: 'handler broke' } });
    // It still serves.
    const again = await talk(s.server.port);
    expect(again).toBe('');
  });

  it('a deny rule: deny then end 25600 with the server pid, no handler call, the slot freed', async () => {
    let called = false;
    const s = await start(
      async () => {
        called = true;
      },
      { rules: cdb('deny') },
    );
    expect(await talk(s.server.port)).toBe('');
    await s.idle(1);
    expect(called).toBe(false);
    expect(s.events.filter((e) => e.type !== 'status')).toMatchObject([
      { type: 'deny', pid: process.pid, reason: 'rules' },
      { type: 'end', pid: process.pid, status: 25600 },
    ]);
  });

  it('unreadable rules: drop (with the file and reason) then end 28416; a missing file with -X is allowed', async () => {
    const s = await start(echoFacts, { rules: cdb('unreadable') });
    expect(await talk(s.server.port)).toBe('');
    await s.idle(1);
    const drop = s.events.find((e) => e.type === 'drop');
    expect(drop).toMatchObject({ type: 'drop', pid: process.pid, file: cdb('unreadable') });
    expect(s.events.findLast((e) => e.type === 'end')).toMatchObject({ status: 28416 });

    const missing = await start(echoFacts, { rules: cdb('missing') });
    expect(await talk(missing.server.port)).toBe('');
    await missing.idle(1);
    expect(missing.events.some((e) => e.type === 'drop')).toBe(true);
    const allowed = await start(echoFacts, { rules: cdb('missing'), allowNoRules: true });
    expect(await talk(allowed.server.port)).toMatch(/^127\.0\.0\.1 L/);
    await allowed.idle(1);
  });

  it('MAXCONIP from a rule: the second connection from an address is denied while the first is served', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const s = await start(
      async (conn) => {
        conn.started(1);
        conn.socket.write(`${JSON.stringify(conn.rulesEnv)}\n`);
        await held;
        conn.socket.end();
        conn.ended(1, 0);
      },
      { rules: cdb('one'), maxPerIpFromRules: true },
    );
    const first = talk(s.server.port);
    await s.seen('ok');
    expect(s.server.status().perIp.get('127.0.0.1')).toBe(1);
    expect(await talk(s.server.port)).toBe('');
    await s.seen('deny');
    expect(s.events.find((e) => e.type === 'deny')).toMatchObject({
      reason: 'maxconip',
      limit: 1,
      fromRule: true,
    });
    release();
    expect(await first).toBe('[["MAXCONIP","1"],["X","y"]]\n');
    await s.idle(2);
  });

  it('-c 1: the second client waits until the first is done; the count never passes the limit', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let n = 0;
    const s = await start(
      async (conn) => {
        const me = ++n;
        conn.started(me);
        if (me === 1) await held;
        await new Promise<void>((resolve) => conn.socket.end(`${me}\n`, resolve));
        conn.ended(me, 0);
      },
      { limit: 1 },
    );
    const first = talk(s.server.port);
    await s.seen('ok');
    const second = talk(s.server.port);
    // The second one is not served while the first holds the only slot.
    const early = await Promise.race([
      second.then(() => 'served'),
      new Promise((r) => setImmediate(() => r('waiting'))),
    ]);
    expect(early).toBe('waiting');
    release();
    expect(await first).toBe('1\n');
    expect(await second).toBe('2\n');
    await s.idle(2);
    const counts = s.events.flatMap((e) => (e.type === 'status' ? [e.active] : []));
    expect(Math.max(...counts)).toBe(1);
  });

  it('a client that resets while waiting for a slot never reaches the handler; its slot is not leaked', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const seenBy: number[] = [];
    const s = await start(
      async (conn) => {
        seenBy.push(conn.info.remotePort);
        conn.started(1);
        await held;
        conn.socket.end();
        conn.ended(1, 0);
      },
      { limit: 1 },
    );
    const first = talk(s.server.port);
    await s.seen('ok');
    const resetPort = await new Promise<number>((resolve) => {
      const c: Socket = connect(s.server.port, '127.0.0.1', () => {
        const port = c.localPort ?? 0;
        c.resetAndDestroy();
        resolve(port);
      });
      c.on('error', () => undefined);
    });
    release();
    await first;
    // A third client is served after it: the reset one took no slot for good.
    const third = talk(s.server.port, '');
    release();
    await third;
    await s.idle(2);
    expect(seenBy).not.toContain(resetPort);
  });

  it('connections ending in the same tick: each end event is followed by its own status event', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let n = 0;
    const s = await start(async (conn) => {
      const me = ++n;
      conn.started(me);
      await held;
      conn.socket.end();
      conn.ended(me, 0);
    });
    const clients = Array.from({ length: 10 }, () => talk(s.server.port));
    await s.seen('ok', 10);
    release();
    await Promise.all(clients);
    await s.idle(10);
    const types = s.events.map((e) => e.type);
    types.forEach((t, i) => {
      if (t === 'end') expect(types[i + 1]).toBe('status');
    });
    expect(types.filter((t) => t === 'end')).toHaveLength(10);
  });

  it('Slots: a slot given back twice, or an address claimed twice, is a bug that throws', () => {
    const slots = new Slots(2);
    const a = slots.acquire();
    expect(a.claimAddress('10.0.0.1', 1)).toBe(true);
    expect(() => a.claimAddress('10.0.0.1', 1)).toThrow(/claimed twice/);
    const b = slots.acquire();
    expect(slots.full).toBe(true);
    expect(b.claimAddress('10.0.0.1', 1)).toBe(false);
    a.release();
    expect(() => a.release()).toThrow(/released twice/);
    b.release();
    expect(slots.status()).toMatchObject({ active: 0, limit: 2 });
    expect(slots.status().perIp.size).toBe(0);
  });

  it('bad settings: a port that is no service, a port in use, a bad MAXCONIP, each with its code', async () => {
    const base = {
      host: '127.0.0.1',
      remoteHost: false,
      paranoid: false,
      remoteInfo: false,
      infoTimeoutMs: 1000,
    };
    await expect(createServer({ ...base, port: 'no-such-service' })).rejects.toMatchObject({
      code: 'UCSPI_ERR_SERVER_PORT',
      temporary: true,
      message: 'unable to figure out port number for no-such-service',
    });
    const busy = netServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    try {
      await expect(createServer({ ...base, port: String(port) })).rejects.toMatchObject({
        code: 'UCSPI_ERR_SERVER_BIND',
        message: 'unable to bind: address already used',
      });
    } finally {
      busy.close();
    }
    await expect(createServer({ ...base, port: '0', maxPerIp: -1 })).rejects.toMatchObject({
      code: 'UCSPI_ERR_SERVER_MAXCONIP',
      temporary: false,
    });
  });
});

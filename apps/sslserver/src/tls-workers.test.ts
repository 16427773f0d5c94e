// The dealing of connections among TLSWORKERS handlers, and the value's checks. The handlers here
// are stand-ins that record what they are given; the real ones are in test/workers.test.ts.
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { PumpResult, SecureResult, TlsHandler } from './privsep.js';
import { balance, tlsWorkers } from './tls-workers.js';

/** A handler whose handshakes and pumps end when the test says so. */
function standIn(pid: number) {
  const secures = new Map<number, (r: SecureResult) => void>();
  const pumps = new Map<number, (r: PumpResult) => void>();
  const aborted: number[] = [];
  let nextId = 100;
  const h: TlsHandler = {
    accept() {
      const id = nextId++;
      return { id, secure: new Promise((resolve) => secures.set(id, resolve)) };
    },
    pump(id) {
      return new Promise((resolve) => pumps.set(id, resolve));
    },
    abort(id) {
      aborted.push(id);
    },
    died: new Promise(() => undefined),
    pids: [pid],
    close() {},
    setTicketKeys() {},
  };
  return { h, secures, pumps, aborted };
}

const socket = {} as Socket;
const opts = { modSsl: false, banner: true };

describe('balance', () => {
  it('deals to the handler with the fewest connections, in turn among equals', async () => {
    const [a, b, c] = [standIn(1), standIn(2), standIn(3)];
    const pool = balance([a.h, b.h, c.h]);
    expect(pool.pids).toEqual([1, 2, 3]);
    const first = pool.accept(socket, opts);
    const second = pool.accept(socket, opts);
    const third = pool.accept(socket, opts);
    expect([a.secures.size, b.secures.size, c.secures.size]).toEqual([1, 1, 1]);

    // The second one's handshake fails: its handler (b) is the least loaded and takes the next.
    b.secures.get(100)!({ ok: false });
    expect(await second.secure).toEqual({ ok: false });
    pool.accept(socket, opts);
    expect(b.secures.size).toBe(2);

    // The first one is pumped, then ends: a is free again and takes the next one.
    a.secures.get(100)!({ ok: true });
    await first.secure;
    const pumped = pool.pump(first.id, socket, socket);
    a.pumps.get(100)!({ idle: false });
    await pumped;
    pool.accept(socket, opts);
    expect(a.secures.size).toBe(2);

    // An abort goes to the handler that has the connection, under that handler's id.
    pool.abort(third.id);
    expect(c.aborted).toEqual([100]);
    pool.accept(socket, opts);
    expect(c.secures.size).toBe(2);
  });

  it('dies when any handler dies', async () => {
    const a = standIn(1);
    let kill: (why: string) => void = () => undefined;
    const b = { ...standIn(2).h, died: new Promise<string>((resolve) => (kill = resolve)) };
    const pool = balance([a.h, b]);
    kill('TLS handler 2 died (SIGKILL)');
    expect(await pool.died).toBe('TLS handler 2 died (SIGKILL)');
  });
});

describe('tlsWorkers', () => {
  it('reads 0 to 64, unset or empty as 0', () => {
    expect(tlsWorkers({})).toBe(0);
    expect(tlsWorkers({ TLSWORKERS: '' })).toBe(0);
    expect(tlsWorkers({ TLSWORKERS: '0' })).toBe(0);
    expect(tlsWorkers({ TLSWORKERS: '2' })).toBe(2);
    expect(tlsWorkers({ TLSWORKERS: '64' })).toBe(64);
  });

  it.each(['x', '-1', '1.5', '65', ' 2'])('refuses %j (exit 100)', (v) => {
    expect(() => tlsWorkers({ TLSWORKERS: v })).toThrow(
      expect.objectContaining({
        message: `TLSWORKERS must be a whole number of processes from 0 to 64, not ${v}`,
        temporary: false,
      }),
    );
  });
});

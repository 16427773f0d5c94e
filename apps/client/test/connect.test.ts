// ucspi-tcp's connection schedule (-T x+y) with a stand-in for the network: which address is
// tried when, with which timeout, and what is said about the ones that failed.
import type { Socket } from 'node:net';
import { expect, it } from 'vitest';
import { type Attempt, attempt, connectTcp } from '../src/connect.js';
import { ClientErrorCodes } from '../src/errors.js';
import { parseOptions } from '../src/options.js';

type Outcome = 'ok' | 'timeout' | 'refused';

/** A dial function whose outcomes are scripted per address and round; it records every call. */
function scripted(outcomes: Record<string, Outcome[]>) {
  const calls: string[] = [];
  const dial = (async (opts: { host?: string }, timeoutMs: number): Promise<Attempt> => {
    const ip = opts.host!;
    calls.push(`${ip}/${timeoutMs}`);
    const outcome = outcomes[ip]!.shift()!;
    if (outcome === 'ok') return { socket: { ip } as unknown as Socket };
    if (outcome === 'timeout') return { timedOut: true };
    return { error: Object.assign(new Error('refused'), { code: 'ECONNREFUSED', syscall: 'connect' }) };
  }) as typeof attempt;
  return { calls, dial };
}

const text = async (err: unknown) =>
  (err as { code?: string }).code === 'ECONNREFUSED' ? 'connection refused' : 'x';

it('tries every address with x seconds, then the ones that timed out with y seconds each', async () => {
  const o = parseOptions(['-T', '3+7', 'h', '25']);
  const warned: string[] = [];
  const { calls, dial } = scripted({
    '192.0.2.1': ['timeout', 'ok'],
    '192.0.2.2': ['refused'],
    '192.0.2.3': ['timeout'],
  });
  const s = await connectTcp(
    o,
    ['192.0.2.1', '192.0.2.2', '192.0.2.3'],
    25,
    (l) => warned.push(l),
    text,
    dial,
  );
  expect((s as unknown as { ip: string }).ip).toBe('192.0.2.1');
  expect(calls).toEqual(['192.0.2.1/3000', '192.0.2.2/3000', '192.0.2.3/3000', '192.0.2.1/7000']);
  expect(warned).toEqual(['tcpclient: unable to connect to 192.0.2.2 port 25: connection refused']);
});

it('one address gets x+y at once; -T x alone skips the second try', async () => {
  const one = scripted({ '192.0.2.1': ['timeout'] });
  const warned: string[] = [];
  const err = await connectTcp(
    parseOptions(['h', '25']),
    ['192.0.2.1'],
    25,
    (l) => warned.push(l),
    text,
    one.dial,
  ).catch((e) => e);
  expect(err.code).toBe(ClientErrorCodes.FATAL);
  expect(err.exitCode).toBe(111);
  expect(one.calls).toEqual(['192.0.2.1/60000']);
  expect(warned).toEqual(['tcpclient: unable to connect to 192.0.2.1 port 25: timed out']);

  const two = scripted({ '192.0.2.1': ['timeout'], '192.0.2.2': ['timeout'] });
  await connectTcp(
    parseOptions(['-T', '5', 'h', '25']),
    ['192.0.2.1', '192.0.2.2'],
    25,
    () => undefined,
    text,
    two.dial,
  ).catch(() => undefined);
  expect(two.calls).toEqual(['192.0.2.1/5000', '192.0.2.2/5000']);
});

it('a real attempt against a closed port says why; against a listener it connects', async () => {
  const { createServer } = await import('node:net');
  const srv = createServer((c) => c.end());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const ok = await attempt({ host: '127.0.0.1', port, noDelay: true }, 5000);
  expect(ok.socket).toBeDefined();
  ok.socket!.destroy();
  await new Promise((r) => srv.close(r));
  const refused = await attempt({ host: '127.0.0.1', port, noDelay: false }, 5000);
  expect(refused.error?.code).toBe('ECONNREFUSED');
});

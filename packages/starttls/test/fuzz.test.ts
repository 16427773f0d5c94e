import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Conversation } from '../src/_conversation.js';
import { readReply } from '../src/_reply.js';
import {
  clientProtocols,
  loadProtocol,
  StartTlsError,
  StartTlsErrorCodes,
  serverProtocols,
} from '../src/index.js';
import type { Dialogue } from '../src/protocol.js';

// Fuzzing the framing and the reply parsers, seeded and bounded: valid replies cut at random
// places parse the same; over-long, malformed and random input ends in a StartTlsError with a
// known code, never another exception, never a hang (the input ends, so a hang would show as
// TIMEOUT, which is asserted never to happen).

/** mulberry32: a small seeded generator, so a failure is reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `data` cut into random pieces (single bytes included), each delivered as its own chunk. */
function split(data: Buffer, rand: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const n = rand() < 0.3 ? 1 : 1 + Math.floor(rand() * 64);
    chunks.push(data.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

/** A stream that delivers `chunks` one by one and then ends; what is written to it is dropped. */
function peer(chunks: Buffer[]): Socket {
  const d = new Duplex({
    read() {},
    write(_c, _e, cb) {
      cb();
    },
  });
  for (const c of chunks) d.push(c);
  d.push(null);
  return d as unknown as Socket;
}

async function runOn<T>(
  chunks: Buffer[],
  step: (d: Dialogue) => Promise<T>,
  opts: { maxLineLength?: number; side?: 'client' | 'server'; protocol?: string } = {},
): Promise<{ value?: T; error?: unknown }> {
  const conv = new Conversation(
    peer(chunks),
    opts.side ?? 'client',
    opts.protocol ?? 'smtp',
    { maxLineLength: opts.maxLineLength ?? 256, timeoutMs: 5000, host: 'x.test', port: 1 },
    false,
  );
  try {
    return { value: await conv.run(step) };
  } catch (error) {
    return { error };
  } finally {
    conv.detach();
  }
}

const KNOWN = new Set<string>(Object.values(StartTlsErrorCodes));

function expectCleanFailure(error: unknown): void {
  expect(error).toBeInstanceOf(StartTlsError);
  const code = (error as StartTlsError).code;
  expect(KNOWN.has(code)).toBe(true);
  expect(code).not.toBe(StartTlsErrorCodes.TIMEOUT);
}

function printable(rand: () => number, max: number): string {
  let s = '';
  const n = Math.floor(rand() * max);
  for (let i = 0; i < n; i++) s += String.fromCharCode(32 + Math.floor(rand() * 95));
  return s;
}

describe('the SMTP reply parser', () => {
  it('parses valid multi-line replies cut at random places (500 cases)', async () => {
    const rand = rng(0x5eed);
    for (let i = 0; i < 500; i++) {
      // RFC 5321 section 4.2: Reply-code = %x32-35 %x30-35 %x30-39.
      const code = `${2 + Math.floor(rand() * 4)}${Math.floor(rand() * 6)}${Math.floor(rand() * 10)}`;
      const texts = Array.from({ length: 1 + Math.floor(rand() * 8) }, () => printable(rand, 60));
      const eol = () => (rand() < 0.8 ? '\r\n' : '\n');
      const text = texts.map((t, j) => `${code}${j < texts.length - 1 ? '-' : ' '}${t}${eol()}`).join('');
      const { value, error } = await runOn(split(Buffer.from(text), rand), readReply);
      expect(error, `case ${i}: ${JSON.stringify(text)}`).toBeUndefined();
      expect(value?.code).toBe(Number(code));
      expect(value?.lines).toEqual(texts);
    }
  });

  it('over-long lines fail with LINE_TOO_LONG however they arrive (100 cases)', async () => {
    const rand = rng(42);
    for (let i = 0; i < 100; i++) {
      const max = 64 + Math.floor(rand() * 200);
      const text = `250-ok\r\n250 ${'y'.repeat(max + 1 + Math.floor(rand() * 500))}${rand() < 0.5 ? '\r\n' : ''}`;
      const { error } = await runOn(split(Buffer.from(text), rand), readReply, { maxLineLength: max });
      expect((error as StartTlsError)?.code).toBe(StartTlsErrorCodes.LINE_TOO_LONG);
    }
  });

  it('malformed replies (bytes of valid ones changed) parse or fail cleanly (500 cases)', async () => {
    const rand = rng(7);
    for (let i = 0; i < 500; i++) {
      const bytes = Buffer.from('220-mx.test ESMTP\r\n220-second line\r\n220 last\r\n');
      for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) {
        bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      }
      const { error } = await runOn(split(bytes, rand), readReply);
      if (error) expectCleanFailure(error);
    }
  });

  it('random bytes parse or fail cleanly (500 cases)', async () => {
    const rand = rng(99);
    for (let i = 0; i < 500; i++) {
      const bytes = Buffer.alloc(Math.floor(rand() * 1200));
      for (let k = 0; k < bytes.length; k++) bytes[k] = rand() < 0.1 ? 10 : Math.floor(rand() * 256);
      const { error } = await runOn(split(bytes, rand), readReply);
      if (error) expectCleanFailure(error);
    }
  });
});

describe('every protocol on hostile input', () => {
  const prefixes = [
    '',
    '220 ok\r\n',
    '+OK\r\n',
    '* OK\r\n',
    '200 ok\r\n',
    '"STARTTLS"\r\n',
    'HTTP/1.1 200 OK\r\n',
    '0\x0c',
  ];
  for (const [side, names] of [
    ['client', clientProtocols],
    ['server', serverProtocols],
  ] as const) {
    for (const name of names) {
      it(`${side} ${name}: random input ends in a clean error or the go-ahead (80 cases)`, async () => {
        const proto = await loadProtocol(name, side);
        const rand = rng(name.length * 1000 + (side === 'server' ? 1 : 0));
        for (let i = 0; i < 80; i++) {
          const prefix = Buffer.from(prefixes[Math.floor(rand() * prefixes.length)] as string, 'latin1');
          const bytes = Buffer.alloc(Math.floor(rand() * 600));
          for (let k = 0; k < bytes.length; k++) bytes[k] = rand() < 0.08 ? 10 : Math.floor(rand() * 256);
          const step = async (d: Dialogue): Promise<unknown> =>
            side === 'client' ? proto.client(d) : (proto.server as NonNullable<typeof proto.server>)(d);
          const { error } = await runOn(split(Buffer.concat([prefix, bytes]), rand), step, {
            side,
            protocol: name,
          });
          if (error) expectCleanFailure(error);
        }
      });
    }
  }
});

import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { identLookup, identQuery, parseIdentReply } from '../src/index.js';

describe('parseIdentReply (remoteinfo.c)', () => {
  it('takes what follows the third colon, without spaces, tabs or CRs', () => {
    expect(parseIdentReply(Buffer.from('6191, 23 : USERID : UNIX : stjohns\r\n'))).toBe('stjohns');
    expect(parseIdentReply(Buffer.from('1,2:USERID:UNIX:john doe\t!\r\n'))).toBe('johndoe!');
    expect(parseIdentReply(Buffer.from('1 , 2 : USERID : OTHER,US-ASCII : a:b:c\n'))).toBe('a:b:c');
  });

  it('gives an empty answer for an ERROR reply and none for an unfinished line', () => {
    expect(parseIdentReply(Buffer.from('1 , 2 : ERROR : NO-USER\r\n'))).toBe('');
    expect(parseIdentReply(Buffer.from('1 , 2 : USERID : UNIX : bob'))).toBeUndefined();
  });

  it('stops after 257 bytes of answer', () => {
    const answer = parseIdentReply(Buffer.from(`1,2:USERID:UNIX:${'x'.repeat(400)}`));
    expect(answer).toBe('x'.repeat(257));
  });
});

describe('identLookup', () => {
  let server: Server | undefined;
  afterEach(() => {
    server?.close();
    server = undefined;
  });

  /** A one-line identd on 127.0.0.1:0; `reply` answers the query line (or stays silent). */
  function identd(reply: (query: string, peer: Socket) => string | undefined): Promise<number> {
    return new Promise((resolve) => {
      server = createServer((s) => {
        let q = '';
        s.on('error', () => undefined);
        s.on('data', (b: Buffer) => {
          q += b.toString('latin1');
          if (!q.includes('\n')) return;
          const r = reply(q, s);
          if (r !== undefined) s.end(r);
        });
      }).listen(0, '127.0.0.1', () => {
        const a = server?.address();
        resolve(typeof a === 'object' && a ? a.port : 0);
      });
    });
  }

  const query = (port: number, timeoutMs = 2000) =>
    identLookup({
      remoteIp: '127.0.0.1',
      remotePort: 40000,
      localIp: '127.0.0.2',
      localPort: 25,
      timeoutMs,
      port,
    });

  it('asks `REMOTEPORT , LOCALPORT` from the local address and returns the user id', async () => {
    let seen = '';
    let from = '';
    const port = await identd((q, peer) => {
      seen = q;
      from = peer.remoteAddress ?? '';
      return `${q.trim()} : USERID : UNIX : alice\r\n`;
    });
    expect(await query(port)).toBe('alice');
    expect(seen).toBe('40000 , 25\r\n');
    expect(from).toBe('127.0.0.2');
  });

  it('an ERROR reply gives an empty answer', async () => {
    const port = await identd((q) => `${q.trim()} : ERROR : NO-USER\r\n`);
    expect(await query(port)).toBe('');
  });

  it('no answer: refused, closed mid-line, silent past the deadline', async () => {
    const closed = await identd(() => '40000 , 25 : USERID : UNIX : cut');
    expect(await query(closed)).toBeUndefined();
    server?.close();
    const silent = await identd(() => undefined);
    const t0 = Date.now();
    expect(await query(silent, 300)).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(2000);
    server?.close();
    server = undefined;
    // The port that the silent identd had is free again: connection refused.
    expect(await query(silent)).toBeUndefined();
  });
  it('identQuery gives the reply line and why there is no answer', async () => {
    const q = {
      remoteIp: '127.0.0.1',
      remotePort: 40000,
      localIp: '127.0.0.1',
      localPort: 25,
      timeoutMs: 2000,
    };
    const port = await identd((line) => `${line.trim()} : ERROR : NO-USER\r\n`);
    expect(await identQuery({ ...q, port })).toEqual({
      answer: '',
      line: '40000 , 25 : ERROR : NO-USER\r',
      connected: true,
      outcome: 'answered',
    });
    server?.close();
    server = undefined;
    expect(await identQuery({ ...q, port })).toEqual({
      answer: undefined,
      connected: false,
      outcome: 'ECONNREFUSED',
    });
    const silent = await identd(() => undefined);
    expect(await identQuery({ ...q, port: silent, timeoutMs: 300 })).toMatchObject({
      connected: true,
      outcome: 'timeout',
    });
    // With a connect deadline, timeoutMs counts from the connection, for the reply.
    const t0 = Date.now();
    expect(await identQuery({ ...q, port: silent, connectTimeoutMs: 5000, timeoutMs: 300 })).toMatchObject({
      connected: true,
      outcome: 'timeout',
    });
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

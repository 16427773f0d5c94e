// Servers that misbehave, made with node:dgram on 127.0.0.1: one that never answers (every
// lookup must still end within the timeout) and one that answers SERVFAIL to everything.
import { createSocket, type Socket } from 'node:dgram';
import diagnostics_channel from 'node:diagnostics_channel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDnsClient, DnsErrorCodes } from '../src/index.js';

function bind(onMessage: (sock: Socket, msg: Buffer, port: number, address: string) => void) {
  const sock = createSocket('udp4');
  sock.on('message', (msg, rinfo) => onMessage(sock, msg, rinfo.port, rinfo.address));
  return new Promise<{ sock: Socket; port: number }>((resolve) => {
    sock.bind(0, '127.0.0.1', () => resolve({ sock, port: sock.address().port }));
  });
}

const close = (sock: Socket | undefined) =>
  new Promise<void>((resolve) => (sock ? sock.close(() => resolve()) : resolve()));

describe('a server that never answers', () => {
  let silent: { sock: Socket; port: number } | undefined;
  let queries = 0;
  beforeAll(async () => {
    silent = await bind(() => {
      queries++;
    });
  });
  afterAll(() => close(silent?.sock));

  const client = () =>
    createDnsClient(
      { DNSCACHEIP: '127.0.0.1', DNSREWRITEFILE: '/nonexistent/dnsrewrite', LOCALDOMAIN: 'a.test' },
      { port: silent?.port ?? 0, timeoutMs: 300 },
    );

  it('forward lookups fail with UCSPI_ERR_DNS_TIMEOUT (temporary) within the bound', async () => {
    const before = queries;
    const start = Date.now();
    await expect(client().ip4('www.a.test')).rejects.toMatchObject({
      code: DnsErrorCodes.TIMEOUT,
      temporary: true,
    });
    const elapsed = Date.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1500);
    expect(queries).toBeGreaterThan(before);
  });

  it('a timeout on the first LOCALDOMAIN alternative ends the search (no fallthrough)', async () => {
    await expect(client().addresses('www')).rejects.toMatchObject({ code: DnsErrorCodes.TIMEOUT });
  });

  it('reverse and reverseParanoid give undefined, as tcpserver leaves TCPREMOTEHOST unset', async () => {
    const start = Date.now();
    expect(await client().reverse('192.0.2.1')).toBeUndefined();
    expect(await client().reverseParanoid('192.0.2.1')).toBeUndefined();
    expect(Date.now() - start).toBeLessThan(3000);
  });

  it('publishes ucspi:dns:query events', async () => {
    const seen: unknown[] = [];
    const listener = (m: unknown) => seen.push(m);
    diagnostics_channel.subscribe('ucspi:dns:query', listener);
    try {
      await client().reverse('192.0.2.1');
    } finally {
      diagnostics_channel.unsubscribe('ucspi:dns:query', listener);
    }
    expect(seen).toEqual([{ type: 'PTR', name: '192.0.2.1', ok: false, code: DnsErrorCodes.TIMEOUT }]);
  });
});

describe('a server that answers SERVFAIL', () => {
  let servfail: { sock: Socket; port: number } | undefined;
  beforeAll(async () => {
    servfail = await bind((sock, msg, port, address) => {
      if (msg.length < 12) return;
      const reply = Buffer.from(msg);
      // RFC 1035 4.1.1: QR=1, keep the opcode and RD; RA=1, RCODE=2 (server failure).
      reply[2] = ((msg[2] ?? 0) & 0x79) | 0x80;
      reply[3] = 0x82;
      sock.send(reply, port, address);
    });
  });
  afterAll(() => close(servfail?.sock));

  const client = () =>
    createDnsClient(
      { DNSCACHEIP: '127.0.0.1', DNSREWRITEFILE: '/nonexistent/dnsrewrite', LOCALDOMAIN: '' },
      { port: servfail?.port ?? 0, timeoutMs: 1000 },
    );

  it('forward lookups fail with UCSPI_ERR_DNS_TEMPORARY', async () => {
    const start = Date.now();
    await expect(client().ip6('www.a.test')).rejects.toMatchObject({
      code: DnsErrorCodes.TEMPORARY,
      temporary: true,
      hostname: 'www.a.test',
    });
    // An answer, not a timeout.
    expect(Date.now() - start).toBeLessThan(900);
  });

  it('reverse gives undefined', async () => {
    expect(await client().reverse('2001:db8::1')).toBeUndefined();
  });
});

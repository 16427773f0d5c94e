import { describe, expect, it } from 'vitest';
import { arpaName, createDnsClient, parseDnsCacheIp } from './client.js';
import { DnsErrorCodes } from './errors.js';

describe('parseDnsCacheIp', () => {
  it('accepts spaces, commas, IPv6 and djb run-together dotted lists', () => {
    expect(parseDnsCacheIp('1.2.3.4')).toEqual(['1.2.3.4']);
    expect(parseDnsCacheIp(' 1.2.3.4  5.6.7.8 ')).toEqual(['1.2.3.4', '5.6.7.8']);
    expect(parseDnsCacheIp('1.2.3.4,::1')).toEqual(['1.2.3.4', '::1']);
    expect(parseDnsCacheIp('1.2.3.4.5.6.7.8')).toEqual(['1.2.3.4', '5.6.7.8']);
  });
  it('unset or blank means the system servers', () => {
    expect(parseDnsCacheIp(undefined)).toBeUndefined();
    expect(parseDnsCacheIp('  ')).toBeUndefined();
  });
  it('rejects anything that is not an address', () => {
    for (const bad of ['bogus', '1.2.3.400', '1.2.3', 'dns.example:53']) {
      expect(() => parseDnsCacheIp(bad)).toThrow(
        expect.objectContaining({ code: DnsErrorCodes.BAD_DNSCACHEIP, temporary: false }),
      );
    }
  });
  it('createDnsClient throws on a bad DNSCACHEIP or timeout', () => {
    expect(() => createDnsClient({ DNSCACHEIP: 'x' })).toThrow(
      expect.objectContaining({ code: DnsErrorCodes.BAD_DNSCACHEIP }),
    );
    expect(() => createDnsClient({}, { timeoutMs: 0 })).toThrow(RangeError);
  });
});

// Literals never reach a server: the client points at a port nobody answers on, with a short
// timeout, so a query that should not happen would fail the test.
describe('literals and 0', () => {
  const dns = createDnsClient(
    { DNSCACHEIP: '127.0.0.1', DNSREWRITEFILE: '/nonexistent/dnsrewrite', LOCALDOMAIN: 'a.test' },
    { port: 9, timeoutMs: 200 },
  );
  it('returns IPv4 and IPv6 literals as they are', async () => {
    expect(await dns.ip4('192.0.2.7')).toEqual(['192.0.2.7']);
    expect(await dns.ip4('[192.0.2.7]')).toEqual(['192.0.2.7']);
    expect(await dns.ip6('2001:db8::7')).toEqual(['2001:db8::7']);
    expect(await dns.ip6('[2001:db8::7]')).toEqual(['2001:db8::7']);
    expect(await dns.addresses('2001:db8::7')).toEqual(['2001:db8::7']);
    expect(await dns.qualify('192.0.2.7')).toBe('192.0.2.7');
  });
  it('0 and the empty name are the local host, as tcpclient', async () => {
    expect(await dns.ip4('0')).toEqual(['127.0.0.1']);
    expect(await dns.ip4('')).toEqual(['127.0.0.1']);
    expect(await dns.ip6('0')).toEqual(['::1']);
    expect(await dns.addresses('0')).toEqual(['127.0.0.1']);
    expect(await dns.qualify('0')).toBe('0');
  });
  it('rejects malformed dotted literals and wrong families', async () => {
    await expect(dns.ip4('192.0.2')).rejects.toMatchObject({ code: DnsErrorCodes.BAD_NAME });
    await expect(dns.ip4('1.2.3.4.5')).rejects.toMatchObject({ code: DnsErrorCodes.BAD_NAME });
    await expect(dns.ip4('2001:db8::7')).rejects.toMatchObject({ code: DnsErrorCodes.NOTFOUND });
    await expect(dns.ip6('192.0.2.7')).rejects.toMatchObject({ code: DnsErrorCodes.NOTFOUND });
  });
  it('qualify rewrites without a lookup when there are no alternatives', async () => {
    const d = createDnsClient(
      { DNSCACHEIP: '127.0.0.1', DNSREWRITEFILE: '/nonexistent/dnsrewrite' },
      { port: 9, timeoutMs: 200, rewrite: { resolvConfPath: '/nonexistent', hostname: 'h.b.test' } },
    );
    expect(await d.qualify('www')).toBe('www.b.test');
    expect(await d.qualify('www.c.test.')).toBe('www.c.test');
  });
  it('reverse rejects what is not an IP address', async () => {
    await expect(dns.reverse('host.a.test')).rejects.toMatchObject({
      code: DnsErrorCodes.BAD_NAME,
    });
    await expect(dns.reverseParanoid('')).rejects.toMatchObject({ code: DnsErrorCodes.BAD_NAME });
  });
});

describe('arpaName', () => {
  it('names IPv4 and IPv6 addresses for PTR queries', () => {
    expect(arpaName('192.0.2.1')).toBe('1.2.0.192.in-addr.arpa');
    expect(arpaName('2001:db8::1')).toBe(
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
    );
    expect(arpaName('::1')).toBe(`1.${'0.'.repeat(31)}ip6.arpa`);
    expect(arpaName('fe80::1%lo')).toBe(`1.${'0.'.repeat(27)}0.8.e.f.ip6.arpa`);
    expect(arpaName('::ffff:192.0.2.1')).toBe(`1.0.2.0.0.0.0.c.f.f.f.f.${'0.'.repeat(20)}ip6.arpa`);
  });
});

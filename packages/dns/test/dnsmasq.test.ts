// Against a real DNS server: Debian's dnsmasq, started on 127.0.0.1 on a free port, answering
// only from its own records (no upstream, no /etc/hosts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Dnsmasq, freePort, startDnsmasq, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDnsClient, type DnsClient, DnsErrorCodes } from '../src/index.js';

describe.runIf(toolAvailable('dnsmasq'))('against dnsmasq', () => {
  const tmp = tempDir('ucspi-dns-');
  let dnsmasq: Dnsmasq | undefined;
  let port = 0;
  const noRewrite = join(tmp.path, 'no-dnsrewrite');
  const client = (env: Record<string, string | undefined> = {}): DnsClient =>
    createDnsClient(
      { DNSCACHEIP: '127.0.0.1', DNSREWRITEFILE: noRewrite, LOCALDOMAIN: '', ...env },
      { port, timeoutMs: 2000 },
    );

  beforeAll(async () => {
    const hosts = join(tmp.path, 'hosts');
    writeFileSync(hosts, '192.0.2.10 v4only.example.test\n');
    port = await freePort();
    dnsmasq = await startDnsmasq(port, [
      `--addn-hosts=${hosts}`,
      '--local=/example.test/',
      '--local=/in-addr.arpa/',
      '--local=/ip6.arpa/',
      '--local=/nowhere/',
      // good: A, AAAA and the matching PTRs (host-record makes them).
      '--host-record=good.example.test,192.0.2.1,2001:db8::1',
      // liar: 192.0.2.3 claims to be liar.example.test, whose A record is another address.
      '--ptr-record=3.2.0.192.in-addr.arpa,liar.example.test',
      '--host-record=liar.example.test,192.0.2.99',
      '--host-record=mail.other.test,192.0.2.25',
      '--local=/other.test/',
    ]);
  });

  afterAll(async () => {
    await dnsmasq?.stop();
    tmp.cleanup();
  });

  it('A and AAAA records', async () => {
    const dns = client();
    expect(await dns.ip4('good.example.test')).toEqual(['192.0.2.1']);
    expect(await dns.ip6('good.example.test')).toEqual(['2001:db8::1']);
    expect(await dns.addresses('good.example.test')).toEqual(['192.0.2.1', '2001:db8::1']);
    expect(await dns.addresses('v4only.example.test')).toEqual(['192.0.2.10']);
  });

  it('NXDOMAIN and NODATA are permanent UCSPI_ERR_DNS_NOTFOUND', async () => {
    const dns = client();
    await expect(dns.ip4('nosuch.example.test')).rejects.toMatchObject({
      code: DnsErrorCodes.NOTFOUND,
      temporary: false,
      hostname: 'nosuch.example.test',
    });
    await expect(dns.ip6('v4only.example.test')).rejects.toMatchObject({
      code: DnsErrorCodes.NOTFOUND,
    });
    await expect(dns.addresses('nosuch.example.test')).rejects.toMatchObject({
      code: DnsErrorCodes.NOTFOUND,
    });
  });

  it('PTR lookups, IPv4, IPv6 and IPv4-mapped', async () => {
    const dns = client();
    expect(await dns.reverse('192.0.2.1')).toBe('good.example.test');
    expect(await dns.reverse('2001:db8::1')).toBe('good.example.test');
    expect(await dns.reverse('::ffff:192.0.2.1')).toBe('good.example.test');
    expect(await dns.reverse('192.0.2.10')).toBe('v4only.example.test');
    expect(await dns.reverse('192.0.2.3')).toBe('liar.example.test');
  });

  it('no PTR record is undefined', async () => {
    expect(await client().reverse('192.0.2.77')).toBeUndefined();
    expect(await client().reverseParanoid('192.0.2.77')).toBeUndefined();
  });

  it('reverse asks the DNS only, never /etc/hosts (as djbdns): 127.0.0.1 has no PTR here', async () => {
    // Every /etc/hosts names 127.0.0.1; c-ares's gethostbyaddr would answer from it.
    expect(await client().reverse('127.0.0.1')).toBeUndefined();
  });

  it('paranoid: the name is kept only when it maps back to the address', async () => {
    const dns = client();
    expect(await dns.reverseParanoid('192.0.2.1')).toBe('good.example.test');
    expect(await dns.reverseParanoid('2001:0db8:0:0::1')).toBe('good.example.test');
    expect(await dns.reverseParanoid('::ffff:192.0.2.1')).toBe('good.example.test');
    // liar.example.test's A is 192.0.2.99, not 192.0.2.3.
    expect(await dns.reverseParanoid('192.0.2.3')).toBeUndefined();
  });

  it('LOCALDOMAIN qualifies names without a dot, trying each domain in order', async () => {
    const dns = client({ LOCALDOMAIN: 'nowhere.example.test example.test' });
    expect(await dns.ip4('good')).toEqual(['192.0.2.1']);
    expect(await dns.qualify('good')).toBe('good.example.test');
    expect(await dns.ip4('good.example.test.')).toEqual(['192.0.2.1']);
    // A name with a dot is not qualified.
    await expect(dns.ip4('good.nowhere')).rejects.toMatchObject({ code: DnsErrorCodes.NOTFOUND });
    await expect(dns.qualify('nosuch')).rejects.toMatchObject({ code: DnsErrorCodes.NOTFOUND });
    // With an empty rewrite file the short name is looked up as it is; dnsmasq, having no
    // upstream, answers REFUSED, which is a temporary failure (djbdns: any rcode but NXDOMAIN).
    const empty = join(tmp.path, 'empty-dnsrewrite');
    writeFileSync(empty, '');
    await expect(
      client({ DNSREWRITEFILE: empty, LOCALDOMAIN: 'example.test' }).ip4('good'),
    ).rejects.toMatchObject({ code: DnsErrorCodes.TEMPORARY, temporary: true });
  });

  it('DNSREWRITEFILE instructions take precedence over LOCALDOMAIN', async () => {
    const file = join(tmp.path, 'dnsrewrite');
    writeFileSync(
      file,
      [
        '# a comment line is ignored',
        '=mail:mail.other.test',
        '-.old.test:good.example.test',
        '*.internal:.example.test',
        '?:+.nowhere.example.test+.example.test',
        '*.:',
        '',
      ].join('\n'),
    );
    const dns = client({ DNSREWRITEFILE: file, LOCALDOMAIN: 'other.test' });
    expect(await dns.ip4('mail')).toEqual(['192.0.2.25']);
    expect(await dns.qualify('mail')).toBe('mail.other.test');
    expect(await dns.ip4('anything.old.test')).toEqual(['192.0.2.1']);
    expect(await dns.ip4('good.internal')).toEqual(['192.0.2.1']);
    expect(await dns.ip6('good')).toEqual(['2001:db8::1']);
    expect(await dns.qualify('good')).toBe('good.example.test');
    expect(await dns.qualify('v4only')).toBe('v4only.example.test');
  });
});

// The PROXY header parser (v1 and v2) and the v2 encoder: valid headers, every way a header can be
// wrong, headers split at every byte, and seeded random bytes that must never crash or hang it.
import { describe, expect, it } from 'vitest';
import { type ProxyHeader, ProxyHeaderError, parseProxyHeader, proxyV2Header } from '../src/index.js';
import { crc32c } from '../src/proxy/crc32c.js';
import { proxyEnv } from '../src/proxy/env.js';

const parse = (s: string | Buffer) => parseProxyHeader(Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1'));
const error = (s: string | Buffer) => {
  try {
    parse(s);
  } catch (e) {
    expect(e).toBeInstanceOf(ProxyHeaderError);
    return (e as Error).message;
  }
  throw new Error('no error');
};
const sig = '0d0a0d0a000d0a515549540a';

describe('v1', () => {
  it('TCP4 and TCP6: the endpoints and the length, the bytes after the line left alone', () => {
    const r = parse('PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET /');
    expect(r).toEqual({
      length: 45,
      header: {
        version: 1,
        proxied: true,
        family: 'tcp4',
        source: { ip: '192.0.2.7', port: 56324 },
        destination: { ip: '198.51.100.1', port: 443 },
        tlvs: [],
      },
    });
    const six = parse('PROXY TCP6 2001:db8::7 ::1 65535 0\r\n');
    expect(six?.header.source).toEqual({ ip: '2001:db8::7', port: 65535 });
    expect(six?.header.destination).toEqual({ ip: '::1', port: 0 });
  });

  it("UNKNOWN keeps the connection's own addresses (proxied false), whatever follows it on the line", () => {
    expect(parse('PROXY UNKNOWN\r\n')).toEqual({
      length: 15,
      header: { version: 1, proxied: false, tlvs: [] },
    });
    expect(parse('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nx')?.length).toBe(35);
  });

  it('needs more bytes until CRLF, and never looks past 107 bytes', () => {
    const line = 'PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n';
    for (let i = 1; i < line.length; i++) expect(parse(line.slice(0, i))).toBeUndefined();
    expect(parse(`PROXY UNKNOWN ${'x'.repeat(90)}`)).toBeUndefined();
    expect(error(`PROXY UNKNOWN ${'x'.repeat(93)}`)).toMatch(/longer than 107/);
    expect(parse(`PROXY UNKNOWN ${'x'.repeat(90)}\r\n`)?.length).toBe(106);
  });

  it('refuses what the specification does not allow', () => {
    expect(error('GET / HTTP/1.0\r\n')).toBe('no PROXY header');
    expect(error('\x16\x03\x01\x02\x00')).toBe('no PROXY header');
    expect(error('PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n')).toMatch(/protocol "TCP5"/);
    expect(error('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n')).toMatch(/5 fields/);
    expect(error('PROXY TCP4 ::1 5.6.7.8 1 2\r\n')).toMatch(/address "::1" is not TCP4/);
    expect(error('PROXY TCP6 1.2.3.4 ::1 1 2\r\n')).toMatch(/is not TCP6/);
    expect(error('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n')).toMatch(/port "65536"/);
    expect(error('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n')).toMatch(/port "01"/);
    expect(error('PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n')).toMatch(/port "-1"/);
    expect(error('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n')).toMatch(/fields/);
    expect(error('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r\n')).toMatch(/port/);
  });
});

describe('v2', () => {
  it('TCP over IPv4, byte for byte as the specification lays it out', () => {
    const bytes = Buffer.from(`${sig}2111000cc000020701020304dc0401bb`, 'hex');
    expect(parse(Buffer.concat([bytes, Buffer.from('rest')]))).toEqual({
      length: 28,
      header: {
        version: 2,
        proxied: true,
        family: 'tcp4',
        source: { ip: '192.0.2.7', port: 56324 },
        destination: { ip: '1.2.3.4', port: 443 },
        tlvs: [],
      },
    });
    expect(proxyV2Header({ ip: '192.0.2.7', port: 56324 }, { ip: '1.2.3.4', port: 443 })).toEqual(bytes);
  });

  it('TCP over IPv6 in the shortest text form; an IPv4-mapped source is written as IPv4 by the encoder', () => {
    const h = proxyV2Header({ ip: '2001:db8:0:0:1::7', port: 1 }, { ip: '::1', port: 2 });
    expect(h.length).toBe(16 + 36);
    expect(parse(h)?.header).toMatchObject({
      family: 'tcp6',
      source: { ip: '2001:db8::1:0:0:7', port: 1 },
      destination: { ip: '::1', port: 2 },
    });
    const mapped = proxyV2Header({ ip: '::ffff:10.0.0.1', port: 1 }, { ip: '::ffff:10.0.0.2', port: 2 });
    expect(parse(mapped)?.header.family).toBe('tcp4');
    expect(() => proxyV2Header({ ip: '10.0.0.1', port: 1 }, { ip: '::1', port: 2 })).toThrow(RangeError);
  });

  it("LOCAL and UNSPEC keep the connection's own addresses", () => {
    expect(parse(proxyV2Header(undefined, undefined))).toEqual({
      length: 16,
      header: { version: 2, proxied: false, tlvs: [] },
    });
    // UNSPEC with a TLV: the TLVs still count.
    const unspec = Buffer.concat([Buffer.from(`${sig}21000005`, 'hex'), Buffer.from('0200026578', 'hex')]);
    expect(parse(unspec)?.header).toMatchObject({ proxied: false, authority: 'ex' });
  });

  it("the TLVs of HAProxy's send-proxy-v2-ssl, read back, and the program's PROXY* variables", () => {
    const h = proxyV2Header(
      { ip: '192.0.2.7', port: 5000 },
      { ip: '192.0.2.1', port: 443 },
      {
        alpn: 'h2',
        authority: 'mail.example.org',
        uniqueId: Buffer.from('0a0b', 'hex'),
        ssl: {
          client: 0x07,
          verify: 0,
          version: 'TLSv1.3',
          cipher: 'TLS_AES_256_GCM_SHA384',
          cn: 'client one',
        },
        crc32c: true,
      },
    );
    const header = parse(h)?.header as ProxyHeader;
    expect(header).toMatchObject({
      alpn: Buffer.from('h2'),
      authority: 'mail.example.org',
      uniqueId: Buffer.from('0a0b', 'hex'),
      ssl: { client: 7, verify: 0, version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', cn: 'client one' },
    });
    expect(header.tlvs.map((t) => t.type)).toEqual([0x01, 0x02, 0x05, 0x20, 0x03]);
    expect(Object.fromEntries(proxyEnv(header, { ip: '127.0.0.1', port: 40000 }))).toEqual({
      PROXYVERSION: '2',
      PROXYPEERIP: '127.0.0.1',
      PROXYPEERPORT: '40000',
      PROXYALPN: 'h2',
      PROXYAUTHORITY: 'mail.example.org',
      PROXYUNIQUEID: '0a0b',
      PROXYSSL: '7',
      PROXYSSLVERIFY: '0',
      PROXYSSLVERSION: 'TLSv1.3',
      PROXYSSLCIPHER: 'TLS_AES_256_GCM_SHA384',
      PROXYSSLCN: 'client one',
    });
    // One bit changed anywhere: the checksum no longer matches.
    const bad = Buffer.from(h);
    bad[20] = (bad[20] ?? 0) ^ 1;
    expect(error(bad)).toBe('v2 CRC32C mismatch');
  });

  it('CRC-32C is the Castagnoli checksum (the check value of "123456789")', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('refuses what the specification does not allow', () => {
    const v2 = (rest: string) => Buffer.from(`${sig}${rest}`, 'hex');
    expect(error(v2('1111000c000000000000000000000000'))).toBe('v2 version 1');
    expect(error(v2('2211000c000000000000000000000000'))).toBe('v2 command 2');
    expect(error(v2('21120000'))).toMatch(/0x12 \(only TCP/); // UDP over IPv4
    expect(error(v2('21310000'))).toMatch(/0x31 \(only TCP/); // UNIX stream
    expect(error(v2('21110004c0000207'))).toMatch(/too short for its addresses/);
    expect(error(v2('210000020200'))).toBe('v2 TLV cut short');
    expect(error(v2('210000040200ff41'))).toMatch(/longer than the header/);
    expect(error(v2('2100000502000261' + '0a'))).toMatch(/not printable ASCII/);
    expect(error(v2(`21000084050081${'00'.repeat(129)}`))).toMatch(/longer than 128/);
  });

  it('needs more bytes until the length says the header is complete', () => {
    const h = proxyV2Header(
      { ip: '192.0.2.7', port: 1 },
      { ip: '192.0.2.8', port: 2 },
      { authority: 'a.example' },
    );
    for (let i = 1; i < h.length; i++) expect(parse(h.subarray(0, i))).toBeUndefined();
    expect(parse(h)?.length).toBe(h.length);
  });
});

describe('robustness', () => {
  it('random bytes, and valid headers with random bytes flipped, give a header, "need more" or a ProxyHeaderError', () => {
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 16;
    };
    const valid = [
      Buffer.from('PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n'),
      proxyV2Header(
        { ip: '2001:db8::1', port: 9 },
        { ip: '::1', port: 10 },
        { authority: 'x', crc32c: false },
      ),
      proxyV2Header(
        { ip: '192.0.2.7', port: 1 },
        { ip: '192.0.2.8', port: 2 },
        { ssl: { client: 1, verify: 0 } },
      ),
    ];
    for (let i = 0; i < 20_000; i++) {
      let data: Buffer;
      if (i % 2) {
        data = Buffer.from(valid[i % valid.length]!);
        for (let k = 0; k < 1 + (rand() % 3); k++) data[rand() % data.length] = rand() & 0xff;
      } else {
        data = Buffer.alloc(rand() % 200);
        for (let k = 0; k < data.length; k++) data[k] = rand() & 0xff;
        if (i % 4 === 0) Buffer.from(sig, 'hex').copy(data, 0, 0, Math.min(12, data.length));
      }
      try {
        const r = parseProxyHeader(data);
        if (r) expect(r.length).toBeLessThanOrEqual(data.length);
      } catch (e) {
        if (!(e instanceof ProxyHeaderError)) throw e;
      }
    }
  });
});

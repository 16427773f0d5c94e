// The PROXY v1 encoder (a proxy's side): the line for each address family, the limits, what it
// refuses, and a round trip through the parser (what proxyV1Header writes, parseProxyHeader reads).
import { describe, expect, it } from 'vitest';
import { PROXY_V1_MAX, parseProxyHeader, proxyV1Header } from '../src/index.js';

describe('proxyV1Header', () => {
  it('IPv4: TCP4, source then destination, ports last, CRLF', () => {
    expect(proxyV1Header({ ip: '192.0.2.1', port: 56324 }, { ip: '198.51.100.7', port: 443 })).toBe(
      'PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n',
    );
  });
  it('IPv6: TCP6, addresses as the socket gives them', () => {
    expect(proxyV1Header({ ip: '::1', port: 45402 }, { ip: '::1', port: 42961 })).toBe(
      'PROXY TCP6 ::1 ::1 45402 42961\r\n',
    );
  });
  it('an IPv4 client of a dual-stack listener is TCP4 with plain IPv4 addresses', () => {
    expect(proxyV1Header({ ip: '::ffff:127.0.0.1', port: 1 }, { ip: '::FFFF:127.0.0.2', port: 2 })).toBe(
      'PROXY TCP4 127.0.0.1 127.0.0.2 1 2\r\n',
    );
  });
  it('a mapped address facing a real IPv6 one stays TCP6; a zone is dropped', () => {
    expect(proxyV1Header({ ip: '::ffff:10.0.0.1', port: 1 }, { ip: '2001:db8::1', port: 2 })).toBe(
      'PROXY TCP6 ::ffff:10.0.0.1 2001:db8::1 1 2\r\n',
    );
    expect(proxyV1Header({ ip: 'fe80::1%eth0', port: 1 }, { ip: 'fe80::2%eth0', port: 2 })).toBe(
      'PROXY TCP6 fe80::1 fe80::2 1 2\r\n',
    );
  });
  it('the longest header fits the specification limit', () => {
    const ip = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    const h = proxyV1Header({ ip, port: 65535 }, { ip, port: 65535 });
    expect(h.length).toBe(PROXY_V1_MAX - 3);
  });
  it.each([
    ['', '127.0.0.1'],
    ['example.org', '127.0.0.1'],
    ['127.0.0.1', '::1'],
    ['127.0.0.1\r\nX', '127.0.0.1'],
  ])('refuses %j and %j (RangeError, nothing to send)', (a, b) => {
    expect(() => proxyV1Header({ ip: a, port: 1 }, { ip: b, port: 2 })).toThrow(RangeError);
  });
  it.each([-1, 65536, 1.5, Number.NaN])('refuses port %s', (port) => {
    expect(() => proxyV1Header({ ip: '127.0.0.1', port }, { ip: '127.0.0.1', port: 1 })).toThrow(/bad port/);
  });
});

describe('proxyV1Header then parseProxyHeader', () => {
  it.each([
    ['tcp4', { ip: '192.0.2.1', port: 56324 }, { ip: '198.51.100.7', port: 443 }],
    ['tcp4', { ip: '0.0.0.0', port: 0 }, { ip: '255.255.255.255', port: 65535 }],
    ['tcp6', { ip: '2001:db8::1', port: 1 }, { ip: '::1', port: 65535 }],
    ['tcp6', { ip: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', port: 65535 }, { ip: '::', port: 0 }],
  ] as const)('%s %j -> %j reads back the same endpoints and length', (family, source, destination) => {
    const line = proxyV1Header(source, destination);
    const bytes = Buffer.from(`${line}first byte of the client`, 'latin1');
    const r = parseProxyHeader(bytes);
    expect(r?.length).toBe(line.length);
    expect(r?.header).toMatchObject({ version: 1, proxied: true, family, source, destination });
  });
  it('a dual-stack IPv4 client reads back as plain IPv4', () => {
    const line = proxyV1Header({ ip: '::ffff:127.0.0.1', port: 7 }, { ip: '::ffff:127.0.0.2', port: 8 });
    expect(parseProxyHeader(Buffer.from(line))?.header).toMatchObject({
      family: 'tcp4',
      source: { ip: '127.0.0.1', port: 7 },
      destination: { ip: '127.0.0.2', port: 8 },
    });
  });
});

// The PROXY protocol's headers as a proxy sends them to its backend (HAProxy's proxy-protocol.txt):
// version 1, one line of text (section 2.1), and version 2, the binary form (section 2.2) with the
// TLVs HAProxy's `send-proxy-v2-ssl` adds.
import { isIPv4, isIPv6 } from 'node:net';
import { crc32c } from './crc32c.js';
import { PROXY_V2_SIGNATURE, type ProxyEndpoint, type ProxySsl } from './header.js';

/**
 * The version 1 header, `PROXY TCP4 SRC DST SPORT DPORT` and CRLF (`TCP6` for IPv6), for a
 * connection from `source` (the client: getpeername of the accepted socket) to `destination` (the
 * address it connected to: getsockname). An IPv4 client of a dual-stack listener (`::ffff:1.2.3.4`
 * on both ends) is written as TCP4 with plain IPv4 addresses, as a listener bound to IPv4 alone
 * would see it; an IPv6 zone (`%eth0`) is dropped, the header has no room for it. At most
 * PROXY_V1_MAX bytes. Throws a RangeError for an address that is not an IP address, ends of
 * different families, or a port outside 0-65535.
 */
export function proxyV1Header(source: ProxyEndpoint, destination: ProxyEndpoint): string {
  let src = v4Unmapped(source.ip);
  let dst = v4Unmapped(destination.ip);
  let family: 'TCP4' | 'TCP6';
  if (isIPv4(src) && isIPv4(dst)) family = 'TCP4';
  else if (isIPv6(withoutZone(source.ip)) && isIPv6(withoutZone(destination.ip))) {
    // Both IPv6 (a mapped address facing a real IPv6 one keeps its IPv6 form).
    family = 'TCP6';
    src = withoutZone(source.ip);
    dst = withoutZone(destination.ip);
  } else {
    throw new RangeError(
      `PROXY header: ${JSON.stringify(source.ip)} and ${JSON.stringify(destination.ip)} are not two IPv4 or two IPv6 addresses`,
    );
  }
  return `PROXY ${family} ${src} ${dst} ${v1Port(source.port)} ${v1Port(destination.port)}\r\n`;
}

function v1Port(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new RangeError(`PROXY header: bad port ${n}`);
  return n;
}

function withoutZone(ip: string): string {
  const percent = ip.indexOf('%');
  return percent < 0 ? ip : ip.slice(0, percent);
}

function v4Unmapped(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m?.[1] !== undefined && isIPv4(m[1]) ? m[1] : ip;
}

/** What a v2 header carries besides the addresses. */
export interface ProxyV2Extras {
  /** PP2_TYPE_ALPN: the protocol the client negotiated. */
  alpn?: string;
  /** PP2_TYPE_AUTHORITY: the host name the client asked for (its SNI). */
  authority?: string;
  /** PP2_TYPE_UNIQUE_ID (at most 128 bytes). */
  uniqueId?: Buffer;
  /** PP2_TYPE_SSL: the client's TLS (client bits, verify result, version, cipher, ...). */
  ssl?: ProxySsl;
  /** Add PP2_TYPE_CRC32C, the checksum of the whole header. */
  crc32c?: boolean;
}

const tlv = (type: number, value: Buffer): Buffer => {
  if (value.length > 0xffff) throw new RangeError(`PROXY v2 TLV 0x${type.toString(16)} too long`);
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(value.length, 1);
  return Buffer.concat([head, value]);
};

function ipBytes(ip: string, family: 4 | 6): Buffer {
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  // Expand `::` and an embedded IPv4 tail into eight 16-bit groups.
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const b = v4[1].split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1].length)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return out;
}

/**
 * The v2 header with command PROXY for a TCP connection from `source` to `destination` (both
 * IPv4 or both IPv6; an IPv4-mapped IPv6 address counts as IPv4), or with command LOCAL when
 * `source` is undefined. Throws a RangeError for addresses of different or unknown families.
 */
export function proxyV2Header(
  source: ProxyEndpoint | undefined,
  destination: ProxyEndpoint | undefined,
  extras: ProxyV2Extras = {},
): Buffer {
  let famProto = 0x00;
  let addresses = Buffer.alloc(0);
  if (source && destination) {
    const unmap = (ip: string) => ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '').replace(/%.*$/, '');
    const src = unmap(source.ip);
    const dst = unmap(destination.ip);
    const family = isIPv4(src) && isIPv4(dst) ? 4 : isIPv6(src) && isIPv6(dst) ? 6 : 0;
    if (family === 0)
      throw new RangeError(`PROXY v2: ${source.ip} and ${destination.ip} are not of one family`);
    famProto = family === 4 ? 0x11 : 0x21;
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(source.port, 0);
    ports.writeUInt16BE(destination.port, 2);
    addresses = Buffer.concat([ipBytes(src, family), ipBytes(dst, family), ports]);
  }
  const tlvs: Buffer[] = [];
  if (extras.alpn) tlvs.push(tlv(0x01, Buffer.from(extras.alpn, 'latin1')));
  if (extras.authority) tlvs.push(tlv(0x02, Buffer.from(extras.authority, 'latin1')));
  if (extras.uniqueId) {
    if (extras.uniqueId.length > 128) throw new RangeError('PROXY v2: unique ID longer than 128 bytes');
    tlvs.push(tlv(0x05, extras.uniqueId));
  }
  if (extras.ssl) {
    const s = extras.ssl;
    const head = Buffer.alloc(5);
    head[0] = s.client;
    head.writeUInt32BE(s.verify >>> 0, 1);
    const subs = [
      [0x21, s.version],
      [0x22, s.cn],
      [0x23, s.cipher],
      [0x24, s.sigAlg],
      [0x25, s.keyAlg],
    ] as const;
    const parts: Buffer[] = [head];
    for (const [type, value] of subs)
      if (value !== undefined) parts.push(tlv(type, Buffer.from(value, 'latin1')));
    tlvs.push(tlv(0x20, Buffer.concat(parts)));
  }
  if (extras.crc32c) tlvs.push(tlv(0x03, Buffer.alloc(4)));
  const body = Buffer.concat([addresses, ...tlvs]);
  if (body.length > 0xffff) throw new RangeError('PROXY v2: header too long');
  const fixed = Buffer.alloc(4);
  fixed[0] = source && destination ? 0x21 : 0x20;
  fixed[1] = famProto;
  fixed.writeUInt16BE(body.length, 2);
  const header = Buffer.concat([PROXY_V2_SIGNATURE, fixed, body]);
  // The checksum covers the whole header with its own field zeroed: it is the last 4 bytes.
  if (extras.crc32c) header.writeUInt32BE(crc32c(header), header.length - 4);
  return header;
}

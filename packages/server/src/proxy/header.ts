// The PROXY protocol's header (HAProxy's proxy-protocol.txt, versions 1 and 2), parsed strictly:
// a load balancer in front of the server says who the client really was. The parser is given the
// bytes received so far and answers "need more", a header and its length, or an error; it never
// looks further than a header can be long (107 bytes for v1, 16 + 65535 for v2).
import { isIPv4, isIPv6 } from 'node:net';
import { crc32c } from './crc32c.js';

/** An endpoint as the header gives it. */
export interface ProxyEndpoint {
  ip: string;
  port: number;
}

/** PP2_TYPE_SSL: what the balancer knew of its client's TLS. */
export interface ProxySsl {
  /** PP2_CLIENT_* bits: 0x01 TLS, 0x02 a certificate on this connection, 0x04 on the session. */
  client: number;
  /** 0 when the client's certificate was verified. */
  verify: number;
  version?: string;
  cn?: string;
  cipher?: string;
  sigAlg?: string;
  keyAlg?: string;
}

/** One parsed header. */
export interface ProxyHeader {
  version: 1 | 2;
  /**
   * Whether the header names the client: false for v1 `UNKNOWN`, v2 `LOCAL` (the balancer's own
   * health check) and v2 `UNSPEC`; the connection's own addresses stand then.
   */
  proxied: boolean;
  family?: 'tcp4' | 'tcp6';
  source?: ProxyEndpoint;
  destination?: ProxyEndpoint;
  /** v2 TLVs, in order, as sent (CRC32C and NOOP included). */
  tlvs: Array<{ type: number; value: Buffer }>;
  alpn?: Buffer;
  authority?: string;
  uniqueId?: Buffer;
  ssl?: ProxySsl;
  netns?: string;
}

/** The header is not valid; `message` says what is wrong, for the log. */
export class ProxyHeaderError extends Error {
  readonly code = 'UCSPI_ERR_PROXY_HEADER';
  constructor(message: string) {
    super(message);
    this.name = 'ProxyHeaderError';
  }
}

/** `undefined`: more bytes are needed. Otherwise the header and how many bytes it took. */
export type ProxyParse = { header: ProxyHeader; length: number } | undefined;

/** The v2 signature: CR LF CR LF NUL CR LF "QUIT" LF. */
export const PROXY_V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const V1_PREFIX = Buffer.from('PROXY ');
/** v1's longest line, CRLF included. */
export const PROXY_V1_MAX = 107;

const fail = (message: string): never => {
  throw new ProxyHeaderError(message);
};

/** Parse the header at the start of `data` (the bytes received so far). Throws ProxyHeaderError. */
export function parseProxyHeader(data: Buffer): ProxyParse {
  const n = Math.min(data.length, PROXY_V2_SIGNATURE.length);
  if (data.subarray(0, n).equals(PROXY_V2_SIGNATURE.subarray(0, n)))
    return n < PROXY_V2_SIGNATURE.length ? undefined : parseV2(data);
  const m = Math.min(data.length, V1_PREFIX.length);
  if (data.subarray(0, m).equals(V1_PREFIX.subarray(0, m)))
    return m < V1_PREFIX.length ? undefined : parseV1(data);
  return fail('no PROXY header');
}

const PORT = /^(0|[1-9][0-9]{0,4})$/;

function parseV1(data: Buffer): ProxyParse {
  const end = data.indexOf('\r\n');
  if (end < 0 || end + 2 > PROXY_V1_MAX) {
    if (data.length >= PROXY_V1_MAX) fail(`v1 line longer than ${PROXY_V1_MAX} bytes or without CRLF`);
    return undefined;
  }
  const line = data.toString('latin1', 0, end);
  const length = end + 2;
  const fields = line.split(' ');
  if (fields[1] === 'UNKNOWN') return { header: { version: 1, proxied: false, tlvs: [] }, length };
  if (fields.length !== 6) fail(`v1 line with ${fields.length} fields instead of 6`);
  const [, proto, src, dst, sport, dport] = fields as [string, string, string, string, string, string];
  if (proto !== 'TCP4' && proto !== 'TCP6')
    fail(`v1 protocol ${JSON.stringify(proto)} is none of TCP4, TCP6, UNKNOWN`);
  const valid = proto === 'TCP4' ? isIPv4 : isIPv6;
  for (const ip of [src, dst]) if (!valid(ip)) fail(`v1 address ${JSON.stringify(ip)} is not ${proto}`);
  const port = (p: string) =>
    PORT.test(p) && Number(p) <= 65535 ? Number(p) : fail(`v1 port ${JSON.stringify(p)}`);
  return {
    header: {
      version: 1,
      proxied: true,
      family: proto === 'TCP4' ? 'tcp4' : 'tcp6',
      source: { ip: src, port: port(sport) },
      destination: { ip: dst, port: port(dport) },
      tlvs: [],
    },
    length,
  };
}

function ipv6Text(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // The shortest form, as node:net reports addresses: the longest run of zero groups as `::`.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

function parseV2(data: Buffer): ProxyParse {
  if (data.length < 16) return undefined;
  const verCmd = data[12]!;
  if (verCmd >> 4 !== 2) fail(`v2 version ${verCmd >> 4}`);
  const command = verCmd & 0x0f;
  if (command > 1) fail(`v2 command ${command}`);
  const famProto = data[13]!;
  const bodyLength = data.readUInt16BE(14);
  const length = 16 + bodyLength;
  if (data.length < length) return undefined;
  const body = data.subarray(16, length);
  const header: ProxyHeader = { version: 2, proxied: false, tlvs: [] };
  let addrLength = 0;
  if (command === 1 && famProto !== 0x00) {
    if (famProto === 0x11) addrLength = 12;
    else if (famProto === 0x21) addrLength = 36;
    else
      fail(
        `v2 address family and transport 0x${famProto.toString(16).padStart(2, '0')} (only TCP over IPv4 or IPv6)`,
      );
    if (bodyLength < addrLength) fail(`v2 length ${bodyLength} too short for its addresses`);
    if (addrLength === 12) {
      header.family = 'tcp4';
      header.source = { ip: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8) };
      header.destination = { ip: [...body.subarray(4, 8)].join('.'), port: body.readUInt16BE(10) };
    } else {
      header.family = 'tcp6';
      header.source = { ip: ipv6Text(body.subarray(0, 16)), port: body.readUInt16BE(32) };
      header.destination = { ip: ipv6Text(body.subarray(16, 32)), port: body.readUInt16BE(34) };
    }
    header.proxied = true;
  } else if (command === 1) {
    // UNSPEC: the balancer does not know the client; the address block (if any) is ignored.
  } else {
    // LOCAL: the balancer's own connection (a health check); whatever follows is ignored.
    return { header, length };
  }
  readTlvs(header, body.subarray(addrLength));
  const crcTlv = header.tlvs.find((t) => t.type === 0x03);
  if (crcTlv) {
    if (crcTlv.value.length !== 4) fail('v2 CRC32C of a length other than 4');
    const copy = Buffer.from(data.subarray(0, length));
    // The checksum is computed with its own field zeroed.
    const at = crcTlv.value.byteOffset - data.byteOffset;
    copy.fill(0, at, at + 4);
    if (crc32c(copy) !== crcTlv.value.readUInt32BE(0)) fail('v2 CRC32C mismatch');
  }
  return { header, length };
}

function readTlvs(header: ProxyHeader, tlvs: Buffer): void {
  let at = 0;
  while (at < tlvs.length) {
    if (tlvs.length - at < 3) fail('v2 TLV cut short');
    const type = tlvs[at]!;
    const len = tlvs.readUInt16BE(at + 1);
    if (at + 3 + len > tlvs.length) fail(`v2 TLV 0x${type.toString(16)} longer than the header`);
    const value = tlvs.subarray(at + 3, at + 3 + len);
    header.tlvs.push({ type, value });
    switch (type) {
      case 0x01:
        header.alpn = Buffer.from(value);
        break;
      case 0x02:
        header.authority = text(value, 'authority');
        break;
      case 0x05:
        if (len > 128) fail('v2 unique ID longer than 128 bytes');
        header.uniqueId = Buffer.from(value);
        break;
      case 0x20:
        header.ssl = readSsl(value);
        break;
      case 0x30:
        header.netns = text(value, 'netns');
        break;
    }
    at += 3 + len;
  }
}

/** A TLV meant as text: printable ASCII only (it reaches logs and programs' environments). */
function text(value: Buffer, what: string): string {
  for (const c of value)
    if (c < 0x20 || c > 0x7e) fail(`v2 ${what} holds a byte that is not printable ASCII`);
  return value.toString('latin1');
}

function readSsl(value: Buffer): ProxySsl {
  if (value.length < 5) fail('v2 SSL TLV shorter than 5 bytes');
  const ssl: ProxySsl = { client: value[0]!, verify: value.readUInt32BE(1) };
  const sub: ProxyHeader = { version: 2, proxied: false, tlvs: [] };
  readTlvs(sub, value.subarray(5));
  for (const { type, value: v } of sub.tlvs) {
    if (type === 0x21) ssl.version = text(v, 'SSL version');
    else if (type === 0x22) ssl.cn = text(v, 'SSL CN');
    else if (type === 0x23) ssl.cipher = text(v, 'SSL cipher');
    else if (type === 0x24) ssl.sigAlg = text(v, 'SSL signature algorithm');
    else if (type === 0x25) ssl.keyAlg = text(v, 'SSL key algorithm');
  }
  return ssl;
}

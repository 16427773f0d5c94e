// A minimal DER reader: just enough to find a certificate's version, signature algorithm OID and
// an SSL_SESSION's session id. Every read is bounds-checked; malformed input returns undefined.

interface Tlv {
  tag: number;
  start: number; // first byte of the value
  end: number; // one past the last byte of the value
}

function readTlv(buf: Uint8Array, pos: number, limit: number): Tlv | undefined {
  if (pos + 2 > limit) return undefined;
  const tag = buf[pos]!;
  let len = buf[pos + 1]!;
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  if (start + len > limit) return undefined;
  return { tag, start, end: start + len };
}

function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.start;
  while (pos < parent.end) {
    const t = readTlv(buf, pos, parent.end);
    if (!t) return out;
    out.push(t);
    pos = t.end;
  }
  return out;
}

function oidText(buf: Uint8Array, t: Tlv): string {
  const parts: number[] = [];
  let v = 0;
  for (let i = t.start; i < t.end; i++) {
    v = v * 128 + (buf[i]! & 0x7f);
    if (!(buf[i]! & 0x80)) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** Version (1, 2 or 3) and signature algorithm OID of a DER certificate. */
export function certificateFacts(der: Uint8Array): { version?: number; sigAlgOid?: string } {
  const cert = readTlv(der, 0, der.length);
  if (cert?.tag !== 0x30) return {};
  const [tbs, sigAlg] = children(der, cert);
  if (!tbs || !sigAlg) return {};
  let version = 1;
  const first = children(der, tbs)[0];
  if (first && first.tag === 0xa0) {
    const int = children(der, first)[0];
    if (int && int.tag === 0x02 && int.end - int.start === 1) version = der[int.start]! + 1;
  }
  const oid = children(der, sigAlg)[0];
  return { version, sigAlgOid: oid && oid.tag === 0x06 ? oidText(der, oid) : undefined };
}

/**
 * The session id inside an OpenSSL-serialised SSL_SESSION (what TLSSocket.getSession() returns):
 * SEQUENCE { version, sslVersion, cipher OCTET STRING, sessionId OCTET STRING, ... }.
 */
export function sessionIdOf(session: Uint8Array): Uint8Array | undefined {
  const seq = readTlv(session, 0, session.length);
  if (seq?.tag !== 0x30) return undefined;
  const id = children(session, seq)[3];
  return id && id.tag === 0x04 ? session.subarray(id.start, id.end) : undefined;
}

/**
 * LDAP StartTLS: RFC 4511 section 4.14 (StartTLS operation), messages as section 4.1 in BER
 * (X.690, definite lengths). The client sends an ExtendedRequest with the StartTLS OID
 * 1.3.6.1.4.1.1466.20037 as message 1 and requires an ExtendedResponse with resultCode success.
 */
import { StartTlsErrorCodes } from '../errors.js';
import type { Dialogue, StartTlsProtocol } from '../protocol.js';

/** LDAP, port 389. */
export const protocol: StartTlsProtocol = { name: 'ldap', defaultPort: 389, client };

const STARTTLS_OID = '1.3.6.1.4.1.1466.20037';

/** The StartTLS ExtendedRequest: SEQUENCE { messageID 1, [APPLICATION 23] { [0] OID } }. */
export function startTlsRequest(): Buffer {
  const oid = Buffer.from(STARTTLS_OID, 'latin1');
  const ext = Buffer.concat([Buffer.from([0x80, oid.length]), oid]);
  const op = Buffer.concat([Buffer.from([0x77, ext.length]), ext]);
  const body = Buffer.concat([Buffer.from([0x02, 0x01, 0x01]), op]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

/** One BER element: tag, content, and the offset after it. */
interface Tlv {
  tag: number;
  value: Buffer;
  next: number;
}

/** Reads the BER element at `at` in `buf`; undefined when it is malformed or runs past the end. */
export function readTlv(buf: Buffer, at: number): Tlv | undefined {
  if (at + 2 > buf.length) return undefined;
  const tag = buf[at] as number;
  let len = buf[at + 1] as number;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // Indefinite lengths are not allowed in LDAP (RFC 4511 section 5.1); four bytes are plenty.
    if (n === 0 || n > 4 || p + n > buf.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p + i] as number);
    p += n;
  }
  if (p + len > buf.length) return undefined;
  return { tag, value: buf.subarray(p, p + len), next: p + len };
}

/** Parses an LDAPMessage holding an ExtendedResponse: its messageID and resultCode, or a reason it is not one. */
export function parseExtendedResponse(
  msg: Buffer,
): { messageId: number; resultCode: number; diagnostic: string } | string {
  const seq = readTlv(msg, 0);
  if (seq?.tag !== 0x30 || seq.next !== msg.length) return 'not an LDAPMessage';
  const id = readTlv(seq.value, 0);
  if (id?.tag !== 0x02 || id.value.length < 1 || id.value.length > 4) return 'no messageID';
  const messageId = id.value.readUIntBE(0, id.value.length);
  const op = readTlv(seq.value, id.next);
  if (!op) return 'no protocolOp';
  if (op.tag !== 0x78) return `protocolOp is tag 0x${op.tag.toString(16)}, not an ExtendedResponse`;
  const result = readTlv(op.value, 0);
  if (result?.tag !== 0x0a || result.value.length < 1 || result.value.length > 4) return 'no resultCode';
  const matched = readTlv(op.value, result.next);
  const diag = matched ? readTlv(op.value, matched.next) : undefined;
  return {
    messageId,
    resultCode: result.value.readUIntBE(0, result.value.length),
    diagnostic: diag?.tag === 0x04 ? diag.value.toString('utf8') : '',
  };
}

async function client(d: Dialogue): Promise<void> {
  d.write(startTlsRequest());
  const head = await d.readBytes(2);
  if (head[0] !== 0x30)
    d.fail(StartTlsErrorCodes.PROTOCOL, `not an LDAPMessage (tag 0x${head[0]?.toString(16)})`);
  let lengthBytes: Buffer = Buffer.alloc(0);
  let len = head[1] as number;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) d.fail(StartTlsErrorCodes.PROTOCOL, 'bad BER length in the response');
    lengthBytes = await d.readBytes(n);
    len = lengthBytes.readUIntBE(0, n);
  }
  const body = await d.readBytes(len);
  const parsed = parseExtendedResponse(Buffer.concat([head, lengthBytes, body]));
  if (typeof parsed === 'string') d.fail(StartTlsErrorCodes.PROTOCOL, `bad StartTLS response: ${parsed}`);
  // messageID 0 is an unsolicited notification (section 4.4.1, Notice of Disconnection).
  if (parsed.messageId !== 1 && parsed.resultCode === 0) {
    d.fail(
      StartTlsErrorCodes.PROTOCOL,
      `response to message ${parsed.messageId}, not to the StartTLS request`,
    );
  }
  if (parsed.resultCode !== 0) {
    // Section 4.14.2: protocolError (2) when StartTLS is not supported; unavailable (52) is temporary.
    const code = parsed.resultCode === 2 ? StartTlsErrorCodes.NOT_OFFERED : StartTlsErrorCodes.REFUSED;
    d.fail(
      code,
      `StartTLS refused, LDAP result code ${parsed.resultCode}${parsed.diagnostic ? `: ${parsed.diagnostic}` : ''}`,
      {
        temporary: parsed.resultCode === 51 || parsed.resultCode === 52,
      },
    );
  }
}

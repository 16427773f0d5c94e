/**
 * MySQL/MariaDB SSL: the MySQL client/server protocol, "Connection Phase" (Initial Handshake
 * Packet v10 and the SSLRequest packet, Protocol::SSLRequest). The server greets first; its
 * capability flags must include CLIENT_SSL (0x0800); the client answers with the 32-byte
 * SSLRequest (sequence id 1) and starts TLS at once, without a reply, as openssl s_client does.
 */
import { StartTlsErrorCodes } from '../errors.js';
import type { Dialogue, StartTlsProtocol } from '../protocol.js';

/** MySQL, port 3306. */
export const protocol: StartTlsProtocol = { name: 'mysql', defaultPort: 3306, client };

const CLIENT_SSL = 0x0800;

/**
 * The SSLRequest payload: the capability flags openssl s_client sends (CLIENT_SSL and
 * CLIENT_PROTOCOL_41 among them), max packet 16 MiB, charset 33 (utf8), 23 reserved zero bytes.
 */
export function sslRequest(sequence: number): Buffer {
  const payload = Buffer.alloc(32);
  payload.writeUInt32LE(0x007fae85, 0);
  payload.writeUInt32LE(0x01000000, 4);
  payload[8] = 0x21;
  return Buffer.concat([Buffer.from([32, 0, 0, sequence & 0xff]), payload]);
}

/** Checks an Initial Handshake packet's payload: undefined when it offers SSL, else the reason. */
export function checkGreeting(
  payload: Buffer,
): { error: (typeof StartTlsErrorCodes)[keyof typeof StartTlsErrorCodes]; reason: string } | undefined {
  if (payload[0] === 0xff) {
    // ERR_Packet: 0xff, error code (2), then (with a '#' SQL state) the message.
    const text = payload
      .subarray(3)
      .toString('utf8')
      .replace(/^#\w{5}/, '');
    return { error: StartTlsErrorCodes.GREETING, reason: `the server refused the connection: ${text}` };
  }
  if (payload[0] !== 0x0a) {
    return {
      error: StartTlsErrorCodes.PROTOCOL,
      reason: `protocol version ${payload[0]}, only 10 is supported`,
    };
  }
  const nul = payload.indexOf(0, 1);
  // server version, NUL, connection id (4), auth data part 1 (8), filler (1), capabilities (2).
  if (nul < 0 || nul + 1 + 4 + 8 + 1 + 2 > payload.length) {
    return { error: StartTlsErrorCodes.PROTOCOL, reason: 'the server greeting is too short' };
  }
  if (payload[nul + 13] !== 0)
    return { error: StartTlsErrorCodes.PROTOCOL, reason: 'the server greeting is malformed' };
  const caps = payload.readUInt16LE(nul + 14);
  if (!(caps & CLIENT_SSL))
    return { error: StartTlsErrorCodes.NOT_OFFERED, reason: 'the server does not offer SSL' };
  return undefined;
}

async function client(d: Dialogue): Promise<void> {
  const header = await d.readBytes(4);
  const length = header.readUIntLE(0, 3);
  if (length < 1) d.fail(StartTlsErrorCodes.PROTOCOL, 'empty greeting packet');
  const payload = await d.readBytes(length);
  const problem = checkGreeting(payload);
  if (problem) d.fail(problem.error, problem.reason);
  d.write(sslRequest((header[3] as number) + 1), 'SSLRequest');
}

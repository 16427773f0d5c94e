/**
 * PostgreSQL SSLRequest: the PostgreSQL protocol documentation, "Message Flow, SSL Session
 * Encryption" (section 55.2.10 in PostgreSQL 16). The client sends the 8-byte SSLRequest; the
 * server answers one byte, S (go ahead) or N (no TLS). Bytes after the S are refused: this is the
 * injection the PostgreSQL project fixed as CVE-2021-23214 (server) and CVE-2021-23222 (client).
 */
import { StartTlsErrorCodes } from '../errors.js';
import type { Dialogue, StartTlsProtocol } from '../protocol.js';

/** PostgreSQL, port 5432. */
export const protocol: StartTlsProtocol = { name: 'postgres', defaultPort: 5432, client };

/** Int32 length 8, Int32 request code 80877103 (1234 << 16 | 5679). */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

async function client(d: Dialogue): Promise<void> {
  d.write(SSL_REQUEST, 'SSLRequest');
  const [answer] = await d.readBytes(1);
  if (answer === 0x53) return; // 'S'
  if (answer === 0x4e) d.fail(StartTlsErrorCodes.NOT_OFFERED, 'the server does not offer SSL (answered N)');
  // 'E': a server too old for SSLRequest answers with an ErrorResponse.
  if (answer === 0x45) d.fail(StartTlsErrorCodes.REFUSED, 'the server answered the SSLRequest with an error');
  d.fail(StartTlsErrorCodes.PROTOCOL, `unexpected answer to the SSLRequest: byte 0x${answer?.toString(16)}`);
}

/**
 * LMTP STARTTLS: RFC 2033 (LMTP) section 4.1 (LHLO in place of EHLO), with STARTTLS as RFC 3207
 * sections 4 to 4.2 describe it for SMTP: LHLO, STARTTLS, and LHLO again after TLS.
 */
import type { StartTlsProtocol } from '../protocol.js';
import { helloAgain, helloThenStartTls } from './smtp.js';

/** LMTP, port 24. */
export const protocol: StartTlsProtocol = {
  name: 'lmtp',
  defaultPort: 24,
  client: (d) => helloThenStartTls(d, 'LHLO'),
  afterTls: (d) => helloAgain(d, 'LHLO'),
};

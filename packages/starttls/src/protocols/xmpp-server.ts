/**
 * XMPP server-to-server STARTTLS: RFC 6120 section 5.4 on a `jabber:server` stream (section 4.7),
 * the same negotiation as client-to-server.
 */
import type { StartTlsProtocol } from '../protocol.js';
import { xmppStartTls } from './xmpp.js';

/** XMPP server-to-server, port 5269. */
export const protocol: StartTlsProtocol = {
  name: 'xmpp-server',
  defaultPort: 5269,
  client: (d) => xmppStartTls(d, 'jabber:server'),
};

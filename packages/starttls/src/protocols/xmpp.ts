/**
 * XMPP STARTTLS: RFC 6120 section 5.4 (STARTTLS negotiation) on the stream header of section 4.7.
 * The client opens its stream to `host`, reads the server's stream header and features, requires
 * `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>` among them, sends `<starttls/>`, and waits
 * for `<proceed/>` (or `<failure/>`). Restarting the stream over TLS (section 5.4.3.3) is the
 * application's first step, as with openssl s_client.
 */
import { show } from '../_reply.js';
import { StartTlsErrorCodes } from '../errors.js';
import type { Dialogue, StartTlsProtocol } from '../protocol.js';

/** XMPP client-to-server, port 5222. */
export const protocol: StartTlsProtocol = {
  name: 'xmpp',
  defaultPort: 5222,
  client: (d) => xmppStartTls(d, 'jabber:client'),
};

// Stream features and TLS answers are small; a server sending more before them is refused.
const MAX_XML = 65_536;
const TLS_NS = 'urn:ietf:params:xml:ns:xmpp-tls';

/** The dialogue `xmpp` and `xmpp-server` share; `ns` is the stream's default namespace. */
export async function xmppStartTls(d: Dialogue, ns: 'jabber:client' | 'jabber:server'): Promise<void> {
  const host = d.options.host;
  if (!host || !/^[^\s<>&'"\x00-\x1f\x7f]{1,255}$/.test(host)) {
    d.fail(
      StartTlsErrorCodes.BAD_OPTION,
      `needs a host (the stream's 'to') without XML special characters, not ${show(host ?? '')}`,
    );
  }
  d.write(
    `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='${ns}' to='${host}' version='1.0'>`,
  );
  // Everything up to the end of the features, or a stream error (RFC 6120 section 4.9).
  const text = await d.readUntil(
    /<\/(?:stream:)?features\s*>|<(?:stream:)?features(?:\s[^>]*)?\/>|<\/(?:stream:)?error\s*>|<\/(?:stream:)?stream\s*>/,
    MAX_XML,
  );
  if (/<(?:stream:)?error[\s>]/.test(text) || /<\/(?:stream:)?stream\s*>/.test(text)) {
    d.fail(StartTlsErrorCodes.GREETING, `the server ended the stream: ${show(text)}`, { reply: text });
  }
  if (!/<stream:stream[\s>]|<stream\s/.test(text)) {
    d.fail(StartTlsErrorCodes.PROTOCOL, `no stream header from the server: ${show(text)}`, { reply: text });
  }
  if (!new RegExp(`<starttls\\s[^>]*xmlns=['"]${TLS_NS}['"]`).test(text)) {
    d.fail(
      StartTlsErrorCodes.NOT_OFFERED,
      'the server does not offer STARTTLS (not in its stream features)',
      {
        reply: text,
      },
    );
  }
  d.write(`<starttls xmlns='${TLS_NS}'/>`);
  const answer = await d.readUntil(/<proceed[\s/>][^>]*>|<failure[\s/>][^>]*>/, MAX_XML);
  if (!/<proceed[\s/>]/.test(answer) || /<failure[\s/>]/.test(answer)) {
    d.fail(StartTlsErrorCodes.REFUSED, `STARTTLS refused: ${show(answer)}`, { reply: answer });
  }
  // <proceed ...></proceed> written out long: its closing tag is part of the go-ahead.
  if (!/\/>$/.test(answer)) await d.readUntil(/^\s*<\/proceed\s*>/, MAX_XML);
}

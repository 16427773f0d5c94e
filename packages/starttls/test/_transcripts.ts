import type { StartTlsClientOptions } from '../src/index.js';
import type { Step } from './_script.js';

/** A protocol's happy path as a scripted server sees it: the plaintext part and the after-TLS part. */
export interface Transcript {
  protocol: string;
  options?: StartTlsClientOptions;
  /** Up to and including the server's go-ahead (for mysql, the client's SSLRequest). */
  before: Step[];
  /** The client starts TLS without a go-ahead (MySQL): the scripted server accepts a ClientHello already read. */
  eager?: boolean;
  /** Over TLS, before the socket is handed back (SMTP's second EHLO). */
  after?: Step[];
}

const LDAP_REQUEST = '301d02010177188016312e332e362e312e342e312e313436362e3230303337';
// SEQUENCE { messageID 1, ExtendedResponse { resultCode 0, matchedDN "", diagnosticMessage "" } }
const LDAP_SUCCESS = '300c02010178070a010004000400';
// MySQL Initial Handshake v10: version "8.0.0-test", id 1, salt, filler, caps 0xffff (CLIENT_SSL set), ...
const MYSQL_GREETING_PAYLOAD =
  '0a' +
  Buffer.from('8.0.0-test\0', 'latin1').toString('hex') +
  '01000000' +
  '3132333435363738' +
  '00' +
  'ffff' +
  '21' +
  '0200' +
  'ffc1' +
  '15' +
  '00000000000000000000' +
  Buffer.from('abcdefghijkl\0', 'latin1').toString('hex') +
  Buffer.from('mysql_native_password\0', 'latin1').toString('hex');

/** A MySQL packet: 3-byte length, sequence id, payload (hex). */
export function mysqlPacket(payloadHex: string, seq = 0): string {
  const len = payloadHex.length / 2;
  return Buffer.from([len & 0xff, (len >> 8) & 0xff, len >> 16, seq]).toString('hex') + payloadHex;
}
const MYSQL_SSL_REQUEST = `2000000185ae7f0000000001 21${'00'.repeat(23)}`;

/** One happy path per client protocol, each as a real server of that protocol talks. */
export const transcripts: Transcript[] = [
  {
    protocol: 'smtp',
    before: [
      'S: 220-mx.test ESMTP Exim',
      'S: 220 welcome',
      'C: EHLO client.test',
      'S: 250-mx.test Hello client.test',
      'S: 250-SIZE 52428800',
      'S: 250-PIPELINING',
      'S: 250-STARTTLS',
      'S: 250 HELP',
      'C: STARTTLS',
      'S: 220 TLS go ahead',
    ],
    after: ['C: EHLO client.test', 'S: 250-mx.test Hello client.test', 'S: 250-AUTH PLAIN', 'S: 250 HELP'],
  },
  {
    protocol: 'lmtp',
    before: [
      'S: 220 lmtp.test LMTP ready',
      'C: LHLO client.test',
      'S: 250-lmtp.test',
      'S: 250-8BITMIME',
      'S: 250-STARTTLS',
      'S: 250 PIPELINING',
      'C: STARTTLS',
      'S: 220 2.0.0 Begin TLS.',
    ],
    after: ['C: LHLO client.test', 'S: 250-lmtp.test', 'S: 250 PIPELINING'],
  },
  {
    protocol: 'pop3',
    before: [
      'S: +OK Dovecot ready.',
      'C: CAPA',
      'S: +OK',
      'S: CAPA',
      'S: TOP',
      'S: STLS',
      'S: SASL',
      'S: .',
      'C: STLS',
      'S: +OK Begin TLS negotiation now.',
    ],
  },
  {
    protocol: 'imap',
    before: [
      'S: * OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] Dovecot ready.',
      'C: a1 CAPABILITY',
      'S: * CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED',
      'S: a1 OK Pre-login capabilities listed, post-login capabilities have more.',
      'C: a2 STARTTLS',
      'S: a2 OK Begin TLS negotiation now.',
    ],
  },
  {
    protocol: 'nntp',
    before: [
      'S: 200 news.test InterNetNews server INN 2.7 ready (posting ok)',
      'C: CAPABILITIES',
      'S: 101 Capability list:',
      'S: VERSION 2',
      'S: READER',
      'S: STARTTLS',
      'S: .',
      'C: STARTTLS',
      'S: 382 Begin TLS negotiation now',
    ],
  },
  {
    protocol: 'ftp',
    before: [
      'S: 220-ftp.test FTP server',
      'S: welcome text without a code',
      'S: 220 ready',
      'C: AUTH TLS',
      'S: 234 Proceed with negotiation.',
    ],
  },
  {
    protocol: 'sieve',
    before: [
      'S: "IMPLEMENTATION" "Dovecot Pigeonhole"',
      'S: "SIEVE" "fileinto reject envelope"',
      'S: "NOTIFY" "mailto"',
      'S: "SASL" ""',
      'S: "STARTTLS"',
      'S: "VERSION" "1.0"',
      'S: OK "Dovecot ready."',
      'C: STARTTLS',
      'S: OK "Begin TLS negotiation now."',
    ],
    after: [
      'S: "IMPLEMENTATION" "Dovecot Pigeonhole"',
      'S: "SASL" "PLAIN"',
      'S: "VERSION" "1.0"',
      'S: OK "TLS negotiation successful."',
    ],
  },
  {
    protocol: 'xmpp',
    options: { host: 'chat.test' },
    before: [
      `C~ <?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' to='chat.test' version='1.0'>`,
      `S~ <?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='chat.test' version='1.0' xml:lang='en'>`,
      `S~ <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`,
      `C~ <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
      `S~ <proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
    ],
  },
  {
    protocol: 'xmpp-server',
    options: { host: 'chat.test' },
    before: [
      `C~ <?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:server' to='chat.test' version='1.0'>`,
      `S~ <?xml version="1.0"?><stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams" id="s2" version="1.0">`,
      `S~ <stream:features><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/></stream:features>`,
      `C~ <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
      `S~ <proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"></proceed>`,
    ],
  },
  { protocol: 'ldap', before: [`C= ${LDAP_REQUEST}`, `S= ${LDAP_SUCCESS}`] },
  { protocol: 'postgres', before: ['C= 0000000804d2162f', 'S= 53'] },
  {
    protocol: 'mysql',
    eager: true,
    before: [`S= ${mysqlPacket(MYSQL_GREETING_PAYLOAD)}`, `C= ${MYSQL_SSL_REQUEST}`],
  },
  {
    protocol: 'irc',
    before: [
      'C: STARTTLS',
      'S: :irc.test NOTICE * :*** Looking up your hostname...',
      'S: PING :12345',
      'C: PONG :12345',
      'S: :irc.test 670 * :STARTTLS successful, go ahead with TLS handshake',
    ],
  },
  {
    protocol: 'connect',
    options: { host: 'mail.test:465', username: 'proxyuser', password: 'secret' },
    before: [
      'C: CONNECT mail.test:465 HTTP/1.1',
      'C: Host: mail.test:465',
      `C: Proxy-Authorization: Basic ${Buffer.from('proxyuser:secret').toString('base64')}`,
      'C: ',
      'S: HTTP/1.1 200 Connection established',
      'S: Proxy-Agent: test',
      'S: ',
    ],
  },
];

export { LDAP_REQUEST, LDAP_SUCCESS, MYSQL_GREETING_PAYLOAD, MYSQL_SSL_REQUEST };

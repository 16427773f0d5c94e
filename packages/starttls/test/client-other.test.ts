import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StartTlsClientOptions, StartTlsErrorCodes } from '../src/index.js';
import { clientFailure, runClient, type Step, scriptedServer } from './_script.js';
import { LDAP_REQUEST, MYSQL_GREETING_PAYLOAD, mysqlPacket } from './_transcripts.js';

// Transcripts of the ways the other protocols' client dialogues fail (nntp, ftp, sieve, xmpp,
// ldap, postgres, mysql, irc, connect); the happy paths are in the shared suite.

let pki: TestPki;
let cleanup: () => void;
beforeAll(() => {
  const dir = tempDir('starttls-client-other-');
  cleanup = dir.cleanup;
  pki = createTestPki(dir.path);
});
afterAll(() => cleanup());

/** Runs the client against a scripted server and returns the error it failed with. */
const failure = (protocol: string, steps: Step[], options: StartTlsClientOptions = {}) =>
  clientFailure(pki, protocol, steps, options);

describe('other protocols', () => {
  it('nntp: 502 to STARTTLS is REFUSED; a 400 greeting is temporary', async () => {
    expect(
      await failure('nntp', [
        'S: 200 hi',
        'C: CAPABILITIES',
        'S: 101 caps',
        'S: STARTTLS',
        'S: .',
        'C: STARTTLS',
        'S: 502 no',
        'EOF',
      ]),
    ).toMatchObject({ code: StartTlsErrorCodes.REFUSED });
    expect(await failure('nntp', ['S: 400 busy', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.GREETING,
      temporary: true,
    });
    expect(
      await failure('nntp', ['S: 201 hi', 'C: CAPABILITIES', 'S: 101 caps', 'S: READER', 'S: .', 'EOF']),
    ).toMatchObject({ code: StartTlsErrorCodes.NOT_OFFERED });
  });
  it('ftp: 502 to AUTH TLS is NOT_OFFERED, 534 REFUSED, a 421 greeting temporary', async () => {
    expect(await failure('ftp', ['S: 220 hi', 'C: AUTH TLS', 'S: 502 no', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.NOT_OFFERED,
    });
    expect(await failure('ftp', ['S: 220 hi', 'C: AUTH TLS', 'S: 534 policy', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.REFUSED,
    });
    expect(await failure('ftp', ['S: 421 busy', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.GREETING,
      temporary: true,
    });
  });
  it('sieve: no "STARTTLS" capability is NOT_OFFERED; NO is REFUSED', async () => {
    expect(await failure('sieve', ['S: "SIEVE" "fileinto"', 'S: OK', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.NOT_OFFERED,
    });
    expect(
      await failure('sieve', ['S: "STARTTLS"', 'S: OK', 'C: STARTTLS', 'S: NO "later"', 'EOF']),
    ).toMatchObject({
      code: StartTlsErrorCodes.REFUSED,
    });
  });
  it('xmpp: no host is BAD_OPTION; features without starttls NOT_OFFERED; failure REFUSED; stream error GREETING', async () => {
    expect(await failure('xmpp', ['EOF'])).toMatchObject({ code: StartTlsErrorCodes.BAD_OPTION });
    expect(await failure('xmpp', ['EOF'], { host: "x' evil='" })).toMatchObject({
      code: StartTlsErrorCodes.BAD_OPTION,
    });
    const header = `S~ <?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;
    // The client's stream header has no line end: read it as bytes up to its '>'.
    const hdr = `C~ <?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' to='chat.test' version='1.0'>`;
    expect(
      await failure(
        'xmpp',
        [
          hdr,
          header,
          `S~ <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`,
          'EOF',
        ],
        {
          host: 'chat.test',
        },
      ),
    ).toMatchObject({ code: StartTlsErrorCodes.NOT_OFFERED });
    expect(
      await failure(
        'xmpp',
        [
          hdr,
          header,
          `S~ <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>`,
          `C~ <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
          `S~ <failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>`,
          'EOF',
        ],
        { host: 'chat.test' },
      ),
    ).toMatchObject({ code: StartTlsErrorCodes.REFUSED });
    expect(
      await failure(
        'xmpp',
        [
          hdr,
          header,
          `S~ <stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
          'EOF',
        ],
        { host: 'chat.test' },
      ),
    ).toMatchObject({ code: StartTlsErrorCodes.GREETING });
  });
  it('ldap: protocolError is NOT_OFFERED, unavailable REFUSED and temporary, garbage PROTOCOL', async () => {
    const resp = (code: number) => `S= 300c02010178070a01${code.toString(16).padStart(2, '0')}04000400`;
    expect(await failure('ldap', [`C= ${LDAP_REQUEST}`, resp(2), 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.NOT_OFFERED,
    });
    expect(await failure('ldap', [`C= ${LDAP_REQUEST}`, resp(52), 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.REFUSED,
      temporary: true,
    });
    expect(await failure('ldap', [`C= ${LDAP_REQUEST}`, 'S= 3003020101', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.PROTOCOL,
    });
    expect(await failure('ldap', [`C= ${LDAP_REQUEST}`, 'S= 308f', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.PROTOCOL,
    });
  });
  it('postgres: N is NOT_OFFERED, E REFUSED, anything else PROTOCOL', async () => {
    expect(await failure('postgres', ['C= 0000000804d2162f', 'S= 4e', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.NOT_OFFERED,
    });
    expect(await failure('postgres', ['C= 0000000804d2162f', 'S= 45', 'DRAIN'])).toMatchObject({
      code: StartTlsErrorCodes.REFUSED,
    });
    expect(await failure('postgres', ['C= 0000000804d2162f', 'S= 48', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.PROTOCOL,
    });
  });
  it('mysql: no CLIENT_SSL is NOT_OFFERED, an error packet GREETING, version 9 PROTOCOL', async () => {
    const noSsl = MYSQL_GREETING_PAYLOAD.replace(/00ffff21/, '00fff721');
    expect(noSsl).not.toBe(MYSQL_GREETING_PAYLOAD);
    expect(await failure('mysql', [`S= ${mysqlPacket(noSsl)}`, 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.NOT_OFFERED,
    });
    const err = `ff6a04${Buffer.from('Host is blocked').toString('hex')}`;
    expect(await failure('mysql', [`S= ${mysqlPacket(err)}`, 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.GREETING,
    });
    expect(
      await failure('mysql', [`S= ${mysqlPacket(`09${MYSQL_GREETING_PAYLOAD.slice(2)}`)}`, 'EOF']),
    ).toMatchObject({
      code: StartTlsErrorCodes.PROTOCOL,
    });
  });
  it('irc: 421 STARTTLS is NOT_OFFERED, 691 REFUSED', async () => {
    expect(
      await failure('irc', ['C: STARTTLS', 'S: :irc.test 421 * STARTTLS :Unknown command', 'EOF']),
    ).toMatchObject({
      code: StartTlsErrorCodes.NOT_OFFERED,
    });
    expect(
      await failure('irc', ['C: STARTTLS', 'S: :irc.test 691 * :STARTTLS failure', 'EOF']),
    ).toMatchObject({
      code: StartTlsErrorCodes.REFUSED,
    });
  });
  it('connect: 407 is PROXY_AUTH, 502 REFUSED and temporary, a non-HTTP answer PROTOCOL, no target BAD_OPTION', async () => {
    const req = ['C: CONNECT mail.test:25 HTTP/1.1', 'C: Host: mail.test:25', 'C: '];
    const opts = { host: 'mail.test', port: 25 };
    expect(
      await failure('connect', [...req, 'S: HTTP/1.1 407 Proxy Authentication Required', 'S: ', 'EOF'], opts),
    ).toMatchObject({
      code: StartTlsErrorCodes.PROXY_AUTH,
    });
    expect(
      await failure('connect', [...req, 'S: HTTP/1.0 502 Bad Gateway', 'S: ', 'EOF'], opts),
    ).toMatchObject({
      code: StartTlsErrorCodes.REFUSED,
      temporary: true,
    });
    expect(await failure('connect', [...req, 'S: SSH-2.0-OpenSSH', 'EOF'], opts)).toMatchObject({
      code: StartTlsErrorCodes.PROTOCOL,
    });
    expect(await failure('connect', ['EOF'], { host: 'mail.test' })).toMatchObject({
      code: StartTlsErrorCodes.BAD_OPTION,
    });
    expect(await failure('connect', ['EOF'], { host: 'mail.test:25\r\nX-Evil: 1' })).toMatchObject({
      code: StartTlsErrorCodes.BAD_OPTION,
    });
    expect(
      await failure('connect', ['EOF'], { host: 'a:1', username: 'user:name', password: 'p' }),
    ).toMatchObject({
      code: StartTlsErrorCodes.BAD_OPTION,
    });
  });
  it('connect: an IPv6 target is bracketed', async () => {
    const { port, done } = await scriptedServer(
      ['C: CONNECT [::1]:443 HTTP/1.1', 'C: Host: [::1]:443', 'C: ', 'S: HTTP/1.1 200 OK', 'S: ', 'TLS'],
      pki,
    );
    const tls = await runClient(port, 'connect', pki, { host: '::1', port: 443 });
    await done;
    tls.destroy();
  });
});

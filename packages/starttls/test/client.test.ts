import diagnostics_channel from 'node:diagnostics_channel';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isClientProtocol,
  isServerProtocol,
  type LineMessage,
  loadProtocol,
  type StartTlsClientOptions,
  StartTlsErrorCodes,
  startTlsClient,
} from '../src/index.js';
import { clientHandshake, readLineFrom, runClient, type Step, scriptedServer } from './_script.js';
import { LDAP_REQUEST, MYSQL_GREETING_PAYLOAD, mysqlPacket } from './_transcripts.js';

// Per-protocol transcripts of the ways a client dialogue fails (the happy paths are in the shared
// suite), and the core's own features: limits, deadline, options, diagnostics, the registry.

let pki: TestPki;
let cleanup: () => void;
beforeAll(() => {
  const dir = tempDir('starttls-client-');
  cleanup = dir.cleanup;
  pki = createTestPki(dir.path);
});
afterAll(() => cleanup());

/** Runs the client against a scripted server and returns the error it failed with. */
async function failure(protocol: string, steps: Step[], options: StartTlsClientOptions = {}) {
  const { port, done } = await scriptedServer(steps, pki);
  const err = await runClient(port, protocol, pki, options).then(
    () => new Error('the dialogue succeeded'),
    (e: unknown) => e as { code: string; temporary: boolean; message: string; reply?: string },
  );
  await done;
  return err;
}

const SMTP_EHLO = ['S: 220 mx.test ESMTP', 'C: EHLO client.test'];

describe('smtp', () => {
  it('a 554 greeting is GREETING, permanent; a 421 greeting is temporary', async () => {
    expect(await failure('smtp', ['S: 554 go away', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.GREETING,
      temporary: false,
    });
    expect(await failure('smtp', ['S: 421 busy', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.GREETING,
      temporary: true,
    });
  });
  it('STARTTLS missing from EHLO is NOT_OFFERED (no plaintext fall-back)', async () => {
    expect(await failure('smtp', [...SMTP_EHLO, 'S: 250-mx.test', 'S: 250 PIPELINING', 'EOF'])).toMatchObject(
      {
        code: StartTlsErrorCodes.NOT_OFFERED,
      },
    );
  });
  it('STARTTLS as a word inside another keyword line does not count', async () => {
    expect(
      await failure('smtp', [...SMTP_EHLO, 'S: 250-mx.test', 'S: 250 X-NO-STARTTLS', 'EOF']),
    ).toMatchObject({
      code: StartTlsErrorCodes.NOT_OFFERED,
    });
  });
  it('EHLO refused is NOT_OFFERED', async () => {
    expect(await failure('smtp', [...SMTP_EHLO, 'S: 502 command not implemented', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.NOT_OFFERED,
    });
  });
  it('454 to STARTTLS is REFUSED and temporary; 501 permanent', async () => {
    const base = [...SMTP_EHLO, 'S: 250-mx.test', 'S: 250 STARTTLS', 'C: STARTTLS'];
    expect(await failure('smtp', [...base, 'S: 454 4.7.0 TLS not available', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.REFUSED,
      temporary: true,
      reply: '454 4.7.0 TLS not available',
    });
    expect(await failure('smtp', [...base, 'S: 501 5.5.4 no', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.REFUSED,
      temporary: false,
    });
  });
  it('a malformed reply or a code changing inside a multi-line reply is PROTOCOL', async () => {
    expect(await failure('smtp', ['S: hello there', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.PROTOCOL,
    });
    expect(await failure('smtp', ['S: 220-a', 'S: 250 b', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.PROTOCOL,
    });
  });
  it('EHLO after TLS refused is PROTOCOL', async () => {
    expect(
      await failure('smtp', [
        ...SMTP_EHLO,
        'S: 250-mx.test',
        'S: 250 STARTTLS',
        'C: STARTTLS',
        'S: 220 go',
        'TLS',
        'C: EHLO client.test',
        'S: 550 no',
        'EOF',
      ]),
    ).toMatchObject({ code: StartTlsErrorCodes.PROTOCOL });
  });
  it('bytes the server sends after its EHLO reply over TLS are handed back, not lost', async () => {
    const { port, done } = await scriptedServer(
      [
        ...SMTP_EHLO,
        'S: 250-mx.test',
        'S: 250 STARTTLS',
        'C: STARTTLS',
        'S: 220 go',
        'TLS',
        'C: EHLO client.test',
        'S: 250 ok',
        'S: 250 early',
      ],
      pki,
    );
    const tls = await runClient(port, 'smtp', pki);
    await done;
    expect(await readLineFrom(tls)).toBe('250 early');
    tls.destroy();
  });
  it('a helo with CR LF in it is BAD_OPTION before anything is sent', async () => {
    expect(await failure('smtp', ['S: 220 mx.test', 'EOF'], { helo: 'x\r\nMAIL FROM:<a@b>' })).toMatchObject({
      code: StartTlsErrorCodes.BAD_OPTION,
    });
  });
  it('lmtp: the same dialogue with LHLO; a missing STARTTLS is NOT_OFFERED', async () => {
    expect(await failure('lmtp', ['S: 220 lmtp', 'C: LHLO client.test', 'S: 250 lmtp', 'EOF'])).toMatchObject(
      {
        code: StartTlsErrorCodes.NOT_OFFERED,
      },
    );
  });
});

describe('pop3', () => {
  it('-ERR greeting is GREETING', async () => {
    expect(await failure('pop3', ['S: -ERR go away', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.GREETING,
    });
  });
  it('CAPA without STLS is NOT_OFFERED', async () => {
    expect(await failure('pop3', ['S: +OK', 'C: CAPA', 'S: +OK', 'S: USER', 'S: .', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.NOT_OFFERED,
    });
  });
  it('a server without CAPA is asked STLS; -ERR is REFUSED', async () => {
    expect(
      await failure('pop3', [
        'S: +OK',
        'C: CAPA',
        'S: -ERR unknown command',
        'C: STLS',
        'S: -ERR no TLS',
        'EOF',
      ]),
    ).toMatchObject({ code: StartTlsErrorCodes.REFUSED });
  });
});

describe('imap', () => {
  it('PREAUTH and BYE greetings are GREETING', async () => {
    expect(await failure('imap', ['S: * PREAUTH logged in', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.GREETING,
    });
    expect(await failure('imap', ['S: * BYE busy', 'EOF'])).toMatchObject({
      code: StartTlsErrorCodes.GREETING,
    });
  });
  it('CAPABILITY without STARTTLS is NOT_OFFERED', async () => {
    const steps = [
      'S: * OK hi',
      'C: a1 CAPABILITY',
      'S: * CAPABILITY IMAP4rev1 AUTH=PLAIN',
      'S: a1 OK done',
      'EOF',
    ];
    expect(await failure('imap', steps)).toMatchObject({ code: StartTlsErrorCodes.NOT_OFFERED });
  });
  it('STARTTLS answered NO or BAD is REFUSED; a line of another tag is not the answer', async () => {
    const steps = [
      'S: * OK hi',
      'C: a1 CAPABILITY',
      'S: * CAPABILITY IMAP4rev1 STARTTLS',
      'S: a1 OK done',
      'C: a2 STARTTLS',
      'S: * OK still here',
      'S: a2 NO not now',
      'EOF',
    ];
    expect(await failure('imap', steps)).toMatchObject({ code: StartTlsErrorCodes.REFUSED });
  });
});

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

describe('core', () => {
  it('a line longer than maxLineLength is LINE_TOO_LONG, also while it is still arriving', async () => {
    expect(await failure('smtp', [`S: 220 ${'x'.repeat(200)}`, 'EOF'], { maxLineLength: 100 })).toMatchObject(
      {
        code: StartTlsErrorCodes.LINE_TOO_LONG,
      },
    );
    expect(
      await failure('smtp', [`S~ 220 ${'x'.repeat(5000)}`, 'EOF'], { maxLineLength: 1000 }),
    ).toMatchObject({
      code: StartTlsErrorCodes.LINE_TOO_LONG,
    });
  });
  it('a line of exactly maxLineLength is accepted', async () => {
    const long = `220 ${'x'.repeat(96)}`;
    expect(long.length).toBe(100);
    expect(
      await failure('smtp', [`S: ${long}`, 'C: EHLO client.test', 'S: 250 x', 'EOF'], { maxLineLength: 100 }),
    ).toMatchObject({
      code: StartTlsErrorCodes.NOT_OFFERED,
    });
  });
  it('EOF in the middle of a multi-line reply is EOF, temporary', async () => {
    expect(await failure('smtp', [...SMTP_EHLO, 'S: 250-mx.test', 'S~ 250-STA'])).toMatchObject({
      code: StartTlsErrorCodes.EOF,
      temporary: true,
    });
  });
  it('a silent server is TIMEOUT, temporary', async () => {
    expect(await failure('smtp', ['DRAIN'], { timeoutMs: 200 })).toMatchObject({
      code: StartTlsErrorCodes.TIMEOUT,
      temporary: true,
    });
  });
  it('bad timeoutMs or maxLineLength is BAD_OPTION; an unknown protocol UNKNOWN_PROTOCOL', async () => {
    expect(await failure('smtp', ['DRAIN'], { timeoutMs: -1 })).toMatchObject({
      code: StartTlsErrorCodes.BAD_OPTION,
    });
    expect(await failure('smtp', ['DRAIN'], { maxLineLength: 3 })).toMatchObject({
      code: StartTlsErrorCodes.BAD_OPTION,
    });
    expect(await failure('gopher', ['DRAIN'])).toMatchObject({ code: StartTlsErrorCodes.UNKNOWN_PROTOCOL });
  });
  it('a failing handshake passes its own error through and destroys the socket', async () => {
    const { port, done } = await scriptedServer(['C= 0000000804d2162f', 'S= 53', 'DRAIN'], pki);
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const boom = new Error('handshake failed');
    await expect(startTlsClient(socket, 'postgres', () => Promise.reject(boom))).rejects.toBe(boom);
    expect(socket.destroyed).toBe(true);
    await done;
  });
  it('publishes every line on ucspi:starttls:line, the proxy password redacted', async () => {
    const lines: LineMessage[] = [];
    const onLine = (m: unknown) => lines.push(m as LineMessage);
    diagnostics_channel.subscribe('ucspi:starttls:line', onLine);
    try {
      const { port, done } = await scriptedServer(
        [
          'C: /^CONNECT/',
          'C: /^Host/',
          'C: /^Proxy-Authorization: Basic /',
          'C: ',
          'S: HTTP/1.1 200 OK',
          'S: ',
          'TLS',
        ],
        pki,
      );
      const tls = await runClient(port, 'connect', pki, {
        host: 'a.test:1',
        username: 'u',
        password: 'hunter2',
      });
      await done;
      tls.destroy();
    } finally {
      diagnostics_channel.unsubscribe('ucspi:starttls:line', onLine);
    }
    const text = JSON.stringify(lines);
    expect(text).not.toContain(Buffer.from('u:hunter2').toString('base64'));
    expect(text).not.toContain('hunter2');
    expect(lines).toContainEqual(
      expect.objectContaining({
        direction: 'received',
        line: 'HTTP/1.1 200 OK',
        protocol: 'connect',
        side: 'client',
      }),
    );
    expect(lines.some((l) => l.direction === 'sent' && l.line.includes('<redacted>'))).toBe(true);
  });
  it('the registry knows names case-insensitively and stunnel aliases', async () => {
    expect(isClientProtocol('SMTP')).toBe(true);
    expect(isClientProtocol('pgsql')).toBe(true);
    expect(isClientProtocol('toString')).toBe(false);
    expect(isServerProtocol('imap')).toBe(true);
    expect(isServerProtocol('ldap')).toBe(false);
    expect((await loadProtocol('pgsql')).name).toBe('postgres');
    await expect(loadProtocol('__proto__')).rejects.toMatchObject({
      code: StartTlsErrorCodes.UNKNOWN_PROTOCOL,
    });
  });
  it('accepts a protocol object of the caller (the interface is public)', async () => {
    const server = createServer((s) => s.write('READY\r\n'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const socket = connect((server.address() as { port: number }).port, '127.0.0.1');
    await once(socket, 'connect');
    const seen: string[] = [];
    await expect(
      startTlsClient(
        socket,
        {
          name: 'toy',
          defaultPort: 1,
          async client(d) {
            seen.push(await d.readLine());
            d.fail(StartTlsErrorCodes.REFUSED, 'toy says no');
          },
        },
        clientHandshake(pki),
      ),
    ).rejects.toMatchObject({
      code: StartTlsErrorCodes.REFUSED,
      message: 'toy: toy says no',
      protocol: 'toy',
    });
    expect(seen).toEqual(['READY']);
    server.close();
  });
});

import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createTestPki, run, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  StartTlsErrorCodes,
  type StartTlsServerOptions,
  serverProtocols,
  startTlsServer,
} from '../src/index.js';
import { playClient, readLineFrom, runClient, type Step, serverHandshake } from './_script.js';

// The server side (smtp, pop3, imap): against our own client, scripted clients (refusals,
// pipelining, limits) and openssl s_client as the reference client. After TLS every session goes
// on: the server greets over TLS and echoes one line.

let pki: TestPki;
let cleanup: () => void;
beforeAll(() => {
  const dir = tempDir('starttls-server-');
  cleanup = dir.cleanup;
  pki = createTestPki(dir.path);
});
afterAll(() => cleanup());

interface Outcome {
  port: number;
  server: Server;
  /** The first connection's result: the TLS socket's echo done, or the error. */
  result: Promise<{ ok: true } | { ok: false; err: { code?: string } }>;
}

/** A server running startTlsServer on its first connection, then greeting and echoing one line over TLS. */
async function serve(
  protocol: string,
  options: StartTlsServerOptions = {},
  app?: (tls: TLSSocket) => Promise<void>,
): Promise<Outcome> {
  const server = createServer();
  const first = once(server, 'connection') as Promise<[Socket]>;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const result = first.then(async ([socket]) => {
    server.close();
    try {
      const tls: TLSSocket = await startTlsServer(socket, protocol, serverHandshake(pki), {
        hostname: 'mx.test',
        ...options,
      });
      await app?.(tls);
      tls.write('hello over TLS\r\n');
      const line = await readLineFrom(tls);
      tls.end(`pong ${line}\r\n`);
      return { ok: true as const };
    } catch (err) {
      return { ok: false as const, err: err as { code?: string } };
    }
  });
  return { port: (server.address() as { port: number }).port, server, result };
}

async function scripted(protocol: string, steps: Step[], options: StartTlsServerOptions = {}) {
  const s = await serve(protocol, options);
  const socket = connect(s.port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  const played = playClient(socket, steps, pki).finally(() => socket.destroy());
  return { played, result: s.result };
}

it('serves smtp, pop3 and imap', () => {
  expect([...serverProtocols].sort()).toEqual(['imap', 'pop3', 'smtp']);
});

describe('our client against our server', () => {
  for (const protocol of ['smtp', 'pop3', 'imap']) {
    it(`${protocol}: STARTTLS both sides, then data both ways over TLS`, async () => {
      // After TLS the SMTP client says EHLO again: the application behind the server answers it.
      const s = await serve(protocol, {}, async (tls) => {
        if (protocol !== 'smtp') return;
        expect(await readLineFrom(tls)).toBe('EHLO client.test');
        tls.write('250-mx.test\r\n250 AUTH PLAIN\r\n');
      });
      const tls = await runClient(s.port, protocol, pki);
      expect(await readLineFrom(tls)).toBe('hello over TLS');
      tls.write('ping\r\n');
      expect(await readLineFrom(tls)).toBe('pong ping');
      expect(await s.result).toEqual({ ok: true });
      tls.destroy();
    });
  }
});

describe('transcripts', () => {
  it('smtp: refuses mail commands before TLS, answers EHLO with STARTTLS, and upgrades', async () => {
    const { played, result } = await scripted('smtp', [
      'S: 220 mx.test ESMTP ready',
      'C: MAIL FROM:<a@example.org>',
      'S: 530 5.7.0 Must issue a STARTTLS command first',
      'C: EHLO client.test',
      'S: 250-mx.test greets client.test',
      'S: 250-8BITMIME',
      'S: 250 STARTTLS',
      'C: HELO client.test',
      'S: 250 mx.test',
      'C: NOOP',
      'S: 250 2.0.0 OK',
      'C: STARTTLS now',
      'S: 501 5.5.4 Syntax error (no parameters allowed)',
      'C: FOO',
      'S: 500 5.5.1 Command unrecognized',
      'C: starttls',
      'S: 220 2.0.0 Ready to start TLS',
      'TLS',
      'S: hello over TLS',
      'C: ping',
      'S: pong ping',
    ]);
    await played;
    expect(await result).toEqual({ ok: true });
  });

  it('smtp: a greeting given by the caller (a tunnel passes its backend greeting)', async () => {
    const { played, result } = await scripted(
      'smtp',
      [
        'S: 220 backend.test ESMTP Postfix',
        'C: STARTTLS',
        'S: 220 2.0.0 Ready to start TLS',
        'TLS',
        'S: hello over TLS',
        'C: x',
        'S: pong x',
      ],
      { greeting: '220 backend.test ESMTP Postfix' },
    );
    await played;
    expect(await result).toEqual({ ok: true });
  });

  it('smtp: a multi-line greeting given by the caller; a greeting that is not 220 is BAD_OPTION', async () => {
    const { played, result } = await scripted(
      'smtp',
      ['S: 220-backend.test ESMTP', 'S: 220 second line', 'C: QUIT', 'S: /^221 /'],
      { greeting: '220-backend.test ESMTP\r\n220 second line' },
    );
    await played;
    expect(await result).toMatchObject({ ok: false, err: { code: StartTlsErrorCodes.QUIT } });
    for (const bad of ['554 go away', '220 ok\r\n250 injected', '220-only a continuation']) {
      const s = await serve('smtp', { greeting: bad });
      const socket = connect(s.port, '127.0.0.1');
      socket.on('error', () => {});
      expect(await s.result).toMatchObject({ ok: false, err: { code: StartTlsErrorCodes.BAD_OPTION } });
      socket.destroy();
    }
  });

  it('pop3 and imap: a greeting option that is not +OK or * OK is BAD_OPTION', async () => {
    for (const [protocol, bad] of [
      ['pop3', '-ERR no'],
      ['imap', '* BYE no'],
      ['imap', '* OK one\r\n* OK two'],
    ] as const) {
      const s = await serve(protocol, { greeting: bad });
      const socket = connect(s.port, '127.0.0.1');
      socket.on('error', () => {});
      expect(await s.result).toMatchObject({ ok: false, err: { code: StartTlsErrorCodes.BAD_OPTION } });
      socket.destroy();
    }
  });

  it('pop3: CAPA lists STLS, USER refused before TLS, STLS upgrades', async () => {
    const { played, result } = await scripted('pop3', [
      'S: +OK mx.test POP3 ready',
      'C: CAPA',
      'S: +OK Capability list follows',
      'S: TOP',
      'S: UIDL',
      'S: STLS',
      'S: .',
      'C: USER bob',
      'S: -ERR [SYS/PERM] Use STLS first',
      'C: STLS',
      'S: +OK Begin TLS negotiation',
      'TLS',
      'S: hello over TLS',
      'C: ping',
      'S: pong ping',
    ]);
    await played;
    expect(await result).toEqual({ ok: true });
  });

  it('imap: CAPABILITY offers STARTTLS, LOGIN refused, untagged junk answered BAD, STARTTLS upgrades', async () => {
    const { played, result } = await scripted('imap', [
      'S: * OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] mx.test IMAP ready',
      'C: a1 CAPABILITY',
      'S: * CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED',
      'S: a1 OK CAPABILITY completed',
      'C: a2 LOGIN bob secret',
      'S: a2 NO [PRIVACYREQUIRED] Use STARTTLS first',
      'C: garbage',
      'S: * BAD Missing tag or command',
      'C: a3 SELECT INBOX',
      'S: a3 BAD Command not allowed before STARTTLS',
      'C: a4 STARTTLS',
      'S: a4 OK Begin TLS negotiation now',
      'TLS',
      'S: hello over TLS',
      'C: ping',
      'S: pong ping',
    ]);
    await played;
    expect(await result).toEqual({ ok: true });
  });
});

describe('refusals', () => {
  it('smtp: a command pipelined behind STARTTLS is refused (RFC 3207 section 6), no go-ahead sent', async () => {
    // The positive path this guards: STARTTLS alone gets the go-ahead and TLS.
    const ok = await scripted('smtp', [
      'S: 220 mx.test ESMTP ready',
      'C: STARTTLS',
      'S: 220 2.0.0 Ready to start TLS',
      'TLS',
      'S: hello over TLS',
      'C: ping',
      'S: pong ping',
    ]);
    await ok.played;
    expect(await ok.result).toEqual({ ok: true });
    const { played, result } = await scripted('smtp', [
      'S: 220 mx.test ESMTP ready',
      'C: EHLO client.test',
      'S: /^250-/',
      'S: 250-8BITMIME',
      'S: 250 STARTTLS',
      'C: STARTTLS',
      'C: MAIL FROM:<injected@example.org>',
      'EOF',
    ]);
    await played;
    expect(await result).toMatchObject({ ok: false, err: { code: StartTlsErrorCodes.INJECTION } });
  });

  for (const [protocol, greeting, quit, answer] of [
    ['smtp', 'S: 220 mx.test ESMTP ready', 'C: QUIT', 'S: 221 2.0.0 mx.test closing connection'],
    ['pop3', 'S: +OK mx.test POP3 ready', 'C: QUIT', 'S: +OK mx.test POP3 closing'],
    ['imap', 'S: /^\\* OK /', 'C: z LOGOUT', 'S: * BYE mx.test logging out'],
  ] as const) {
    it(`${protocol}: the client quitting without STARTTLS is UCSPI_ERR_STARTTLS_QUIT`, async () => {
      const { played, result } = await scripted(protocol, [greeting, quit, answer]);
      await played;
      expect(await result).toMatchObject({ ok: false, err: { code: StartTlsErrorCodes.QUIT } });
    });
  }

  it('smtp: too many refused commands end the session with 421', async () => {
    const { played, result } = await scripted(
      'smtp',
      [
        'S: 220 mx.test ESMTP ready',
        'C: RCPT TO:<a@b>',
        'S: /^530 /',
        'C: DATA',
        'S: /^530 /',
        'C: XYZZY',
        'S: /^421 /',
        'EOF',
      ],
      { maxErrors: 3 },
    );
    await played;
    expect(await result).toMatchObject({ ok: false, err: { code: StartTlsErrorCodes.TOO_MANY_ERRORS } });
  });

  it('smtp: an over-long command line is UCSPI_ERR_STARTTLS_LINE_TOO_LONG', async () => {
    const { played, result } = await scripted(
      'smtp',
      ['S: 220 mx.test ESMTP ready', `C: EHLO ${'x'.repeat(300)}`, 'EOF'],
      {
        maxLineLength: 256,
      },
    );
    await played;
    expect(await result).toMatchObject({ ok: false, err: { code: StartTlsErrorCodes.LINE_TOO_LONG } });
  });

  it('pop3: a client that leaves is UCSPI_ERR_STARTTLS_EOF', async () => {
    const s = await serve('pop3');
    const socket = connect(s.port, '127.0.0.1');
    await once(socket, 'data');
    socket.end();
    expect(await s.result).toMatchObject({ ok: false, err: { code: StartTlsErrorCodes.EOF } });
  });

  it('imap: a client that says nothing is UCSPI_ERR_STARTTLS_TIMEOUT', async () => {
    const s = await serve('imap', { timeoutMs: 300 });
    const socket = connect(s.port, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'data');
    expect(await s.result).toMatchObject({ ok: false, err: { code: StartTlsErrorCodes.TIMEOUT } });
    socket.destroy();
  });

  it('an unknown server protocol is UCSPI_ERR_STARTTLS_UNKNOWN_PROTOCOL and the socket is destroyed', async () => {
    const s = await serve('ldap');
    const socket = connect(s.port, '127.0.0.1');
    socket.on('error', () => {});
    expect(await s.result).toMatchObject({ ok: false, err: { code: StartTlsErrorCodes.UNKNOWN_PROTOCOL } });
    await once(socket, 'close');
  });
});

describe.skipIf(!toolAvailable('openssl'))('openssl s_client -starttls as the client', () => {
  for (const protocol of ['smtp', 'pop3', 'imap']) {
    it(`${protocol}: verifies the certificate and talks over TLS`, async () => {
      const s = await serve(protocol);
      const r = await run(
        'openssl',
        [
          's_client',
          '-starttls',
          protocol,
          '-connect',
          `127.0.0.1:${s.port}`,
          '-CAfile',
          pki.caBundle,
          '-servername',
          'localhost',
          '-verify_return_error',
          '-ign_eof',
        ],
        { input: 'ping\n' },
      );
      const out = r.stdout.toString();
      expect(out).toContain('Verify return code: 0 (ok)');
      expect(out).toContain('hello over TLS');
      expect(out).toContain('pong ping');
      expect(await s.result).toEqual({ ok: true });
    });
  }
});

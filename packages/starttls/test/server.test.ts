import { connect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartTlsErrorCodes, type StartTlsServerOptions, serverProtocols } from '../src/index.js';
import { readLineFrom, runClient, type Step } from './_script.js';
import { type Outcome, scripted as scriptedWith, serve as serveWith } from './_serve.js';

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

const serve = (
  protocol: string,
  options: StartTlsServerOptions = {},
  app?: (tls: TLSSocket) => Promise<void>,
): Promise<Outcome> => serveWith(pki, protocol, options, app);
const scripted = (protocol: string, steps: Step[], options: StartTlsServerOptions = {}) =>
  scriptedWith(pki, protocol, steps, options);

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

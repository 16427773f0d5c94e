import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StartTlsClientOptions, StartTlsErrorCodes } from '../src/index.js';
import { clientFailure, readLineFrom, runClient, type Step, scriptedServer } from './_script.js';

// Transcripts of the ways the mail protocols' client dialogues fail (smtp, lmtp, pop3, imap);
// the happy paths are in the shared suite.

let pki: TestPki;
let cleanup: () => void;
beforeAll(() => {
  const dir = tempDir('starttls-client-mail-');
  cleanup = dir.cleanup;
  pki = createTestPki(dir.path);
});
afterAll(() => cleanup());

/** Runs the client against a scripted server and returns the error it failed with. */
const failure = (protocol: string, steps: Step[], options: StartTlsClientOptions = {}) =>
  clientFailure(pki, protocol, steps, options);

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

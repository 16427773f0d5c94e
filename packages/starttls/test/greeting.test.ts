import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartTlsErrorCodes } from '../src/index.js';
import { clientFailure, readLineFrom, runClient, type Step, scriptedServer } from './_script.js';

// The client options a tunnel needs: `onGreeting` (the server's accepted greeting, before the
// client sends anything) and `afterTls: false` (no EHLO again after TLS: the tunnel's own plain
// client says it inside TLS). Each runs over a real TLS handshake with a scripted server.

let pki: TestPki;
let cleanup: () => void;
beforeAll(() => {
  const dir = tempDir('starttls-greeting-');
  cleanup = dir.cleanup;
  pki = createTestPki(dir.path);
});
afterAll(() => cleanup());

const SMTP: Step[] = [
  'S: 220-mx.test ESMTP',
  'S: 220 second line',
  'C: EHLO client.test',
  'S: 250-mx.test',
  'S: 250 STARTTLS',
  'C: STARTTLS',
  'S: 220 go ahead',
  'TLS',
];

/** Runs the client with onGreeting; returns the greetings seen and what was sent before each. */
async function greetings(protocol: string, steps: Step[], afterTls?: boolean) {
  const { port, done } = await scriptedServer(steps, pki);
  const seen: (readonly string[])[] = [];
  const tls = await runClient(port, protocol, pki, {
    onGreeting: (lines) => seen.push(lines),
    ...(afterTls !== undefined ? { afterTls } : {}),
  });
  return { seen, tls, done };
}

describe('onGreeting', () => {
  it('smtp: the whole multi-line greeting, once, as received', async () => {
    const { seen, tls, done } = await greetings('smtp', [
      ...SMTP,
      'C: EHLO client.test',
      'S: 250 mx.test',
      'S: inside',
      'EOF',
    ]);
    expect(seen).toEqual([['220-mx.test ESMTP', '220 second line']]);
    expect(await readLineFrom(tls)).toBe('inside');
    tls.destroy();
    await done;
  });
  it.each([
    [
      'pop3',
      ['S: +OK pop ready', 'C: CAPA', 'S: +OK', 'S: STLS', 'S: .', 'C: STLS', 'S: +OK go', 'TLS'],
      '+OK pop ready',
    ],
    [
      'imap',
      [
        'S: * OK [CAPABILITY IMAP4rev1] ready',
        'C: a1 CAPABILITY',
        'S: * CAPABILITY IMAP4rev1 STARTTLS',
        'S: a1 OK done',
        'C: a2 STARTTLS',
        'S: a2 OK go',
        'TLS',
      ],
      '* OK [CAPABILITY IMAP4rev1] ready',
    ],
    [
      'nntp',
      [
        'S: 201 news ready',
        'C: CAPABILITIES',
        'S: 101 caps',
        'S: STARTTLS',
        'S: .',
        'C: STARTTLS',
        'S: 382 go',
        'TLS',
      ],
      '201 news ready',
    ],
    ['ftp', ['S: 220 ftp ready', 'C: AUTH TLS', 'S: 234 go', 'TLS'], '220 ftp ready'],
  ])('%s: the greeting line', async (protocol, steps, line) => {
    const { seen, tls, done } = await greetings(protocol, [...steps, 'S: inside', 'EOF']);
    expect(seen).toEqual([[line]]);
    expect(await readLineFrom(tls)).toBe('inside');
    tls.destroy();
    await done;
  });
  it('a refused greeting is never reported (the error says why)', async () => {
    const seen: (readonly string[])[] = [];
    const onGreeting = (lines: readonly string[]) => seen.push(lines);
    expect(await clientFailure(pki, 'smtp', ['S: 554 go away', 'EOF'], { onGreeting })).toMatchObject({
      code: StartTlsErrorCodes.GREETING,
    });
    expect(await clientFailure(pki, 'pop3', ['S: -ERR busy', 'EOF'], { onGreeting })).toMatchObject({
      code: StartTlsErrorCodes.GREETING,
    });
    expect(seen).toEqual([]);
  });
  it('a server without STARTTLS: the greeting was reported, then NOT_OFFERED', async () => {
    const seen: (readonly string[])[] = [];
    const err = await clientFailure(
      pki,
      'smtp',
      ['S: 220 mx.test', 'C: EHLO client.test', 'S: 250-mx.test', 'S: 250 PIPELINING', 'EOF'],
      { onGreeting: (lines) => seen.push(lines) },
    );
    expect(err).toMatchObject({ code: StartTlsErrorCodes.NOT_OFFERED });
    expect(seen).toEqual([['220 mx.test']]);
  });
  it('an exception thrown by onGreeting fails the dialogue before the client writes', async () => {
    const err = await clientFailure(pki, 'smtp', ['S: 220 mx.test', 'EOF'], {
      onGreeting: () => {
        throw new Error('the plain client went away');
      },
    });
    expect(err.message).toBe('the plain client went away');
  });
  it('a value that is not a function is BAD_OPTION', async () => {
    const bad = { onGreeting: 'yes' } as unknown as { onGreeting: () => void };
    expect(await clientFailure(pki, 'smtp', ['EOF'], bad)).toMatchObject({
      code: StartTlsErrorCodes.BAD_OPTION,
    });
  });
});

describe('afterTls: false', () => {
  it('smtp: no EHLO after TLS; the first bytes inside TLS are the server own', async () => {
    // Without the option the scripted server would first have to receive an EHLO inside TLS.
    const { tls, done } = await greetings(
      'smtp',
      [...SMTP, 'S: 250 not consumed by the library', 'EOF'],
      false,
    );
    expect(await readLineFrom(tls)).toBe('250 not consumed by the library');
    tls.destroy();
    await done;
  });
  it('the default still says EHLO again (RFC 3207 section 4.2)', async () => {
    const { tls, done } = await greetings('smtp', [
      ...SMTP,
      'C: EHLO client.test',
      'S: 250 mx.test',
      'S: after',
      'EOF',
    ]);
    expect(await readLineFrom(tls)).toBe('after');
    tls.destroy();
    await done;
  });
  it('a value that is not a boolean is BAD_OPTION', async () => {
    const bad = { afterTls: 'no' } as unknown as { afterTls: boolean };
    expect(await clientFailure(pki, 'smtp', ['EOF'], bad)).toMatchObject({
      code: StartTlsErrorCodes.BAD_OPTION,
    });
  });
});

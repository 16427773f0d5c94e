import diagnostics_channel from 'node:diagnostics_channel';
import { once } from 'node:events';
import { connect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createTestPki, run, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartTlsErrorCodes, type StartTlsServerOptions } from '../src/index.js';
import type { Step } from './_script.js';
import { type Outcome, scripted as scriptedWith, serve as serveWith } from './_serve.js';

// The server side's refusals (pipelining behind STARTTLS, QUIT, too many errors, limits, EOF,
// timeout) and openssl s_client -starttls as the reference client.

let pki: TestPki;
let cleanup: () => void;
beforeAll(() => {
  const dir = tempDir('starttls-server-refusals-');
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

describe.skipIf(!toolAvailable('gnutls-cli'))('gnutls-cli --starttls-proto as the client', () => {
  for (const protocol of ['smtp', 'pop3', 'imap']) {
    it(`${protocol}: verifies the certificate and talks over TLS`, async () => {
      const s = await serve(protocol);
      const r = await run(
        'gnutls-cli',
        [`--starttls-proto=${protocol}`, '--x509cafile', pki.caBundle, '-p', String(s.port), '127.0.0.1'],
        { input: 'ping\n' },
      );
      const out = r.stdout.toString() + r.stderr.toString();
      expect(out).toContain('The certificate is trusted');
      expect(out).toContain('hello over TLS');
      expect(out).toContain('pong ping');
      expect(await s.result).toEqual({ ok: true });
    });
  }
});

it('credentials a client sends before TLS never reach the diagnostics channel', async () => {
  const seen: string[] = [];
  const onLine = (m: unknown) => seen.push((m as { line: string }).line);
  diagnostics_channel.subscribe('ucspi:starttls:line', onLine);
  try {
    const { played, result } = await scripted('imap', [
      'S: /^\\* OK /',
      'C: a1 LOGIN bob hunter2',
      'S: a1 NO [PRIVACYREQUIRED] Use STARTTLS first',
      'C: a2 LOGOUT',
      'S: * BYE mx.test logging out',
    ]);
    await played;
    expect(await result).toMatchObject({ ok: false, err: { code: StartTlsErrorCodes.QUIT } });
  } finally {
    diagnostics_channel.unsubscribe('ucspi:starttls:line', onLine);
  }
  expect(seen).toContain('a1 LOGIN bob <redacted>');
  expect(seen.join('\n')).not.toContain('hunter2');
});

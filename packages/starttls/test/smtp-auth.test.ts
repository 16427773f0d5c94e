import { once } from 'node:events';
import { connect } from 'node:net';
import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  afterTlsClient,
  channels,
  type LineMessage,
  StartTlsErrorCodes,
  startTlsClient,
} from '../src/index.js';
import {
  clientFailure,
  clientHandshake,
  readLineFrom,
  runClient,
  type Step,
  scriptedServer,
} from './_script.js';

// SMTP AUTH inside TLS (the `auth` option, RFC 4954): PLAIN and LOGIN against scripted servers,
// the refusals, and afterTlsClient (the after-TLS step run by the caller after its own checks).

let pki: TestPki;
let cleanup: () => void;
beforeAll(() => {
  const dir = tempDir('starttls-smtp-auth-');
  cleanup = dir.cleanup;
  pki = createTestPki(dir.path);
});
afterAll(() => cleanup());

const b64 = (t: string) => Buffer.from(t).toString('base64');
const USER = { username: 'alice', password: 's3cret' };
const UPTO_TLS: Step[] = [
  'S: 220 mx.test ESMTP',
  'C: EHLO client.test',
  'S: 250-mx.test',
  'S: 250 STARTTLS',
  'C: STARTTLS',
  'S: 220 go',
  'TLS',
  'C: EHLO client.test',
  'S: 250-mx.test',
  'S: 250 AUTH PLAIN LOGIN',
];

describe('smtp auth', () => {
  it('PLAIN: one AUTH PLAIN with NUL user NUL password after the second EHLO; 235 is success', async () => {
    const { port, done } = await scriptedServer(
      [...UPTO_TLS, `C: AUTH PLAIN ${b64('\0alice\0s3cret')}`, 'S: 235 2.7.0 ok', 'S: 250 early'],
      pki,
    );
    const tls = await runClient(port, 'smtp', pki, { ...USER, auth: 'plain' });
    await done;
    // Nothing read ahead past the 235.
    expect(await readLineFrom(tls)).toBe('250 early');
    tls.destroy();
  });

  it('LOGIN: user and password as answers to two 334 challenges, never shown in diagnostics', async () => {
    const seen: string[] = [];
    const listener = (m: unknown) => seen.push((m as LineMessage).line);
    channels.line.subscribe(listener);
    try {
      const { port, done } = await scriptedServer(
        [
          ...UPTO_TLS,
          'C: AUTH LOGIN',
          'S: 334 VXNlcm5hbWU6',
          `C: ${b64('alice')}`,
          'S: 334 UGFzc3dvcmQ6',
          `C: ${b64('s3cret')}`,
          'S: 235 ok',
        ],
        pki,
      );
      const tls = await runClient(port, 'smtp', pki, { ...USER, auth: 'login' });
      await done;
      tls.destroy();
    } finally {
      channels.line.unsubscribe(listener);
    }
    expect(seen).toContain('AUTH LOGIN');
    expect(seen).toContain('<redacted>');
    expect(seen.join('\n')).not.toMatch(new RegExp(`s3cret|${b64('s3cret')}|${b64('\0alice\0s3cret')}`));
  });

  it('PLAIN refused (535) is AUTH, permanent; 454 is temporary', async () => {
    const plain = `C: AUTH PLAIN ${b64('\0alice\0s3cret')}`;
    expect(
      await clientFailure(pki, 'smtp', [...UPTO_TLS, plain, 'S: 535 5.7.8 bad', 'EOF'], {
        ...USER,
        auth: 'plain',
      }),
    ).toMatchObject({ code: StartTlsErrorCodes.AUTH, temporary: false, reply: '535 5.7.8 bad' });
    expect(
      await clientFailure(pki, 'smtp', [...UPTO_TLS, plain, 'S: 454 4.7.0 later', 'EOF'], {
        ...USER,
        auth: 'plain',
      }),
    ).toMatchObject({ code: StartTlsErrorCodes.AUTH, temporary: true });
  });

  it('LOGIN: no 334 to AUTH LOGIN is AUTH_MECHANISM (nothing sent); a refused password is AUTH', async () => {
    expect(
      await clientFailure(pki, 'smtp', [...UPTO_TLS, 'C: AUTH LOGIN', 'S: 504 5.5.4 unknown', 'EOF'], {
        ...USER,
        auth: 'login',
      }),
    ).toMatchObject({ code: StartTlsErrorCodes.AUTH_MECHANISM });
    expect(
      await clientFailure(
        pki,
        'smtp',
        [
          ...UPTO_TLS,
          'C: AUTH LOGIN',
          'S: 334 VXNlcm5hbWU6',
          `C: ${b64('alice')}`,
          'S: 334 UGFzc3dvcmQ6',
          `C: ${b64('s3cret')}`,
          'S: 535 5.7.8 bad',
          'EOF',
        ],
        { ...USER, auth: 'login' },
      ),
    ).toMatchObject({ code: StartTlsErrorCodes.AUTH });
  });

  it('a bad auth value, or auth without a password, is BAD_OPTION before anything is sent', async () => {
    for (const options of [
      { ...USER, auth: 'cram-md5' as 'plain' },
      { username: 'alice', auth: 'plain' as const },
    ]) {
      expect(await clientFailure(pki, 'smtp', ['EOF'], options)).toMatchObject({
        code: StartTlsErrorCodes.BAD_OPTION,
      });
    }
  });

  it('afterTlsClient: the caller runs EHLO and AUTH itself after its own checks', async () => {
    const { port, done } = await scriptedServer(
      [...UPTO_TLS, `C: AUTH PLAIN ${b64('\0alice\0s3cret')}`, 'S: 235 ok', 'S: 250 early'],
      pki,
    );
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    const options = { helo: 'client.test', ...USER, auth: 'plain' as const };
    const tls = await startTlsClient(socket, 'smtp', clientHandshake(pki), { ...options, afterTls: false });
    expect(tls.authorized).toBe(true);
    await afterTlsClient(tls, 'smtp', options);
    await done;
    expect(await readLineFrom(tls)).toBe('250 early');
    tls.destroy();
  });
});

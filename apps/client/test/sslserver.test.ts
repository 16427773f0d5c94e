// TLS against our own sslserver: prog mode's plaintext fd 6/7, client mode's half-close, and a
// refused certificate that lets no byte through.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, envLines, sslserverBin, startServer, stopServers, tcpclient } from './_helpers.js';

const tmp = tempDir();
let pki: TestPki;
beforeAll(() => {
  pki = createTestPki(join(tmp.path, 'pki'));
}, 30_000);
afterEach(stopServers);
afterAll(() => tmp.cleanup());

const ca = () => ['-c', pki.caBundle];

describe('TLS against our sslserver', () => {
  it('the program talks plaintext on fd 6/7 while the wire carries TLS, and gets tcp-environ', async () => {
    const s = await startServer(
      process.execPath,
      [
        sslserverBin,
        '-1',
        '-H',
        '-R',
        '-l',
        'srv',
        '-s',
        '127.0.0.1',
        '0',
        'sh',
        '-c',
        'echo "hi $SSL_PROTOCOL"; read l; echo "got $l"',
      ],
      /^\d+$/,
      { env: { ...process.env, CERTFILE: pki.serverChain, KEYFILE: pki.serverKey } },
    );
    const port = s.ready[0];
    const prog = [
      'sh',
      '-c',
      'env | grep "^PROTO=\\|^TCPREMOTEIP="; read a <&6; echo "$a" >&2; echo ping >&7; read b <&6; echo "$b" >&2',
    ];
    const r = await tcpclient(
      ['-n', '', ...ca(), '-m', '127.0.0.1', '-H', '-R', '-l', '0', '127.0.0.1', port!, ...prog],
      {
        env: cleanEnv(),
      },
    );
    expect(r.code, r.stderr.toString()).toBe(0);
    expect(envLines(r.stdout.toString(), /^(PROTO|TCPREMOTEIP)$/)).toEqual([
      'PROTO=TCP',
      'TCPREMOTEIP=127.0.0.1',
    ]);
    expect(r.stderr.toString()).toBe('hi TLSv1.3\ngot ping\n');
  });

  it('client mode over TLS: stdin EOF half-closes (close_notify), the answer still arrives', async () => {
    const s = await startServer(
      process.execPath,
      [sslserverBin, '-1', '-H', '-R', '-l', 'srv', '127.0.0.1', '0', 'sh', '-c', 'cat; echo bye'],
      /^\d+$/,
      { env: { ...process.env, CERTFILE: pki.serverChain, KEYFILE: pki.serverKey } },
    );
    const input = 'x'.repeat(300_000);
    const r = await tcpclient(['-n', '', ...ca(), '127.0.0.1', s.ready[0]!], { input, env: cleanEnv() });
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
    // cat ended only because the half-close reached it; everything came back, then its last word.
    expect(r.stdout.toString()).toBe(`${input}bye\n`);
  });

  it('a refused certificate: not one byte of stdin reaches the server', async () => {
    const log = join(tmp.path, 'received.txt');
    const s = await startServer(
      process.execPath,
      [sslserverBin, '-1', '-H', '-R', '-l', 'srv', '127.0.0.1', '0', 'sh', '-c', `cat >> ${log}`],
      /^\d+$/,
      { env: { ...process.env, CERTFILE: pki.serverChain, KEYFILE: pki.serverKey } },
    );
    const port = s.ready[0]!;
    const refused = await tcpclient(['-n', '', ...ca(), '-m', 'mail.example', '127.0.0.1', port], {
      input: 'secret\n',
      env: cleanEnv(),
    });
    expect(refused.code).toBe(111);
    // The positive path it guards: the same server, the right name, receives the line; the
    // refused run's line is not in front of it.
    const ok = await tcpclient(['-n', '', ...ca(), '-m', 'localhost', '127.0.0.1', port], {
      input: 'public\n',
      env: cleanEnv(),
    });
    expect(ok.code).toBe(0);
    expect(readFileSync(log, 'utf8')).toBe('public\n');
  });
});

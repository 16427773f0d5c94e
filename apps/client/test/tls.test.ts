// TLS against openssl s_server (-rev answers each line reversed; -Verify asks for a client
// certificate), with the test PKI made at run time.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestPki, freePort, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, startServer, stopServers, tcpclient } from './_helpers.js';

const tmp = tempDir();
let pki: TestPki;
/** The client certificate and its key in one file, as -n wants it. */
let clientPem: string;
beforeAll(() => {
  pki = createTestPki(join(tmp.path, 'pki'));
  clientPem = join(tmp.path, 'client-and-key.pem');
  writeFileSync(clientPem, readFileSync(pki.clientChain, 'utf8') + readFileSync(pki.clientKey, 'utf8'));
}, 30_000);
afterEach(stopServers);
afterAll(() => tmp.cleanup());

/** openssl s_server on a free port with `cert`/`key`; resolves with the port. */
async function sServer(cert: string, key: string, ...extra: string[]): Promise<number> {
  const port = await freePort();
  await startServer(
    'openssl',
    [
      's_server',
      '-accept',
      `127.0.0.1:${port}`,
      '-cert',
      cert,
      '-key',
      key,
      '-cert_chain',
      pki.interCert,
      ...extra,
    ],
    /^ACCEPT/,
  );
  return port;
}

const ca = () => ['-c', pki.caBundle];

describe.runIf(toolAvailable('openssl'))('TLS against openssl s_server', () => {
  it('verifies the server against -c and -m, then passes data both ways (client mode)', async () => {
    const port = await sServer(pki.serverCert, pki.serverKey, '-rev');
    const r = await tcpclient(['-n', '', ...ca(), '-m', 'localhost', '127.0.0.1', String(port)], {
      input: 'hello\n',
      env: cleanEnv(),
    });
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('olleh\n');
  });

  it('refuses a server its CAs do not know, before any data passes (exit 111)', async () => {
    const port = await sServer(pki.serverCert, pki.serverKey, '-rev');
    // No -c: the system's CAs, which do not know the test CA.
    const r = await tcpclient(['-n', '', '127.0.0.1', String(port)], { input: 'hello\n', env: cleanEnv() });
    expect(r.code).toBe(111);
    expect(r.stderr.toString()).toBe(
      'tcpclient: fatal: server certificate not trusted: UNABLE_TO_GET_ISSUER_CERT_LOCALLY\n',
    );
    expect(r.stdout.length).toBe(0);
    // The positive path it guards: the same server, trusted, answers.
    const ok = await tcpclient(['-n', '', ...ca(), '127.0.0.1', String(port)], {
      input: 'x1\n',
      env: cleanEnv(),
    });
    expect(ok.stdout.toString()).toBe('1x\n');
  });

  it('-m: a certificate for another name is refused (exit 111)', async () => {
    const port = await sServer(pki.serverCert, pki.serverKey, '-rev');
    const r = await tcpclient(['-n', '', ...ca(), '-m', 'mail.example', '127.0.0.1', String(port)], {
      input: 'hello\n',
      env: cleanEnv(),
    });
    expect(r.code).toBe(111);
    expect(r.stderr.toString()).toBe('tcpclient: fatal: server certificate does not match mail.example\n');
    expect(r.stdout.length).toBe(0);
  });

  it('-L: a revoked server certificate is refused; SERVERCRL names the CRL too', async () => {
    const port = await sServer(pki.revokedCert, pki.revokedKey, '-rev');
    const r = await tcpclient(['-n', '', ...ca(), '-L', pki.crl, '127.0.0.1', String(port)], {
      input: 'hello\n',
      env: cleanEnv(),
    });
    expect(r.code).toBe(111);
    expect(r.stderr.toString()).toBe('tcpclient: fatal: server certificate not trusted: CERT_REVOKED\n');
    const viaEnv = await tcpclient(['-n', '', ...ca(), '127.0.0.1', String(port)], {
      input: 'hello\n',
      env: cleanEnv({ SERVERCRL: pki.crl }),
    });
    expect(viaEnv.stderr.toString()).toContain('CERT_REVOKED');
    // Without the CRL the same certificate verifies.
    const ok = await tcpclient(['-n', '', ...ca(), '127.0.0.1', String(port)], {
      input: 'ab\n',
      env: cleanEnv(),
    });
    expect(ok.stdout.toString()).toBe('ba\n');
  });

  it('-M pins the version; -z gives prog TLS_PROVIDER; prog reads and writes plaintext on fd 6/7', async () => {
    const port = await sServer(pki.serverCert, pki.serverKey, '-rev');
    const prog = ['sh', '-c', 'echo "$TLS_PROVIDER" >&2; echo abc >&7; read l <&6; echo "$l" >&2'];
    for (const [method, version] of [
      ['TLSv1_2', 'TLSv1.2'],
      ['TLSv1_3', 'TLSv1.3'],
    ] as const) {
      const r = await tcpclient(
        ['-n', '', ...ca(), '-z', '-M', method, '-H', '-R', '-l', '0', '127.0.0.1', String(port), ...prog],
        {
          env: cleanEnv(),
        },
      );
      expect(r.code, r.stderr.toString()).toBe(0);
      expect(r.stderr.toString()).toMatch(
        new RegExp(`^tcpclient, TLS Server=${version}, Client=${version}, Ciphers=[A-Z0-9_-]+\\ncba\\n$`),
      );
    }
  });

  it('-n FILE presents a client certificate to a server that requires one; -n "" without one is refused', async () => {
    const port = await sServer(
      pki.serverCert,
      pki.serverKey,
      '-rev',
      '-Verify',
      '2',
      '-CAfile',
      pki.caBundle,
    );
    const ok = await tcpclient(['-n', clientPem, ...ca(), '127.0.0.1', String(port)], {
      input: 'hello\n',
      env: cleanEnv(),
    });
    expect(ok.stderr.toString()).toBe('');
    expect(ok.stdout.toString()).toBe('olleh\n');
    // TLS_CERTFILE names the certificate for -n "".
    const viaEnv = await tcpclient(['-n', '', ...ca(), '127.0.0.1', String(port)], {
      input: 'abc\n',
      env: cleanEnv({ TLS_CERTFILE: clientPem }),
    });
    expect(viaEnv.stdout.toString()).toBe('cba\n');
    const none = await tcpclient(['-n', '', ...ca(), '127.0.0.1', String(port)], {
      input: 'hello\n',
      env: cleanEnv(),
    });
    expect(none.code).not.toBe(0);
    expect(none.stdout.toString()).toBe('');
    expect(none.stderr.toString()).toMatch(/^tcpclient: fatal: .*certificate required/);
  });

  it('files that do not exist: a clear message naming them (111); missing defaults are skipped with -v', async () => {
    const port = await sServer(pki.serverCert, pki.serverKey, '-rev');
    const missing = join(tmp.path, 'missing.pem');
    for (const [args, env, what] of [
      [['-n', missing], {}, `unable to read CERTFILE ${missing}: no such file`],
      [['-n', ''], { TLS_CERTFILE: missing }, `unable to read CERTFILE ${missing}: no such file`],
      [['-n', '', '-c', missing], {}, `unable to read CA file ${missing}: no such file`],
      [['-n', ''], { SERVERCA: missing }, `unable to read CA file ${missing}: no such file`],
      [['-n', '', '-L', missing], {}, `unable to read CRL file ${missing}: no such file`],
    ] as const) {
      const r = await tcpclient([...args, '127.0.0.1', String(port)], { env: cleanEnv(env) });
      expect(r.code, args.join(' ')).toBe(111);
      expect(r.stderr.toString()).toBe(`tcpclient: fatal: ${what}\n`);
    }
    const bad = await tcpclient(['-n', pki.malformed, '127.0.0.1', String(port)], { env: cleanEnv() });
    expect(bad.code).toBe(100);
    expect(bad.stderr.toString()).toMatch(/malformed certificate/);
    const v = await tcpclient(['-v', '-n', '', ...ca(), '127.0.0.1', String(port)], {
      input: 'hi\n',
      env: cleanEnv(),
    });
    expect(v.stdout.toString()).toBe('ih\n');
    expect(v.stderr.toString()).toContain(
      'tcpclient: no client certificate /nonexistent/certs/clientcert.pem (TLS_CERTFILE unset): none presented\n',
    );
    // CERTDIR (and -C, which wins) is where the default files are looked for.
    const dir = join(tmp.path, 'certdir');
    (await import('node:fs')).mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'serverca.pem'), readFileSync(pki.caBundle));
    const viaDir = await tcpclient(['-n', '', '-C', dir, '127.0.0.1', String(port)], {
      input: 'xy\n',
      env: cleanEnv(),
    });
    expect(viaDir.stdout.toString()).toBe('yx\n');
  });

  it('-f and TLS_CIPHER_LIST choose the TLS 1.2 ciphers; a list OpenSSL refuses ends with exit 100', async () => {
    const port = await sServer(pki.serverCert, pki.serverKey, '-rev');
    const prog = ['sh', '-c', 'echo "$TLS_PROVIDER" >&2'];
    const r = await tcpclient(
      [
        '-n',
        '',
        ...ca(),
        '-z',
        '-M',
        'TLSv1_2',
        '-f',
        'ECDHE-RSA-AES128-GCM-SHA256',
        '-H',
        '-R',
        '-l',
        '0',
        '127.0.0.1',
        String(port),
        ...prog,
      ],
      { env: cleanEnv() },
    );
    expect(r.stderr.toString()).toMatch(/Ciphers=ECDHE-RSA-AES128-GCM-SHA256\n$/);
    const e = await tcpclient(
      ['-n', '', ...ca(), '-z', '-M', 'TLSv1_2', '-H', '-R', '-l', '0', '127.0.0.1', String(port), ...prog],
      {
        env: cleanEnv({ TLS_CIPHER_LIST: 'ECDHE-RSA-AES256-GCM-SHA384' }),
      },
    );
    expect(e.stderr.toString()).toMatch(/Ciphers=ECDHE-RSA-AES256-GCM-SHA384\n$/);
    const bad = await tcpclient(['-n', '', '-f', 'NO-SUCH-CIPHER', '127.0.0.1', String(port)], {
      env: cleanEnv(),
    });
    expect(bad.code).toBe(100);
    expect(bad.stderr.toString()).toMatch(/^tcpclient: fatal: unable to initialize TLS: /);
  });

  it('a server that does not speak TLS: the handshake fails with exit 111', async () => {
    const port = await freePort();
    await startServer(
      'openssl',
      ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', pki.serverCert, '-key', pki.serverKey, '-tls1_3'],
      /^ACCEPT/,
    );
    const r = await tcpclient(['-n', '', ...ca(), '-M', 'TLSv1_2', '127.0.0.1', String(port)], {
      env: cleanEnv(),
    });
    expect(r.code).toBe(111);
    expect(r.stderr.toString()).toMatch(/^tcpclient: fatal: TLS handshake failed: /);
  });
});

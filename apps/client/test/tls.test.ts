// TLS against real servers: openssl s_server (-rev answers each line reversed; -Verify asks for a
// client certificate), our sslserver for prog mode, with the test PKI made at run time.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestPki, freePort, run, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, envLines, sslserverBin, startServer, stopServers, tcpclient } from './_helpers.js';

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

describe.runIf(toolAvailable('openssl'))('-E: the certificate evaluation hook', () => {
  /** A hook that records its arguments and SSL_* environment in `file`, then exits `status`. */
  function hook(file: string, status: number): string {
    const path = join(tmp.path, `hook-${status}.sh`);
    writeFileSync(
      path,
      `#!/bin/sh\necho "args $*" > ${file}\nenv | grep '^SSL_' | grep -v '^SSL_CERT_DIR\\|^SSL_CERT_FILE' >> ${file}\nprintf '%s\\n' "$SSL_PEM" > ${file}.pem\necho "hook stdout"\nread x && echo "stdin was not empty" >> ${file}\nexit ${status}\n`,
      { mode: 0o755 },
    );
    return path;
  }
  const items = (file: string) => {
    const text = readFileSync(file, 'utf8');
    const pem = readFileSync(`${file}.pem`, 'utf8');
    const vars = Object.fromEntries(
      text
        .split('\n')
        .filter((l) => /^SSL_[A-Z_]+=/.test(l) && !l.startsWith('SSL_PEM='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    return { args: /^args (.*)$/m.exec(text)?.[1], pem, vars, text };
  };

  it('accepts a self-signed certificate that failed verification, with every EPIC5 item', async () => {
    const port = await sServer(pki.selfSignedCert, pki.selfSignedKey, '-rev');
    const out = join(tmp.path, 'accept.txt');
    const r = await tcpclient(['-n', '', '-E', hook(out, 0), '127.0.0.1', String(port)], {
      input: 'hello\n',
      env: cleanEnv(),
    });
    expect(r.code, r.stderr.toString()).toBe(0);
    expect(r.stdout.toString()).toBe('olleh\n');
    // The hook's stdout went to tcpclient's stderr, never into the data.
    expect(r.stderr.toString()).toBe('hook stdout\n');
    const got = items(out);
    expect(got.text).not.toContain('stdin was not empty');
    // any error, no host name was asked for, self-signed, no other error, suggestion: reject.
    expect(got.args).toBe('1 0 1 0 0');
    const x509 = (args: string[]) => run('openssl', ['x509', '-in', pki.selfSignedCert, '-noout', ...args]);
    const sha1 = (await x509(['-fingerprint', '-sha1'])).stdout.toString().trim().split('=')[1];
    const subject = (await x509(['-subject', '-nameopt', 'RFC2253'])).stdout
      .toString()
      .trim()
      .slice('subject='.length);
    const issuer = (await x509(['-issuer', '-nameopt', 'RFC2253'])).stdout
      .toString()
      .trim()
      .slice('issuer='.length);
    expect(got.vars).toMatchObject({
      SSL_CERT_HASH: sha1,
      SSL_SUBJECT: subject,
      SSL_SUBJECT_URL: encodeURIComponent(subject),
      SSL_ISSUER: issuer,
      SSL_ISSUER_URL: encodeURIComponent(issuer),
      SSL_VERSION: 'TLSv1.3',
      SSL_PKEY_BITS: '2048',
      SSL_SANS: 'localhost',
      SSL_CHECKHOST_ERROR: '0',
      SSL_SELF_SIGNED_ERROR: '1',
      SSL_OTHER_ERROR: '0',
      SSL_VERIFY_ERROR: '1',
      SSL_MOST_SERIOUS_ERROR: '18',
      SSL_ACCEPT_CERT: '0',
    });
    expect(got.vars.SSL_CIPHER).toMatch(/^TLS_AES_\d+_GCM_SHA\d+$|^TLS_CHACHA20/);
    expect(got.pem?.replace(/\s/g, '')).toBe(
      readFileSync(pki.selfSignedCert, 'utf8').trim().replace(/\s/g, ''),
    );
  });

  it('-m names the host the hook hears about: 62 outranks 18', async () => {
    const port = await sServer(pki.selfSignedCert, pki.selfSignedKey, '-rev');
    const out = join(tmp.path, 'mismatch.txt');
    const r = await tcpclient(
      ['-n', '', '-m', 'mail.example', '-E', hook(out, 1), '127.0.0.1', String(port)],
      {
        input: 'hello\n',
        env: cleanEnv(),
      },
    );
    expect(r.code).toBe(111);
    expect(r.stdout.length).toBe(0);
    const got = items(out);
    expect(got.args).toBe('1 1 1 0 0');
    expect(got.vars).toMatchObject({ SSL_CHECKHOST_ERROR: '1', SSL_MOST_SERIOUS_ERROR: '62' });
  });

  it('rejects a certificate that verified: the decision is final both ways (exit 111, no data)', async () => {
    const port = await sServer(pki.serverCert, pki.serverKey, '-rev');
    const out = join(tmp.path, 'reject.txt');
    const r = await tcpclient(
      ['-n', '', ...ca(), '-m', 'localhost', '-E', hook(out, 3), '127.0.0.1', String(port)],
      {
        input: 'hello\n',
        env: cleanEnv(),
      },
    );
    expect(r.code).toBe(111);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr.toString()).toBe(
      'hook stdout\ntcpclient: fatal: server certificate rejected by the evaluation hook\n',
    );
    const got = items(out);
    expect(got.args).toBe('0 0 0 0 1');
    expect(got.vars).toMatchObject({
      SSL_VERIFY_ERROR: '0',
      SSL_MOST_SERIOUS_ERROR: '0',
      SSL_ACCEPT_CERT: '1',
      SSL_SANS: 'localhost',
    });
    // The same hook exiting 0 lets the data through.
    const ok = await tcpclient(
      ['-n', '', ...ca(), '-m', 'localhost', '-E', hook(out, 0), '127.0.0.1', String(port)],
      {
        input: 'hello\n',
        env: cleanEnv(),
      },
    );
    expect(ok.stdout.toString()).toBe('olleh\n');
  });

  it('a hook that cannot be run rejects (exit 111)', async () => {
    const port = await sServer(pki.serverCert, pki.serverKey, '-rev');
    const r = await tcpclient(
      ['-v', '-n', '', ...ca(), '-E', '/nonexistent/hook', '127.0.0.1', String(port)],
      {
        input: 'hello\n',
        env: cleanEnv(),
      },
    );
    expect(r.code).toBe(111);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr.toString()).toContain(
      'certificate rejected by /nonexistent/hook (unable to run: ENOENT)',
    );
  });
});

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
});

// -E, the certificate evaluation hook (EPIC5's server_ssl_eval), against openssl s_server: its
// arguments and SSL_* items checked against openssl x509's own figures, its decision final.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestPki, freePort, run, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, startServer, stopServers, tcpclient } from './_helpers.js';

const tmp = tempDir();
let pki: TestPki;
beforeAll(() => {
  pki = createTestPki(join(tmp.path, 'pki'));
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

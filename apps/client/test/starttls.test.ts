// STARTTLS (-s) against our sslserver in UCSPI-TLS mode (-n), whose program is a small shell
// server speaking the protocol's plaintext part, handing over for TLS through SSLCTLFD, and
// going on over SSLREADFD/SSLWRITEFD (fd 4 and 5).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, sslserverBin, startServer, stopServers, tcpclient } from './_helpers.js';

const tmp = tempDir();
let pki: TestPki;
beforeAll(() => {
  pki = createTestPki(join(tmp.path, 'pki'));
}, 30_000);
afterEach(stopServers);
afterAll(() => tmp.cleanup());

/** After the handshake: echo each line back, prefixed, and record it in `log`. */
const ECHO_TLS = (log: string) =>
  `while read l <&4; do echo "tls: $l" >> ${log}; printf 'echo: %s\\n' "$l" >&5; done\n`;

/** Start sslserver -n running the shell server `body`; resolves with its port. */
async function server(name: string, body: string): Promise<string> {
  const script = join(tmp.path, `${name}.sh`);
  writeFileSync(script, `#!/bin/sh\n${body}`, { mode: 0o755 });
  const s = await startServer(
    process.execPath,
    [sslserverBin, '-1', '-n', '-H', '-R', '-l', '0', '127.0.0.1', '0', script],
    /^\d+$/,
    { env: { ...process.env, CERTFILE: pki.serverChain, KEYFILE: pki.serverKey } },
  );
  return s.ready[0]!;
}

const trust = () => ['-c', pki.caBundle, '-m', 'localhost'];

describe('-s smtp', () => {
  it('EHLO, STARTTLS, EHLO again after TLS, then client mode over TLS', async () => {
    const log = join(tmp.path, 'smtp.log');
    const port = await server(
      'smtp',
      `printf '220 test ESMTP\\r\\n'
read a; echo "plain: $a" >> ${log}
printf '250-test\\r\\n250 STARTTLS\\r\\n'
read b; echo "plain: $b" >> ${log}
printf '220 go ahead\\r\\n'
printf y >&3
read c <&4; echo "tls: $c" >> ${log}
printf '250-test\\r\\n250 8BITMIME\\r\\n' >&5
${ECHO_TLS(log)}`,
    );
    const r = await tcpclient(['-s', 'smtp', ...trust(), '127.0.0.1', port], {
      input: 'NOOP\n',
      env: cleanEnv(),
    });
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('echo: NOOP\n');
    const seen = readFileSync(log, 'utf8').replace(/\r/g, '').split('\n');
    expect(seen[0]).toMatch(/^plain: EHLO \S+$/);
    expect(seen[1]).toBe('plain: STARTTLS');
    expect(seen[2]).toMatch(/^tls: EHLO \S+$/);
    expect(seen[3]).toBe('tls: NOOP');
  });

  it('prog mode after STARTTLS: the program reads and writes plaintext on fd 6/7', async () => {
    const port = await server(
      'smtp-prog',
      `printf '220 test ESMTP\\r\\n'; read a; printf '250-test\\r\\n250 STARTTLS\\r\\n'; read b; printf '220 go\\r\\n'; printf y >&3
read c <&4; printf '250 OK\\r\\n' >&5
while read l <&4; do printf 'echo: %s\\n' "$l" >&5; done\n`,
    );
    const prog = ['sh', '-c', 'echo QUIT >&7; read l <&6; echo "$l" >&2'];
    const r = await tcpclient(['-s', 'smtp', ...trust(), '-H', '-R', '-l', '0', '127.0.0.1', port, ...prog], {
      env: cleanEnv(),
    });
    expect(r.code, r.stderr.toString()).toBe(0);
    expect(r.stderr.toString()).toBe('echo: QUIT\n');
  });

  it('a server that does not offer STARTTLS: an error and no plaintext fall-back', async () => {
    const log = join(tmp.path, 'nostarttls.log');
    const port = await server(
      'nostarttls',
      `printf '220 test ESMTP\\r\\n'; read a; printf '250-test\\r\\n250 8BITMIME\\r\\n'
while read l; do echo "plain: $l" >> ${log}; printf '250 ok\\r\\n'; done\n`,
    );
    const r = await tcpclient(['-s', 'smtp', ...trust(), '127.0.0.1', port], {
      input: 'MAIL FROM:<secret@example>\n',
      env: cleanEnv(),
    });
    expect(r.code).toBe(100);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr.toString()).toMatch(/^tcpclient: fatal: STARTTLS \(smtp\) failed: .*STARTTLS/);
    let plain = '';
    try {
      plain = readFileSync(log, 'utf8');
    } catch {
      // nothing was written: the file was never made
    }
    expect(plain).not.toContain('secret');
  });

  it('plaintext sent behind the go-ahead is refused, never read as if it came through TLS', async () => {
    const port = await server(
      'inject',
      `printf '220 test ESMTP\\r\\n'; read a; printf '250-test\\r\\n250 STARTTLS\\r\\n'; read b
printf '220 go ahead\\r\\n250 injected\\r\\n'
printf y >&3
read c <&4; printf '250 OK\\r\\n' >&5
${ECHO_TLS(join(tmp.path, 'inject.log'))}`,
    );
    const r = await tcpclient(['-s', 'smtp', ...trust(), '127.0.0.1', port], {
      input: 'NOOP\n',
      env: cleanEnv(),
    });
    expect(r.code).not.toBe(0);
    expect(r.stdout.toString()).not.toContain('injected');
    expect(r.stderr.toString()).toMatch(
      /^tcpclient: fatal: STARTTLS \(smtp\) failed: smtp: the peer sent \d+ bytes of plaintext after the STARTTLS request/,
    );
  });
});

describe('-s pop3 and -s imap', () => {
  it('pop3: CAPA, STLS, then TLS', async () => {
    const port = await server(
      'pop3',
      `printf '+OK ready\\r\\n'; read a; printf '+OK\\r\\nSTLS\\r\\n.\\r\\n'; read b; printf '+OK begin TLS\\r\\n'; printf y >&3
${ECHO_TLS(join(tmp.path, 'pop3.log'))}`,
    );
    const r = await tcpclient(['-s', 'pop3', ...trust(), '127.0.0.1', port], {
      input: 'STAT\n',
      env: cleanEnv(),
    });
    expect(r.stderr.toString()).toBe('');
    expect(r.stdout.toString()).toBe('echo: STAT\n');
  });

  it('imap: a tagged STARTTLS, then TLS', async () => {
    const log = join(tmp.path, 'imap.log');
    const port = await server(
      'imap',
      `printf '* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\\r\\n'
read a; echo "plain: $a" >> ${log}; tag=\${a%% *}
printf '* CAPABILITY IMAP4rev1 STARTTLS\\r\\n%s OK done\\r\\n' "$tag"
read b; echo "plain: $b" >> ${log}; tag=\${b%% *}
printf '%s OK Begin TLS negotiation now\\r\\n' "$tag"; printf y >&3
${ECHO_TLS(log)}`,
    );
    const r = await tcpclient(['-s', 'imap', ...trust(), '127.0.0.1', port], {
      input: 'a1 NOOP\n',
      env: cleanEnv(),
    });
    expect(r.stderr.toString()).toBe('');
    expect(r.stdout.toString()).toBe('echo: a1 NOOP\n');
    // Tagged commands, each tag its own.
    expect(readFileSync(log, 'utf8').replace(/\r/g, '')).toMatch(
      /^plain: (\S+) CAPABILITY\nplain: (?!\1 )\S+ STARTTLS\ntls: a1 NOOP\n$/,
    );
  });
});

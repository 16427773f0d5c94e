// -s against real mail servers: Debian's exim4 (SMTP, with and without STARTTLS) and dovecot
// (IMAP, POP3), started on loopback high ports by @ucspi/starttls's peer helpers.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestPki, freePort, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, tcpclient } from './_helpers.js';

interface Peer {
  ports: Record<string, number>;
  stop(): Promise<void>;
}
interface Peers {
  startExim(dir: string, pki: TestPki, smtp: number, plain: number): Promise<Peer>;
  startDovecot(dir: string, pki: TestPki, ports: Record<string, number>): Promise<Peer>;
}
// The helpers that start exim and dovecot live with @ucspi/starttls's tests (one copy).
const peersFile = join(dirname(fileURLToPath(import.meta.url)), '../../../packages/starttls/test/_peers.ts');

const tmp = tempDir();
let pki: TestPki;
let peers: Peers;
const stops: Array<() => Promise<void>> = [];
beforeAll(async () => {
  pki = createTestPki(join(tmp.path, 'pki'));
  peers = (await import(peersFile)) as Peers;
}, 30_000);
afterAll(async () => {
  for (const stop of stops.splice(0)) await stop();
  tmp.cleanup();
});

const trust = () => ['-c', pki.caBundle, '-m', 'localhost'];

describe.runIf(toolAvailable('exim4'))('exim', () => {
  let exim: Peer;
  beforeAll(async () => {
    // A directory of its own, which the helper opens up for the exim user (tmp's is 0700).
    const dir = tempDir();
    exim = await peers.startExim(dir.path, pki, await freePort(), await freePort());
    stops.push(async () => {
      await exim.stop();
      dir.cleanup();
    });
  }, 30_000);

  it('-s smtp: EHLO, STARTTLS, EHLO again, then the session goes on over TLS', async () => {
    const r = await tcpclient(['-s', 'smtp', ...trust(), '127.0.0.1', String(exim.ports.smtp)], {
      input: 'NOOP\r\nQUIT\r\n',
      env: cleanEnv(),
    });
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toMatch(/^250 [^\n]*\n221 /);
  });

  it('-s smtp against a port without STARTTLS: exit 100, nothing sent in plaintext', async () => {
    const r = await tcpclient(['-s', 'smtp', ...trust(), '127.0.0.1', String(exim.ports.plain)], {
      input: 'MAIL FROM:<secret@example>\r\n',
      env: cleanEnv(),
    });
    expect(r.code).toBe(100);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr.toString()).toMatch(
      /^tcpclient: fatal: STARTTLS \(smtp\) failed: .*does not offer STARTTLS/,
    );
  });
});

describe.runIf(toolAvailable('dovecot'))('dovecot', () => {
  let dovecot: Peer;
  beforeAll(async () => {
    const dir = join(tmp.path, 'dovecot');
    (await import('node:fs')).mkdirSync(dir, { recursive: true });
    const [imap, pop3, lmtp, sieve] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    dovecot = await peers.startDovecot(dir, pki, { imap: imap!, pop3: pop3!, lmtp: lmtp!, sieve: sieve! });
    stops.push(() => dovecot.stop());
  }, 30_000);

  it('-s imap: tagged commands over TLS after STARTTLS', async () => {
    const r = await tcpclient(['-s', 'imap', ...trust(), '127.0.0.1', String(dovecot.ports.imap)], {
      input: 'a3 CAPABILITY\r\na4 LOGOUT\r\n',
      env: cleanEnv(),
    });
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toMatch(/^a3 OK/m);
    expect(r.stdout.toString()).toMatch(/^a4 OK/m);
  });

  it('-s pop3: STLS, then POP3 over TLS; prog mode reads it on fd 6', async () => {
    const r = await tcpclient(
      [
        '-s',
        'pop3',
        ...trust(),
        '-H',
        '-R',
        '-l',
        '0',
        '127.0.0.1',
        String(dovecot.ports.pop3),
        'sh',
        '-c',
        'printf "QUIT\\r\\n" >&7; read l <&6; echo "$l" >&2',
      ],
      {
        env: cleanEnv(),
      },
    );
    expect(r.code, r.stderr.toString()).toBe(0);
    expect(r.stderr.toString()).toMatch(/^\+OK/);
  });
});

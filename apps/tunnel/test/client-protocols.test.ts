// Client mode with `protocol = smtp | pop3 | imap`: a plain client through the tunnel to real
// servers (Debian's exim4, dovecot) that start TLS with STARTTLS, and to exim's port without
// STARTTLS. Every case runs through Debian's stunnel4 too: the plain client must see the same
// bytes and the log the same lines. Scripted servers: client-protocols-scripted.test.ts.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestPki, freePort, run, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  both,
  clientConf,
  closeFakes,
  fakeServer,
  hasStunnel,
  type Outcome,
  plainClient,
} from './_client-protocols.js';
import { startDaemon, stopAll, TUNNEL, writeConfig } from './_helpers.js';

interface Peer {
  ports: Record<string, number>;
  stop(): Promise<void>;
}
interface Peers {
  startExim(dir: string, pki: TestPki, smtp: number, plain: number): Promise<Peer>;
  startDovecot(dir: string, pki: TestPki, ports: Record<string, number>): Promise<Peer>;
}
// The helpers that start exim and dovecot live with @ucspi/starttls's tests (one copy).
const here = dirname(fileURLToPath(import.meta.url));
const peersFile = join(here, '../../../packages/starttls/test/_peers.ts');

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
let peers: Peers;
const stops: Array<() => Promise<void>> = [];
beforeAll(async () => {
  tmp = tempDir('ucspi-tunnel-clientproto-');
  pki = createTestPki(join(tmp.path, 'pki'));
  peers = (await import(peersFile)) as Peers;
}, 30_000);
afterEach(stopAll);
afterAll(async () => {
  for (const stop of stops.splice(0)) await stop();
  await closeFakes();
  tmp.cleanup();
});

describe.runIf(toolAvailable('exim4'))('smtp through exim', () => {
  let exim: Peer;
  beforeAll(async () => {
    const dir = tempDir();
    exim = await peers.startExim(dir.path, pki, await freePort(), await freePort());
    stops.push(async () => {
      await exim.stop();
      dir.cleanup();
    });
  }, 30_000);

  it('the greeting, then the client EHLO answered inside TLS (no STARTTLS offered there)', async () => {
    const [ours] = (
      await both(
        tmp.path,
        (a) => clientConf(pki, a, exim.ports.smtp as number, 'smtp'),
        async (c) => {
          await c.seen.waitFor(/^220 .*\r\n/m);
          c.send('EHLO client.test\r\n');
          await c.seen.waitFor(/^250 .*\r\n/m);
          c.send('QUIT\r\n');
          await c.seen.waitFor(/^221 /m);
        },
      )
    ).slice(-1) as [Outcome];
    expect(ours.transcript).toMatch(/^220 mx\.test ESMTP Exim [^\r\n]*\r\n250-mx\.test Hello client\.test /);
    // Exim offers STARTTLS in plaintext only: its absence shows the EHLO went inside TLS.
    expect(ours.transcript).not.toMatch(/STARTTLS/);
    expect(ours.transcript).toMatch(/\r\n221 mx\.test closing connection\r\n$/);
    // The greeting is not counted; the client's 24 bytes are.
    expect(ours.lines.at(-1)).toMatch(
      /^Connection closed: 24 byte\(s\) sent to TLS, \d+ byte\(s\) sent to socket$/,
    );
  });

  it('a server without STARTTLS: the greeting, then the connection closed, nothing in plaintext', async () => {
    const [ours] = (
      await both(
        tmp.path,
        (a) => clientConf(pki, a, exim.ports.plain as number, 'smtp'),
        async (c) => {
          await c.seen.waitFor(/^220 .*\r\n/m);
          // Sent at once: if it went to exim in plaintext, exim's 250 would come back.
          c.send('EHLO client.test\r\nMAIL FROM:<secret@example>\r\n');
        },
      )
    ).slice(-1) as [Outcome];
    expect(ours.transcript).toMatch(/^220 mx\.test ESMTP Exim [^\r\n]*\r\n$/);
    expect(ours.lines).toEqual([
      'Remote server is not RFC 2487 compliant',
      'Connection reset: 0 byte(s) sent to TLS, 0 byte(s) sent to socket',
    ]);
  });
});

describe.runIf(toolAvailable('dovecot'))('imap and pop3 through dovecot', () => {
  let dovecot: Peer;
  beforeAll(async () => {
    const dir = join(tmp.path, 'dovecot');
    mkdirSync(dir, { recursive: true });
    const [imap, pop3, lmtp, sieve] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    dovecot = await peers.startDovecot(dir, pki, { imap, pop3, lmtp, sieve });
    stops.push(() => dovecot.stop());
  }, 30_000);

  it('imap: a greeting of its own, then CAPABILITY and LOGOUT inside TLS', async () => {
    const [ours] = (
      await both(
        tmp.path,
        (a) => clientConf(pki, a, dovecot.ports.imap as number, 'imap'),
        async (c) => {
          await c.seen.waitFor(/\r\n/);
          c.send('a CAPABILITY\r\n');
          await c.seen.waitFor(/^a OK /m);
          c.send('b LOGOUT\r\n');
          await c.seen.waitFor(/^b OK /m);
        },
      )
    ).slice(-1) as [Outcome];
    expect(ours.transcript).toMatch(/^\* OK Connected\.\r\n\* CAPABILITY IMAP4rev1 /);
    // In plaintext dovecot would list STARTTLS and LOGINDISABLED, over TLS AUTH=PLAIN.
    expect(ours.transcript).not.toMatch(/STARTTLS|LOGINDISABLED/);
    expect(ours.transcript).toMatch(/AUTH=PLAIN/);
    expect(ours.lines.at(-1)).toMatch(
      /^Connection closed: 24 byte\(s\) sent to TLS, \d+ byte\(s\) sent to socket$/,
    );
  });

  it("pop3: the server's greeting, then CAPA inside TLS (no STLS offered there)", async () => {
    const [ours] = (
      await both(
        tmp.path,
        (a) => clientConf(pki, a, dovecot.ports.pop3 as number, 'pop3'),
        async (c) => {
          await c.seen.waitFor(/\r\n/);
          c.send('CAPA\r\n');
          await c.seen.waitFor(/^\.\r\n/m);
          c.send('QUIT\r\n');
          await c.seen.waitFor(/Logging out/);
        },
      )
    ).slice(-1) as [Outcome];
    expect(ours.transcript).toMatch(/^\+OK Dovecot \(Debian\) ready\.\r\n\+OK\r\nCAPA\r\n/);
    expect(ours.transcript).not.toMatch(/STLS/);
    expect(ours.lines.at(-1)).toBe('Connection closed: 12 byte(s) sent to TLS, 100 byte(s) sent to socket');
  });
});

describe('bad input', () => {
  const errors = (s: string) =>
    s
      .split('\n')
      .filter((l) => l.startsWith('[!]'))
      .map((l) => l.replace(/^\[!\] /, ''));

  it('protocol = nntp in server mode: refused as stunnel4 refuses it', async () => {
    const conf = writeConfig(
      tmp.path,
      'nntp-server.conf',
      `foreground = yes\n[n]\naccept = 127.0.0.1:1\nconnect = 2\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\nprotocol = nntp\n`,
    );
    const ours = await run(process.execPath, [TUNNEL, conf]);
    expect(ours.code).toBe(1);
    expect(errors(ours.stderr.toString())).toEqual([
      "Service [n]: The 'nntp' protocol is not supported in the server mode",
      'Configuration failed',
    ]);
    if (!hasStunnel) return;
    const theirs = await run('stunnel4', [conf], { timeoutMs: 10_000 });
    expect(theirs.code).toBe(1);
    expect(errors(theirs.stderr.toString())).toEqual(errors(ours.stderr.toString()));
  });

  it('protocolAuthentication = ntlm with smtp is refused, exit 1; on HUP the running service stays', async () => {
    const server = await fakeServer(pki, '220 mx.test ready', () => '502 no');
    const port = await freePort();
    const conf = writeConfig(tmp.path, 'auth.conf', clientConf(pki, port, server.port, 'smtp'));
    const t = await startDaemon('ucspi-tunnel', conf);
    writeConfig(
      tmp.path,
      'auth.conf',
      clientConf(pki, port, server.port, 'smtp', 'protocolAuthentication = ntlm\n'),
    );
    const refused = await run(process.execPath, [TUNNEL, conf]);
    expect(refused.code).toBe(1);
    expect(errors(refused.stderr.toString())).toEqual([
      'Service [p]: protocolAuthentication = ntlm is not supported with protocol = smtp (plain or login)',
      'Configuration failed',
    ]);
    t.proc.kill('SIGHUP');
    await t.log.waitFor(/LOG3\[ui\]: Service \[p\]: protocolAuthentication.*\n.*Failed to reload/);
    // Still the old service: the greeting comes through, then EHLO is refused (502): RFC 1425.
    const c = await plainClient(port);
    await c.gone;
    expect(c.seen.text()).toBe('220 mx.test ready\r\n');
    await t.log.waitFor(/LOG3\[0\]: Remote server is not RFC 1425 compliant/);
  });
});

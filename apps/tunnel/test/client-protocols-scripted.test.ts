// Client mode with `protocol = smtp | pop3 | imap | nntp` against scripted servers (TLS after the
// go-ahead): NNTP (no real server here), what the tunnel says to the server before TLS and that
// the plain client's early bytes wait for TLS, servers that refuse STARTTLS or greet with a
// refusal. Every case runs through Debian's stunnel4 too, compared.
import { join } from 'node:path';
import { createTestPki, type TestPki, tempDir } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  both,
  clientConf,
  closeFakes,
  fakeServer,
  hasStunnel,
  listen,
  type Outcome,
} from './_client-protocols.js';
import { stopAll } from './_helpers.js';

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
beforeAll(() => {
  tmp = tempDir('ucspi-tunnel-clientproto-s-');
  pki = createTestPki(join(tmp.path, 'pki'));
});
afterEach(stopAll);
afterAll(async () => {
  await closeFakes();
  tmp.cleanup();
});

describe('scripted servers: nntp, the SMTP dialogue, refusals', () => {
  it('nntp: the greeting, then the client commands inside TLS', async () => {
    const news = await fakeServer(
      pki,
      '200 news.test ready',
      (l) =>
        l === 'STARTTLS'
          ? 'TLS'
          : l === 'CAPABILITIES'
            ? '101 list\r\nVERSION 2\r\nSTARTTLS\r\n.'
            : '500 what',
      '382 Continue with TLS negotiation',
    );
    const [ours] = (
      await both(
        tmp.path,
        (a) => clientConf(pki, a, news.port, 'nntp'),
        async (c) => {
          await c.seen.waitFor(/\r\n/);
          c.send('DATE\r\nQUIT\r\n');
          await c.seen.waitFor(/^205 /m);
        },
      )
    ).slice(-1) as [Outcome];
    expect(ours.transcript).toBe('200 news.test ready\r\n211 you said DATE\r\n205 bye\r\n');
    // The client's DATE reached the server inside TLS only (ucspi-tunnel asks CAPABILITIES first).
    const once = ['STARTTLS', 'TLS: DATE', 'TLS: QUIT'];
    expect(news.heard.filter((l) => l !== 'CAPABILITIES')).toEqual(hasStunnel ? [...once, ...once] : once);
  });

  it('smtp: EHLO localhost (or protocolHost) before TLS, then only the client early EHLO inside', async () => {
    for (const [extra, name] of [
      ['', 'localhost'],
      ['protocolHost = mail.example\n', 'mail.example'],
    ] as const) {
      const mx = await fakeServer(
        pki,
        '220 fake.test ESMTP',
        (l) => (l === 'STARTTLS' ? 'TLS' : /^EHLO /.test(l) ? '250-fake.test\r\n250 STARTTLS' : '500 what'),
        '220 go ahead',
      );
      const [ours] = (
        await both(
          tmp.path,
          (a) => clientConf(pki, a, mx.port, 'smtp', extra),
          async (c) => {
            await c.seen.waitFor(/\r\n/);
            // At once, while the tunnel may still be in its STARTTLS dialogue: it must wait for TLS.
            c.send('EHLO client.test\r\nQUIT\r\n');
            await c.seen.waitFor(/^205 /m);
          },
        )
      ).slice(-1) as [Outcome];
      expect(ours.transcript).toBe('220 fake.test ESMTP\r\n211 you said EHLO client.test\r\n205 bye\r\n');
      const once = [`EHLO ${name}`, 'STARTTLS', 'TLS: EHLO client.test', 'TLS: QUIT'];
      expect(mx.heard).toEqual(hasStunnel ? [...once, ...once] : once);
    }
  });

  it('imap without STARTTLS: BYE to the client, a clean close, stunnel log line', async () => {
    const imap = await fakeServer(pki, '* OK [CAPABILITY IMAP4rev1] imap.test ready', (l) => {
      const tag = l.split(' ')[0];
      return /CAPABILITY$/i.test(l)
        ? `* CAPABILITY IMAP4rev1\r\n${tag} OK done`
        : `${tag} BAD unknown command`;
    });
    const [ours] = (await both(tmp.path, (a) => clientConf(pki, a, imap.port, 'imap'), listen)).slice(-1) as [
      Outcome,
    ];
    expect(ours.transcript).toBe('* OK Connected.\r\n* BYE stunnel: Server does not support TLS\r\n');
    expect(ours.lines).toEqual([
      'Server does not support TLS',
      'Connection closed: 0 byte(s) sent to TLS, 0 byte(s) sent to socket',
    ]);
  });

  it.each([
    [
      'pop3',
      '+OK pop.test ready',
      (l: string) => (l === 'CAPA' ? '+OK\r\nUSER\r\n.' : '-ERR unknown command'),
    ],
    [
      'nntp',
      '200 news.test ready',
      (l: string) => (l === 'CAPABILITIES' ? '101 list\r\nVERSION 2\r\n.' : '502 no'),
    ],
  ])('%s without STARTTLS: the greeting, then a reset', async (protocol, greeting, answer) => {
    const server = await fakeServer(pki, greeting, answer);
    const [ours] = (await both(tmp.path, (a) => clientConf(pki, a, server.port, protocol), listen)).slice(
      -1,
    ) as [Outcome];
    expect(ours.transcript).toBe(`${greeting}\r\n`);
    expect(ours.lines).toEqual([
      'Server does not support TLS',
      'Connection reset: 0 byte(s) sent to TLS, 0 byte(s) sent to socket',
    ]);
  });

  it.each([
    ['imap', '* BYE too busy'],
    ['imap', '* PREAUTH already in'],
    ['pop3', '-ERR too busy'],
    ['nntp', '400 too busy'],
  ])('%s greeting %s: nothing to the client, Unknown server welcome', async (protocol, greeting) => {
    const server = await fakeServer(pki, greeting, () => '500 what');
    const [ours] = (await both(tmp.path, (a) => clientConf(pki, a, server.port, protocol), listen)).slice(
      -1,
    ) as [Outcome];
    expect(ours.transcript).toBe('');
    expect(ours.lines).toEqual([
      'Unknown server welcome',
      'Connection reset: 0 byte(s) sent to TLS, 0 byte(s) sent to socket',
    ]);
  });
});

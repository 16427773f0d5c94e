// The TLS tuning options against real peers: ticketKeySecret/ticketMacSecret (two instances resume
// each other's sessions), curves, options, securityLevel and sessionResume, checked with
// openssl s_client; every bad value run through Debian's stunnel4 too, for the same words. Over
// 300 lines: five options, each with its behaviour, its oracle runs and its bad values, in one place.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, run, waitForLine } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { plainTalk, reap, stopAll, TUNNEL, writeConfig } from './_helpers.js';
import {
  badConfig,
  errors,
  fresh,
  fx,
  hasOpenssl,
  hasStunnel,
  reused,
  sClient,
  section,
  sessionFile,
  setUpFixture,
  tearDownFixture,
  tunnel,
} from './_tls-options.js';

const HEX16 = '00112233445566778899aabbccddeeff';
const HEX32 = `${HEX16}ffeeddccbbaa99887766554433221100`;

beforeAll(setUpFixture, 30_000);
afterEach(stopAll);
afterAll(tearDownFixture);

describe('ticketKeySecret and ticketMacSecret', () => {
  const cases = [
    ['ucspi-tunnel', 'tls1_2'],
    ['ucspi-tunnel', 'tls1_3'],
    // The oracle: stunnel4 itself passes the same test.
    ['stunnel4', 'tls1_2'],
    ['stunnel4', 'tls1_3'],
  ] as const;
  for (const [kind, version] of cases) {
    const can = hasOpenssl && (kind !== 'stunnel4' || hasStunnel);
    it.runIf(can)(
      `${kind}: two instances with the same pair resume each other's ${version} sessions`,
      async () => {
        const [a, b, c, d] = [await freePort(), await freePort(), await freePort(), await freePort()];
        const pair = `ticketKeySecret = ${HEX16}\nticketMacSecret = ${HEX32}\n`;
        await tunnel(section('svc', a, pair), kind, a);
        // Another process with the same pair (colons and capitals: the same secret) in a section
        // of the same name, and in one of another name (OpenSSL's session ID context differs).
        const samePair = `ticketKeySecret = ${HEX16.toUpperCase().replace(/(..)(?!$)/g, '$1:')}\nticketMacSecret = ${HEX32}\n`;
        await tunnel(section('svc', b, samePair) + section('other', d, pair), kind, d);
        // A third with another pair (one bit of the MAC secret differs).
        const otherPair = `ticketKeySecret = ${HEX16}\nticketMacSecret = ${HEX32.replace('00', '01')}\n`;
        await tunnel(section('svc', c, otherPair), kind, c);
        const sess = sessionFile();
        const first = await sClient(a, [`-${version}`, '-sess_out', sess]);
        expect(fresh(first), first).toBe(true);
        const again = await sClient(b, [`-${version}`, '-sess_in', sess]);
        expect(reused(again), again).toBe(true);
        for (const port of [c, d]) {
          const other = await sClient(port, [`-${version}`, '-sess_in', sess]);
          expect(fresh(other), other).toBe(true);
          expect(other).toMatch(/ready$/m);
        }
      },
    );
  }

  const H = `ticketMacSecret = ${HEX16}\n`;
  it.each([
    ['key secret alone', `ticketKeySecret = ${HEX16}\n`],
    ['MAC secret alone', `ticketMacSecret = ${HEX32}\n`],
    ['not hex', `ticketKeySecret = zz${HEX16.slice(2)}\n${H}`],
    ['a colon inside a byte', `ticketKeySecret = 0:${HEX16.slice(1)}0\n${H}`],
    ['odd number of digits', `ticketKeySecret = ${HEX16.slice(1)}\n${H}`],
    ['empty', `ticketKeySecret = \n${H}`],
    ['17 bytes', `ticketKeySecret = ${HEX16}00\n${H}`],
    ['MAC secret of 1 byte', `ticketKeySecret = ${HEX16}\nticketMacSecret = 00\n`],
  ])('%s: same words and exit 1 as stunnel4', async (name, lines) => {
    const mine = await badConfig(`ticket ${name}`, lines);
    expect(mine.join('\n')).toMatch(/ticket(Key|Mac)Secret/);
  });
});

describe('curves', () => {
  it.runIf(hasOpenssl)(
    'a client offering only a curve outside the list fails; one inside works',
    async () => {
      const port = await freePort();
      const { daemon } = await tunnel(section('ec', port, 'curves = P-384:P-521\n'));
      const outside = await sClient(port, ['-groups', 'X25519']);
      expect(outside).toMatch(/handshake failure/);
      expect(outside).not.toMatch(/ready$/m);
      const inside = await sClient(port, ['-groups', 'P-384']);
      expect(inside).toMatch(/ready$/m);
      expect(inside).toMatch(/Server Temp Key: ECDH, (P-384|secp384r1)/);
      await daemon.log.waitFor(/LOG3\[\d+\]: SSL_accept: /);
    },
  );

  it.each([
    ['an unknown curve', 'curves = bogus\n'],
    ['one unknown curve in a list', 'curve = P-256:bogus\n'],
    ["node:tls's auto", 'curves = auto\n'],
    ['a curve twice', 'curves = P-256:X25519:P-256\n'],
    ['an unknown curve in client mode', 'client = yes\nverify = 2\ncurves = bogus\n'],
  ])('%s: same words and exit 1 as stunnel4', async (name, lines) => {
    const mine = await badConfig(`curves ${name}`, lines);
    expect(mine).toEqual([
      "Invalid groups list in 'curves'",
      'Service [svc]: Failed to initialize TLS context',
      'Configuration failed',
    ]);
  });
});

describe('options', () => {
  it.runIf(hasOpenssl)(
    'NO_TICKET: no ticket is issued; -NO_TICKET on a later line gives it back',
    async () => {
      const [plain, none, back] = [await freePort(), await freePort(), await freePort()];
      await tunnel(
        section('plain', plain) +
          section('none', none, 'options = NO_TICKET\n') +
          section('back', back, 'options = no_ticket\noptions = -NO_TICKET\n'),
      );
      const ticket = /TLS session ticket:/;
      const withTicket = await sClient(plain, ['-tls1_2']);
      expect(withTicket).toMatch(/ready$/m);
      expect(withTicket).toMatch(ticket);
      const without = await sClient(none, ['-tls1_2']);
      expect(without).toMatch(/ready$/m);
      expect(without).not.toMatch(ticket);
      expect(await sClient(back, ['-tls1_2'])).toMatch(ticket);
    },
  );

  it.runIf(hasOpenssl)('NO_TLSv1_3 and CIPHER_SERVER_PREFERENCE', async () => {
    const [v12, prefer, client] = [await freePort(), await freePort(), await freePort()];
    const ciphers = 'ciphers = ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256\n';
    await tunnel(
      section('v12', v12, 'options = NO_TLSv1_3\n') +
        section('prefer', prefer, `${ciphers}options = NO_TLSv1_3\noptions = CIPHER_SERVER_PREFERENCE\n`) +
        section('client', client, `${ciphers}options = NO_TLSv1_3\n`),
    );
    expect(await sClient(v12, [])).toMatch(/^New, TLSv1\.2, /m);
    const offer = ['-cipher', 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384'];
    expect(await sClient(prefer, offer)).toMatch(/Cipher is ECDHE-RSA-AES256-GCM-SHA384/);
    expect(await sClient(client, offer)).toMatch(/Cipher is ECDHE-RSA-AES128-GCM-SHA256/);
  });

  it.each([
    ['an unknown name', 'options = BOGUS\n'],
    ['an unknown name cleared', 'options = -BOGUS\n'],
    ['the SSL_OP_ prefix', 'options = SSL_OP_NO_TICKET\n'],
    ['two names on a line', 'options = NO_TLSv1 NO_TICKET\n'],
    ['nothing', 'options = \n'],
  ])('%s: same words and exit 1 as stunnel4', async (name, lines) => {
    const mine = await badConfig(`options ${name}`, lines);
    expect(mine[0]).toMatch(/"options = .*": Illegal TLS option$/);
  });

  it.each([
    ['ENABLE_KTLS', 'options = ENABLE_KTLS\n', /"options = ENABLE_KTLS": .*cannot be honoured/],
    [
      '-NO_RENEGOTIATION',
      'options = -NO_RENEGOTIATION\n',
      /"options = -NO_RENEGOTIATION": .*cannot be honoured/,
    ],
  ])('%s (known to stunnel, not possible here): refused naming the line', async (name, lines, message) => {
    const mine = await badConfig(`options refused ${name}`, lines, false);
    expect(mine[0]).toMatch(message);
  });
});

describe('securityLevel', () => {
  it.each([
    ['6', 'securityLevel = 6\n'],
    ['-1', 'securityLevel = -1\n'],
    ['not a number', 'securityLevel = 3x\n'],
  ])('%s: same words and exit 1 as stunnel4', async (name, lines) => {
    const mine = await badConfig(`seclevel ${name}`, lines);
    expect(mine[0]).toMatch(/: Illegal security level$/);
  });

  it('a level above the certificate key (RSA 2048 at level 3): refused at start as stunnel4', async () => {
    const mine = await badConfig('seclevel above the key', 'securityLevel = 3\n', false);
    expect(mine.slice(-2)).toEqual([
      'Service [svc]: Failed to initialize TLS context',
      'Configuration failed',
    ]);
    expect(mine.join('\n')).toMatch(/ee key too small/);
    if (!hasStunnel) return;
    const conf = join(fx.dir, 'bad-seclevel-above-the-key.conf');
    const theirs = await run('stunnel4', [conf], { timeoutMs: 10_000 });
    expect(theirs.code).toBe(1);
    expect(errors(theirs.stderr.toString()).slice(-2)).toEqual(mine.slice(-2));
    expect(theirs.stderr.toString()).toMatch(/ee key too small/);
  });

  it.runIf(hasOpenssl)(
    'a 1024-bit key: refused at the default level 2 (as stunnel4), served at level 1',
    async () => {
      const key = join(fx.dir, 'rsa1024.key');
      const cert = join(fx.dir, 'rsa1024.pem');
      const made = await run('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:1024',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-subj',
        '/CN=127.0.0.1',
        '-days',
        '2',
      ]);
      expect(made.code).toBe(0);
      const weak = (port: number, extra: string) =>
        `[weak]\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${fx.backendPort}\ncert = ${cert}\nkey = ${key}\nCAfile = ${fx.pki.caBundle}\n${extra}`;
      const conf = writeConfig(fx.dir, 'weak-default.conf', `foreground = yes\n${weak(1, '')}`);
      const ours = await run(process.execPath, [TUNNEL, conf]);
      expect(ours.code).toBe(1);
      expect(ours.stderr.toString()).toMatch(
        /ee key too small[\s\S]*Service \[weak\]: Failed to initialize TLS context/,
      );
      if (hasStunnel) {
        const theirs = await run('stunnel4', [conf], { timeoutMs: 10_000 });
        expect(theirs.code).toBe(1);
        expect(theirs.stderr.toString()).toMatch(
          /ee key too small[\s\S]*Service \[weak\]: Failed to initialize TLS context/,
        );
      }
      const port = await freePort();
      await tunnel(weak(port, 'securityLevel = 1\n'));
      expect(await sClient(port, ['-cipher', 'DEFAULT:@SECLEVEL=1'])).toMatch(/ready$/m);
    },
  );
});

describe('sessionResume', () => {
  const kinds = ['ucspi-tunnel', 'stunnel4'] as const;
  for (const kind of kinds)
    for (const version of ['tls1_2', 'tls1_3']) {
      const can = hasOpenssl && (kind !== 'stunnel4' || hasStunnel);
      it.runIf(can)(
        `${kind}: sessionResume = no: a ${version} session is not resumed (yes: it is)`,
        async () => {
          const [yes, no, asks] = [await freePort(), await freePort(), await freePort()];
          await tunnel(
            section('yes', yes) +
              section('no', no, 'sessionResume = no\n') +
              // Client certificates requested: resumption must still work.
              section('asks', asks, 'verify = 2\n'),
            kind,
            asks,
          );
          const client = ['-cert', fx.pki.clientChain, '-key', fx.pki.clientKey];
          for (const [port, resumes] of [
            [yes, true],
            [no, false],
            [asks, true],
          ] as const) {
            const sess = sessionFile();
            const first = await sClient(port, [`-${version}`, ...client, '-sess_out', sess]);
            expect(fresh(first), first).toBe(true);
            // stunnel4 gives nothing s_client keeps (no ticket, no session ID): nothing to offer.
            if (!resumes && kind === 'stunnel4' && !existsSync(sess)) continue;
            const again = await sClient(port, [`-${version}`, ...client, '-sess_in', sess]);
            expect(again).toMatch(/ready$/m);
            expect(reused(again), again).toBe(resumes);
          }
        },
      );
    }

  it('a value other than yes or no: same words and exit 1 as stunnel4', async () => {
    const mine = await badConfig('sessionResume maybe', 'sessionResume = maybe\n');
    expect(mine[0]).toMatch(/: The argument needs to be either 'yes' or 'no'$/);
  });
});

describe('HUP', () => {
  it.runIf(hasOpenssl)(
    'sessions made before a reload resume after it with a ticket pair, not without',
    async () => {
      const [kept, lost] = [await freePort(), await freePort()];
      const pair = `ticketKeySecret = ${HEX32}\nticketMacSecret = ${HEX16}\n`;
      const { daemon } = await tunnel(section('kept', kept, pair) + section('lost', lost));
      const before = [sessionFile(), sessionFile()] as const;
      expect(fresh(await sClient(kept, ['-tls1_2', '-sess_out', before[0]]))).toBe(true);
      expect(fresh(await sClient(lost, ['-tls1_2', '-sess_out', before[1]]))).toBe(true);
      daemon.proc.kill('SIGHUP');
      await daemon.log.waitForCount(/Configuration successful/, 2);
      expect(reused(await sClient(kept, ['-tls1_2', '-sess_in', before[0]]))).toBe(true);
      const after = await sClient(lost, ['-tls1_2', '-sess_in', before[1]]);
      expect(after).toMatch(/ready$/m);
      expect(reused(after)).toBe(false);
    },
  );
});

describe('HUP with a bad value', () => {
  it.runIf(hasOpenssl)('keeps the running configuration for each of these options', async () => {
    const port = await freePort();
    const good = section('h', port, 'curves = P-384\n');
    const { conf, daemon } = await tunnel(good);
    const bad: Array<[string, RegExp]> = [
      [
        `ticketKeySecret = ${HEX16}00\nticketMacSecret = ${HEX16}\n`,
        /value has 17 bytes instead of required 16 or 32 bytes\n.*Failed to read ticketKeySecret/,
      ],
      [`ticketKeySecret = ${HEX16}\n`, /must be set together/],
      ['curves = bogus\n', /Invalid groups list in 'curves'/],
      ['options = BOGUS\n', /Illegal TLS option/],
      ['securityLevel = 9\n', /Illegal security level/],
      ['securityLevel = 3\n', /ee key too small/],
    ];
    for (const [i, [lines, message]] of bad.entries()) {
      writeConfig(fx.dir, conf.slice(fx.dir.length + 1), `foreground = yes\ndebug = info\n${good}${lines}`);
      daemon.proc.kill('SIGHUP');
      await daemon.log.waitForCount(/Failed to reload the configuration file/, i + 1);
      expect(daemon.log.text()).toMatch(message);
      // Still the old service: P-384 only.
      expect(await sClient(port, ['-groups', 'P-384'])).toMatch(/ready$/m);
      expect(await sClient(port, ['-groups', 'X25519'])).toMatch(/handshake failure/);
    }
  });
});

describe('client mode', () => {
  it.runIf(hasOpenssl)(
    'curves, options and securityLevel shape the outgoing handshake (openssl s_server)',
    async () => {
      const serverPort = await freePort();
      const args = ['-accept', String(serverPort), '-cert', fx.pki.serverCert, '-key', fx.pki.serverKey];
      const server = spawn('openssl', ['s_server', ...args, '-groups', 'P-384', '-www'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        await waitForLine(server.stdout!, /^ACCEPT/, 10_000);
        const ports: number[] = [];
        for (let i = 0; i < 5; i++) ports.push(await freePort());
        const [wrong, right, v12, strict, verified] = ports as [number, number, number, number, number];
        const client = (name: string, port: number, extra: string) =>
          `[${name}]\nclient = yes\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${serverPort}\n${extra}`;
        const verify = `curves = P-384\nverify = 2\nCAfile = ${fx.pki.caBundle}\n`;
        const { daemon } = await tunnel(
          client('wrong', wrong, 'curves = X25519\n') +
            client('right', right, 'curves = P-384\n') +
            client('v12', v12, 'curves = P-384\noptions = NO_TLSv1_3\n') +
            // The server's 2048-bit RSA key is below level 4's 7680 bits: verification refuses it.
            client('strict', strict, `securityLevel = 4\n${verify}`) +
            client('verified', verified, verify),
        );
        const get = 'GET / HTTP/1.0\r\n\r\n';
        expect(await plainTalk(right, get)).toMatch(/^HTTP\/1\.0 200[\s\S]*Protocol\s*: TLSv1\.3/);
        expect(await plainTalk(v12, get)).toMatch(/^HTTP\/1\.0 200[\s\S]*Protocol\s*: TLSv1\.2/);
        // A failed handshake: the plain client is reset (or closed), with nothing from the server.
        const refused = (port: number) =>
          plainTalk(port, get).catch((e: NodeJS.ErrnoException) => e.code ?? String(e));
        expect(['', 'ECONNRESET']).toContain(await refused(wrong));
        await daemon.log.waitFor(/LOG3\[\d+\]: SSL_connect: .*(handshake failure|alert)/);
        expect(['', 'ECONNRESET']).toContain(await refused(strict));
        await daemon.log.waitFor(/LOG3\[\d+\]: SSL_connect: Certificate verification failed/);
        // The same verification at the default level passes: the level made the difference.
        expect(await plainTalk(verified, get)).toMatch(/^HTTP\/1\.0 200/);
      } finally {
        await reap(server);
      }
    },
  );
});

// Name-based virtual services (server-side `sni = PRIMARY:PATTERN`) checked against Debian's
// stunnel4 with openssl s_client -servername, and the `rules = FILE.cdb` option (sslserver's rules
// per client address) with cdb files made by our tcprules.
// Over 300 lines: the two features of one piece of work share the test PKI, the daemons and the
// clients here; split the file when either grows.
import { chmodSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { binPath, createTestPki, freePort, run, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backend, startDaemon, stopAll, TUNNEL, tlsTalk, writeConfig } from './_helpers.js';

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
const hasStunnel = toolAvailable('stunnel4');
const hasOpenssl = toolAvailable('openssl');

beforeAll(() => {
  tmp = tempDir('ucspi-tunnel-sni-');
  pki = createTestPki(join(tmp.path, 'pki'));
});
afterEach(stopAll);
afterAll(() => tmp.cleanup());

/** What openssl s_client saw: the server certificate's subject, the data, whether a certificate was asked for. */
interface Seen {
  subject: string;
  data: string;
  askedForCert: boolean;
  /** The session offered with -sess_in was resumed. */
  reused: boolean;
}

/** openssl s_client with `-servername NAME` (or none), sending one line and reading until the close. */
async function sClient(port: number, servername: string | undefined, extra: string[] = []): Promise<Seen> {
  const r = await run(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      ...(servername === undefined ? ['-noservername'] : ['-servername', servername]),
      '-ign_eof',
      ...extra,
    ],
    { input: 'hi\n' },
  );
  const out = r.stdout.toString();
  return {
    subject: out.match(/^subject=.*CN ?= ?([^,\n]+)$/m)?.[1] ?? '(none)',
    // The answer comes after the session summary, sometimes glued to the end of a ticket's dump line.
    data: out.match(/(?:BACKEND|EXEC) [^\n]*/)?.[0] ?? '(none)',
    askedForCert: out.includes('Acceptable client certificate CA names'),
    reused: out.includes('Reused, '),
  };
}

/** The `SNI:` lines of a log, without time stamps and connection numbers. */
const sniLines = (log: string) =>
  log
    .split('\n')
    .filter((l) => /LOG[0-6]\[\d+\]: SNI: /.test(l))
    .map((l) => l.replace(/^.*LOG(\d)\[\d+\]: /, 'LOG$1 '));

/** A primary and two secondaries with certificates of their own and backends that say who they are. */
async function virtualHosts(port: number, extraA = ''): Promise<string> {
  const names = ['primary', 'a', 'b'];
  const ports: number[] = [];
  for (const n of names) ports.push((await backend(() => `BACKEND ${n}\n`, true)).port);
  return `foreground = yes
debug = info
[primary]
accept = 127.0.0.1:${port}
connect = 127.0.0.1:${ports[0]}
cert = ${pki.serverCert}
key = ${pki.serverKey}
[a]
sni = primary:other.test
connect = 127.0.0.1:${ports[1]}
cert = ${pki.otherCert}
key = ${pki.otherKey}
${extraA}
[b]
sni = primary:*.b.test
connect = 127.0.0.1:${ports[2]}
cert = ${pki.wrongHostCert}
key = ${pki.wrongHostKey}
`;
}

describe.runIf(hasOpenssl)('sni = PRIMARY:PATTERN (name-based virtual services)', () => {
  // server name sent -> [certificate CN, backend]; stunnel4 answers the same (checked below).
  const expected: [string | undefined, string, string][] = [
    ['other.test', 'other.test', 'BACKEND a'],
    ['OTHER.test', 'other.test', 'BACKEND a'],
    ['x.b.test', 'wrong.test', 'BACKEND b'],
    ['deep.x.b.test', 'wrong.test', 'BACKEND b'],
    ['b.test', '127.0.0.1', 'BACKEND primary'],
    ['nomatch.test', '127.0.0.1', 'BACKEND primary'],
    [undefined, '127.0.0.1', 'BACKEND primary'],
  ];

  for (const daemon of ['ucspi-tunnel', 'stunnel4'] as const)
    it.runIf(daemon === 'ucspi-tunnel' || hasStunnel)(
      `${daemon}: the certificate and the backend follow the server name; the log says so`,
      async () => {
        const port = await freePort();
        const conf = writeConfig(tmp.path, `vhosts-${daemon}.conf`, await virtualHosts(port));
        const t = await startDaemon(daemon, conf);
        for (const [name, cn, data] of expected) {
          const seen = await sClient(port, name);
          expect([name, seen.subject, seen.data], t.log.text()).toEqual([name, cn, data]);
        }
        await t.log.waitForCount(/Connection closed/, expected.length);
        const text = t.log.text();
        expect(text).toMatch(/LOG5\[\d+\]: Service \[a\] connected remote server from 127\.0\.0\.1:\d+/);
        expect(text).toMatch(/LOG5\[\d+\]: Service \[b\] connected remote server from 127\.0\.0\.1:\d+/);
        expect(sniLines(text)).toEqual([
          'LOG6 SNI: requested servername: other.test',
          'LOG5 SNI: switched to service [a]',
          'LOG6 SNI: requested servername: OTHER.test',
          'LOG5 SNI: switched to service [a]',
          'LOG6 SNI: requested servername: x.b.test',
          'LOG5 SNI: switched to service [b]',
          'LOG6 SNI: requested servername: deep.x.b.test',
          'LOG5 SNI: switched to service [b]',
          'LOG6 SNI: requested servername: b.test',
          'LOG3 SNI: no pattern matched servername: b.test',
          'LOG6 SNI: requested servername: nomatch.test',
          'LOG3 SNI: no pattern matched servername: nomatch.test',
          'LOG5 SNI: no servername received',
        ]);
      },
    );

  for (const daemon of ['ucspi-tunnel', 'stunnel4'] as const)
    it.runIf(daemon === 'ucspi-tunnel' || hasStunnel)(
      `${daemon}: a secondary's verify policy and exec apply to its clients only`,
      async () => {
        const port = await freePort();
        const script = writeConfig(
          tmp.path,
          'who.sh',
          '#!/bin/sh\nread line\necho "EXEC $SSL_CLIENT_DN $line"\n',
        );
        chmodSync(script, 0o755);
        const text = (await virtualHosts(port, `verify = 2\nCAfile = ${pki.caBundle}\n`)).replace(
          /(\[a\]\nsni = primary:other\.test\n)connect = .*\n/,
          `$1exec = ${script}\n`,
        );
        const t = await startDaemon(daemon, writeConfig(tmp.path, `verify-${daemon}.conf`, text));
        const withCert = ['-cert', pki.clientCert, '-key', pki.clientKey];
        const a = await sClient(port, 'other.test', withCert);
        expect(a, t.log.text()).toMatchObject({
          subject: 'other.test',
          data: expect.stringMatching(/^EXEC .*CN ?= ?client\.test hi$/),
          askedForCert: true,
        });
        // Without a certificate the secondary refuses (stunnel during the handshake, we just after).
        expect((await sClient(port, 'other.test')).data).toBe('(none)');
        // The primary and the other secondary ask for no certificate.
        expect(await sClient(port, 'nomatch.test', withCert)).toMatchObject({
          subject: '127.0.0.1',
          data: 'BACKEND primary',
          askedForCert: false,
        });
        expect((await sClient(port, 'x.b.test')).askedForCert).toBe(false);
      },
    );

  for (const daemon of ['ucspi-tunnel', 'stunnel4'] as const)
    it.runIf(daemon === 'ucspi-tunnel' || hasStunnel)(
      `${daemon}: a resumed session goes where this handshake's server name says`,
      async () => {
        const port = await freePort();
        const text = await virtualHosts(port, `verify = 2\nCAfile = ${pki.caBundle}\n`);
        const t = await startDaemon(daemon, writeConfig(tmp.path, `resume-${daemon}.conf`, text));
        const session = join(tmp.path, `session-${daemon}.pem`);
        const pairs = [
          ['x.b.test', 'x.b.test', 'BACKEND b'],
          ['nomatch.test', 'x.b.test', 'BACKEND b'],
          ['x.b.test', 'nomatch.test', 'BACKEND primary'],
        ];
        for (const [first, second, data] of pairs) {
          await sClient(port, first, ['-sess_out', session]);
          const seen = await sClient(port, second, ['-sess_in', session]);
          expect([first, second, seen.reused, seen.data], t.log.text()).toEqual([first, second, true, data]);
        }
        // The primary's session (no client certificate) offered to a secondary that requires one:
        // stunnel 5.68 resumes it and serves the client without a certificate; we refuse it.
        await sClient(port, 'nomatch.test', ['-sess_out', session]);
        const bypass = await sClient(port, 'other.test', ['-sess_in', session]);
        expect(bypass.data).toBe(daemon === 'stunnel4' ? 'BACKEND a' : '(none)');
        if (daemon === 'ucspi-tunnel')
          await t.log.waitFor(
            /SNI: switched to service \[a\]\n.*Rejected by CERT: No peer certificate received/,
          );
      },
    );

  it('HUP applies a changed pattern; a bad one keeps the running configuration', async () => {
    const port = await freePort();
    const conf = writeConfig(tmp.path, 'hup-sni.conf', await virtualHosts(port));
    const t = await startDaemon('ucspi-tunnel', conf);
    expect(await tlsTalk(port, 'x', { servername: 'other.test' })).toBe('BACKEND a\n');
    const text = await virtualHosts(port);
    writeConfig(tmp.path, 'hup-sni.conf', text.replace('sni = primary:other.test', 'sni = primary:new.test'));
    t.proc.kill('SIGHUP');
    await t.log.waitForCount(/Configuration successful/, 2);
    expect(await tlsTalk(port, 'x', { servername: 'other.test' })).toBe('BACKEND primary\n');
    expect(await tlsTalk(port, 'x', { servername: 'new.test' })).toBe('BACKEND a\n');
    writeConfig(tmp.path, 'hup-sni.conf', text.replace('sni = primary:other.test', 'sni = nosuch:new.test'));
    t.proc.kill('SIGHUP');
    await t.log.waitFor(/LOG3\[ui\]: Service \[a\]: SNI section name not found\n.*Failed to reload/);
    expect(await tlsTalk(port, 'x', { servername: 'new.test' })).toBe('BACKEND a\n');
  });
});

describe('sni: bad input', () => {
  const server = (name: string, extra: string) =>
    `[${name}]\ncert = ${pki.serverCert}\nkey = ${pki.serverKey}\n${extra}`;
  const cases: [string, () => string][] = [
    ['primary missing', () => `foreground = yes\n${server('a', 'sni = nosuch:x.test\nconnect = 1\n')}`],
    [
      'primary after the secondary',
      () =>
        `foreground = yes\n${server('a', 'sni = p:x.test\nconnect = 1\n')}${server('p', 'accept = 127.0.0.1:1\nconnect = 2\n')}`,
    ],
    [
      'no colon',
      () =>
        `foreground = yes\n${server('p', 'accept = 127.0.0.1:1\nconnect = 2\n')}${server('a', 'sni = x.test\nconnect = 1\n')}`,
    ],
    [
      'primary is a client',
      () =>
        `foreground = yes\n[p]\nclient = yes\naccept = 127.0.0.1:1\nconnect = 2\n${server('a', 'sni = p:x.test\nconnect = 1\n')}`,
    ],
    [
      'secondary with accept',
      () =>
        `foreground = yes\n${server('p', 'accept = 127.0.0.1:1\nconnect = 2\n')}${server('a', 'sni = p:x.test\naccept = 127.0.0.1:3\nconnect = 1\n')}`,
    ],
    [
      'secondary without a certificate',
      () =>
        `foreground = yes\n${server('p', 'accept = 127.0.0.1:1\nconnect = 2\n')}[a]\nsni = p:x.test\nconnect = 1\n`,
    ],
  ];
  const errors = (s: string) =>
    s
      .split('\n')
      .filter((l) => l.startsWith('[!]'))
      // stunnel4 also complains of each server section without CAs, before the section's check.
      .filter((l) => l !== '[!] No trusted certificates found')
      .map((l) => l.replace(/^\[!\] /, ''));
  it.each(cases)('%s: the same message and exit 1 as stunnel4', async (name, text) => {
    const conf = writeConfig(tmp.path, `bad-sni-${name.replace(/\W+/g, '-')}.conf`, text());
    const ours = await run(process.execPath, [TUNNEL, conf]);
    expect(ours.code).toBe(1);
    const mine = errors(ours.stderr.toString());
    expect(mine.at(-1)).toBe('Configuration failed');
    expect(mine.length).toBe(2);
    if (!hasStunnel) return;
    const theirs = await run('stunnel4', [conf], { timeoutMs: 10_000 });
    expect(theirs.code).toBe(1);
    expect(mine).toEqual(errors(theirs.stderr.toString()));
  });

  it('a secondary of a secondary is accepted, as by stunnel, with a warning: it is never used', async () => {
    const conf = writeConfig(
      tmp.path,
      'sni-chain.conf',
      `foreground = yes\n${server('p', 'accept = 127.0.0.1:1\nconnect = 2\n')}${server('a', 'sni = p:x.test\nconnect = 3\n')}${server('c', 'sni = a:y.test\nconnect = 4\n')}`,
    );
    const r = await run(process.execPath, [TUNNEL, '-t', conf]);
    expect(r.stderr.toString()).toContain(
      `[!] ${conf}:12: "[c]": Service [c]: SNI primary [a] is itself an SNI secondary: this service is never used\n`,
    );
    expect(r.code).toBe(0);
  });

  it.each([
    ['sni = p:a*b', "Invalid SNI pattern: host name characters only, with '*' as the first character only"],
    ['sni = p:', 'Invalid SNI pattern: empty'],
    [
      'sni = p:two words',
      "Invalid SNI pattern: host name characters only, with '*' as the first character only",
    ],
  ])(
    'a pattern no name can match (%s) names the line; stunnel accepts it and never uses the section',
    async (line, message) => {
      const conf = writeConfig(
        tmp.path,
        'bad-pattern.conf',
        `foreground = yes\n${server('p', 'accept = 127.0.0.1:1\nconnect = 2\n')}[a]\n${line}\n`,
      );
      const r = await run(process.execPath, [TUNNEL, conf]);
      expect(r.code).toBe(1);
      expect(r.stderr.toString()).toBe(`[!] ${conf}:8: "${line}": ${message}\n[!] Configuration failed\n`);
    },
  );
});

const TCPRULES = binPath('packages/rules', 'tcprules');

/** A rules cdb made by our tcprules from `text`. */
async function makeRules(name: string, text: string): Promise<string> {
  const cdb = join(tmp.path, `${name}.cdb`);
  const r = await run(process.execPath, [TCPRULES, cdb, `${cdb}.tmp`], { input: text });
  expect(r.code, r.stderr.toString()).toBe(0);
  return cdb;
}

/** A TLS client from 127.0.0.2 (loopback too): the rules tell it from 127.0.0.1. */
const fromTwo = { localAddress: '127.0.0.2' } as ConnectionOptions;

/** Connect with TLS and resolve whether the handshake completed before the server closed. */
function handshakes(port: number, options: ConnectionOptions = {}): Promise<boolean> {
  return new Promise((resolve) => {
    const c = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...options });
    c.once('secureConnect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
    c.once('close', () => resolve(false));
  });
}

/** A plain client from `localAddress`: send `input`, half-close, everything read until the close (a reset too). */
function plainFrom(port: number, input: string, localAddress = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const c = connect({ port, host: '127.0.0.1', localAddress, allowHalfOpen: true });
    let out = '';
    c.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.on('error', () => undefined);
    c.on('end', () => c.end());
    c.on('close', () => resolve(out));
    c.end(input);
  });
}

/** A server section on 127.0.0.1:`port` with `rules` and the given other lines. */
const rulesSection = (port: number, rules: string, rest: string) =>
  `foreground = yes\ndebug = info\n[r]\naccept = 127.0.0.1:${port}\ncert = ${pki.serverCert}\nkey = ${pki.serverKey}\nrules = ${rules}\n${rest}`;

describe('rules = FILE.cdb (sslserver rules per client address, beyond stunnel)', () => {
  it('a deny rule refuses before any TLS work; an allow rule sets variables for exec', async () => {
    const cdb = await makeRules('deny-one', '127.0.0.1:deny\n127.0.0.2:allow,WHO="two"\n');
    const script = writeConfig(
      tmp.path,
      'env.sh',
      '#!/bin/sh\nread line\necho "WHO=$WHO FROM=$TCPREMOTEIP $line"\n',
    );
    chmodSync(script, 0o755);
    const port = await freePort();
    const t = await startDaemon(
      'ucspi-tunnel',
      writeConfig(tmp.path, 'deny.conf', rulesSection(port, cdb, `exec = ${script}\n`)),
    );
    expect(await handshakes(port)).toBe(false);
    await t.log.waitFor(
      /LOG4\[0\]: Service \[r\] REFUSED by rules from 127\.0\.0\.1:\d+\n.*LOG5\[0\]: Connection reset: 0 byte\(s\) sent to TLS, 0 byte\(s\) sent to socket/,
    );
    expect(t.log.text()).not.toMatch(/accepted connection|SSL_accept/);
    expect(await tlsTalk(port, 'hi\n', fromTwo)).toBe('WHO=two FROM=127.0.0.2 hi\n');
    expect(t.log.text()).toMatch(/LOG5\[1\]: Service \[r\] accepted connection from 127\.0\.0\.2:\d+/);
  });

  it('client mode too: a denied client is closed before the backend is tried', async () => {
    const cdb = await makeRules('client-deny', '127.0.0.1:deny\n');
    const port = await freePort();
    const target = await freePort();
    const conf = `foreground = yes\ndebug = info\n[c]\nclient = yes\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${target}\nrules = ${cdb}\n`;
    const t = await startDaemon('ucspi-tunnel', writeConfig(tmp.path, 'client-deny.conf', conf));
    expect(await plainFrom(port, 'hello')).toBe('');
    await t.log.waitFor(/LOG4\[0\]: Service \[c\] REFUSED by rules from 127\.0\.0\.1:\d+/);
    // 127.0.0.2 has no rule: accepted, and only then is the (closed) target tried.
    expect(await plainFrom(port, 'hello', '127.0.0.2')).toBe('');
    await t.log.waitFor(
      /LOG5\[1\]: Service \[c\] accepted connection from 127\.0\.0\.2:\d+\n(.*\n)*.*LOG3\[1\]: s_connect: connect 127\.0\.0\.1:\d+: Connection refused/,
    );
    expect(t.log.text()).not.toMatch(/LOG\d\[0\]: s_connect/);
  });

  it("a rule's MAXCONIP limits the connections from its addresses at once", async () => {
    const b = await backend();
    const cdb = await makeRules('maxconip', '127.0.0.2:allow,MAXCONIP="1"\n');
    const port = await freePort();
    const t = await startDaemon(
      'ucspi-tunnel',
      writeConfig(tmp.path, 'maxconip.conf', rulesSection(port, cdb, `connect = 127.0.0.1:${b.port}\n`)),
    );
    // One connection from 127.0.0.2 held open, its backend connected.
    const held = tlsConnect({
      port,
      host: '127.0.0.1',
      rejectUnauthorized: false,
      allowHalfOpen: true,
      ...fromTwo,
    } as ConnectionOptions);
    held.on('error', () => undefined);
    let heldOut = '';
    held.on('data', (d: Buffer) => {
      heldOut += d.toString();
    });
    await t.log.waitFor(/Service \[r\] connected remote server/);
    expect(await handshakes(port, fromTwo)).toBe(false);
    await t.log.waitFor(/LOG4\[1\]: Service \[r\] REFUSED by MAXCONIP=1 from 127\.0\.0\.2:\d+/);
    // Other addresses are not counted against it (no rule: allowed, no limit).
    expect(await tlsTalk(port, 'other')).toBe('OTHER');
    const heldEnd = new Promise((r) => held.once('end', r));
    held.end('first');
    await heldEnd;
    expect(heldOut).toBe('FIRST');
    await t.log.waitForCount(/Connection closed/, 2);
    expect(await tlsTalk(port, 'third', fromTwo)).toBe('THIRD');
  });

  it('a missing or wrong file fails the start naming the line; a file gone later refuses clients', async () => {
    const port = await freePort();
    const missing = join(tmp.path, 'missing.cdb');
    const notCdb = writeConfig(tmp.path, 'rules.txt', '127.0.0.1:deny\n');
    for (const [file, message] of [
      [missing, `Cannot read rules file ${missing}: No such file or directory (2)`],
      [notCdb, `Rules file ${notCdb} is not a cdb (make it with tcprules)`],
      [tmp.path, `Rules file ${tmp.path} is not a regular file`],
    ] as const) {
      const conf = writeConfig(tmp.path, 'missing-rules.conf', rulesSection(port, file, 'connect = 1\n'));
      const r = await run(process.execPath, [TUNNEL, conf]);
      expect(r.code).toBe(1);
      expect(r.stderr.toString()).toBe(
        `[!] ${conf}:7: "rules = ${file}": ${message}\n[!] Configuration failed\n`,
      );
    }
    const b = await backend();
    const cdb = await makeRules('gone', '127.0.0.1:allow\n');
    const t = await startDaemon(
      'ucspi-tunnel',
      writeConfig(tmp.path, 'gone.conf', rulesSection(port, cdb, `connect = 127.0.0.1:${b.port}\n`)),
    );
    expect(await tlsTalk(port, 'before')).toBe('BEFORE');
    unlinkSync(cdb);
    expect(await handshakes(port)).toBe(false);
    await t.log.waitFor(
      new RegExp(
        `LOG3\\[1\\]: Service \\[r\\] REFUSED from 127\\.0\\.0\\.1:\\d+: cannot read rules file ${cdb.replace(/\./g, '\\.')}: No such file or directory \\(2\\)`,
      ),
    );
  });

  it('HUP applies a changed rules option to a kept listener; a missing file keeps the running one', async () => {
    const b = await backend();
    const deny = await makeRules('hup-deny', '127.0.0.1:deny\n');
    const allow = await makeRules('hup-allow', '127.0.0.1:allow\n');
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'hup-rules.conf',
      rulesSection(port, deny, `connect = 127.0.0.1:${b.port}\n`),
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    expect(await handshakes(port)).toBe(false);
    await t.log.waitFor(/REFUSED by rules/);
    writeConfig(tmp.path, 'hup-rules.conf', rulesSection(port, allow, `connect = 127.0.0.1:${b.port}\n`));
    t.proc.kill('SIGHUP');
    await t.log.waitForCount(/Configuration successful/, 2);
    expect(await tlsTalk(port, 'now')).toBe('NOW');
    const missing = join(tmp.path, 'hup-missing.cdb');
    writeConfig(tmp.path, 'hup-rules.conf', rulesSection(port, missing, `connect = 127.0.0.1:${b.port}\n`));
    t.proc.kill('SIGHUP');
    await t.log.waitFor(
      /LOG3\[ui\]: .*hup-rules\.conf:7: "rules = .*": Cannot read rules file .*\n.*Failed to reload/,
    );
    expect(await tlsTalk(port, 'still')).toBe('STILL');
    // And back to no rules at all: the kept listener stops consulting the deny file.
    writeConfig(
      tmp.path,
      'hup-rules.conf',
      rulesSection(port, deny, `connect = 127.0.0.1:${b.port}\n`).replace(/^rules = .*\n/m, ''),
    );
    t.proc.kill('SIGHUP');
    await t.log.waitForCount(/Configuration successful/, 3);
    expect(await tlsTalk(port, 'free')).toBe('FREE');
  });

  it("an SNI secondary with rules other than its primary's, and rules in inetd mode, are refused", async () => {
    const cdb = await makeRules('sni-rules', '127.0.0.1:allow\n');
    const cases: [string, string][] = [
      [
        `foreground = yes\n[p]\naccept = 127.0.0.1:1\nconnect = 2\ncert = ${pki.serverCert}\nkey = ${pki.serverKey}\n[a]\nsni = p:x.test\nconnect = 3\ncert = ${pki.otherCert}\nkey = ${pki.otherKey}\nrules = ${cdb}\n`,
        "Service [a]: rules in an SNI secondary must be the primary's: the rules decide before the server name is known",
      ],
      [
        `foreground = yes\nconnect = 2\ncert = ${pki.serverCert}\nkey = ${pki.serverKey}\nrules = ${cdb}\n`,
        'Inetd mode: rules is not supported by ucspi-tunnel in inetd mode yet: use the rules of the server that runs it',
      ],
    ];
    for (const [text, message] of cases) {
      const r = await run(process.execPath, [TUNNEL, writeConfig(tmp.path, 'sni-rules.conf', text)]);
      expect(r.code).toBe(1);
      expect(r.stderr.toString()).toBe(`[!] ${message}\n[!] Configuration failed\n`);
    }
    // The same rules line written once in the global part reaches the secondary too: accepted.
    const shared = `foreground = yes\nrules = ${cdb}\n[p]\naccept = 127.0.0.1:1\nconnect = 2\ncert = ${pki.serverCert}\nkey = ${pki.serverKey}\n[a]\nsni = p:x.test\nconnect = 3\ncert = ${pki.otherCert}\nkey = ${pki.otherKey}\n`;
    const ok = await run(process.execPath, [
      TUNNEL,
      '-t',
      writeConfig(tmp.path, 'sni-rules-ok.conf', shared),
    ]);
    expect(ok.stderr.toString()).toMatch(/Configuration successful/);
    expect(ok.code).toBe(0);
  });
});

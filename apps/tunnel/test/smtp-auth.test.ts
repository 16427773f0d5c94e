// Client mode, protocol = smtp with protocolUsername/protocolPassword: SMTP AUTH inside TLS
// (PLAIN, or LOGIN with protocolAuthentication = login) against Debian's exim4 with a fixed user,
// side by side with Debian's stunnel4 where both can log in: exim's third port lets AUTH follow
// HELO (stunnel 5.68 says HELO after TLS, ucspi-tunnel EHLO, as stunnel 5.73 and later).
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createTestPki,
  freePort,
  run,
  type TestPki,
  tempDir,
  toolAvailable,
  waitForLine,
} from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  both,
  clientConf,
  closeFakes,
  fakeServer,
  hasStunnel,
  type Outcome,
  plainClient,
  through,
} from './_client-protocols.js';
import { startDaemon, stopAll, TUNNEL, writeConfig } from './_helpers.js';

interface Peer {
  ports: Record<string, number>;
  stop(): Promise<void>;
  log(): string;
}
interface Peers {
  started(child: ChildProcess, ports: Record<string, number>): Peer;
  openUp(dir: string, pki: TestPki): { cert: string; key: string };
  waitForPort(port: number): Promise<void>;
}
// The helpers that start real servers live with @ucspi/starttls's tests (one copy).
const here = dirname(fileURLToPath(import.meta.url));
const peersFile = join(here, '../../../packages/starttls/test/_peers.ts');

const USER = 'alice';
const PASS = 'Pa55-w0rd';

/**
 * exim on three loopback ports, all with STARTTLS: `auth` offers AUTH PLAIN and LOGIN once TLS is
 * up (alice/Pa55-w0rd), `noauth` offers no AUTH (and refuses it: 503), `compat` as `auth` but AUTH
 * is also taken after HELO (exim's allow_auth_unadvertised, for stunnel 5.68). MAIL FROM is
 * answered with who the client is; every RCPT is refused, nothing is ever delivered.
 */
async function startExim(dir: string, pki: TestPki, peers: Peers): Promise<Peer & { mainlog(): string }> {
  const exim = toolAvailable('exim4') ? 'exim4' : 'exim';
  const ports = { auth: await freePort(), noauth: await freePort(), compat: await freePort() };
  const { cert, key } = peers.openUp(dir, pki);
  for (const d of ['spool', 'log']) {
    mkdirSync(join(dir, d), { recursive: true });
    chmodSync(join(dir, d), 0o777);
  }
  const conf = join(dir, 'exim.conf');
  const plain = (user: string, pass: string) => `\${if and{{eq{${user}}{${USER}}}{eq{${pass}}{${PASS}}}}}`;
  writeFileSync(
    conf,
    [
      'primary_hostname = mx.test',
      `spool_directory = ${join(dir, 'spool')}`,
      `log_file_path = ${join(dir, 'log')}/%slog`,
      `pid_file_path = ${join(dir, 'exim.pid')}`,
      `daemon_smtp_ports = ${ports.auth} : ${ports.noauth} : ${ports.compat}`,
      'local_interfaces = 127.0.0.1',
      'tls_advertise_hosts = *',
      `tls_certificate = ${cert}`,
      `tls_privatekey = ${key}`,
      `auth_advertise_hosts = \${if eq{$received_port}{${ports.noauth}}{}{*}}`,
      'acl_smtp_connect = acl_connect',
      'acl_smtp_mail = acl_mail',
      'acl_smtp_rcpt = acl_rcpt',
      'begin acl',
      'acl_connect:',
      `  accept condition = \${if eq{$received_port}{${ports.compat}}}`,
      '         control = allow_auth_unadvertised',
      '  accept',
      'acl_mail:',
      '  accept authenticated = *',
      '         message = sender ok, authenticated as $authenticated_id',
      '  accept message = sender ok, not authenticated',
      'acl_rcpt:',
      '  deny',
      'begin routers',
      'begin transports',
      'begin authenticators',
      'plain:',
      '  driver = plaintext',
      '  public_name = PLAIN',
      '  server_prompts = :',
      `  server_condition = ${plain('$auth2', '$auth3')}`,
      '  server_set_id = $auth2',
      `  server_advertise_condition = \${if def:tls_in_cipher}`,
      'login:',
      '  driver = plaintext',
      '  public_name = LOGIN',
      '  server_prompts = Username:: : Password::',
      `  server_condition = ${plain('$auth1', '$auth2')}`,
      '  server_set_id = $auth1',
      `  server_advertise_condition = \${if def:tls_in_cipher}`,
      '',
    ].join('\n'),
  );
  // exim refuses a configuration file that others can write.
  chmodSync(conf, 0o644);
  const child = spawn(exim, ['-C', conf, '-bdf', '-v', '-odf'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const peer = peers.started(child, ports);
  try {
    await waitForLine(child.stderr as NonNullable<typeof child.stderr>, /listening for SMTP on/);
    await peers.waitForPort(ports.compat);
  } catch (err) {
    await peer.stop();
    throw new Error(`exim did not start: ${(err as Error).message}\n${peer.log()}`);
  }
  const mainlog = () => {
    try {
      return readFileSync(join(dir, 'log', 'mainlog'), 'utf8');
    } catch {
      return '';
    }
  };
  return { ...peer, mainlog };
}

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
let exim: Awaited<ReturnType<typeof startExim>> | undefined;
// exim's own directory: a top-level one its user can enter (openUp opens it).
let eximDir: { path: string; cleanup: () => void } | undefined;
const hasExim = toolAvailable('exim4') || toolAvailable('exim');
beforeAll(async () => {
  tmp = tempDir('ucspi-tunnel-smtpauth-');
  pki = createTestPki(join(tmp.path, 'pki'));
  if (hasExim) {
    eximDir = tempDir();
    exim = await startExim(eximDir.path, pki, (await import(peersFile)) as Peers);
  }
}, 30_000);
afterEach(stopAll);
afterAll(async () => {
  await exim?.stop();
  eximDir?.cleanup();
  await closeFakes();
  tmp.cleanup();
});

const login = (mechanism?: string, password = PASS) =>
  `protocolUsername = ${USER}\nprotocolPassword = ${password}\n` +
  (mechanism ? `protocolAuthentication = ${mechanism}\n` : '');

/** The plain client's session once the tunnel is through: its own EHLO, MAIL FROM, QUIT. */
async function mailFrom(c: Awaited<ReturnType<typeof plainClient>>): Promise<void> {
  await c.seen.waitFor(/^220 .*\r\n/m);
  c.send('EHLO client.test\r\n');
  await c.seen.waitFor(/^250 .*\r\n/m);
  c.send('MAIL FROM:<someone@example.test>\r\n');
  await c.seen.waitFor(/^250 sender ok/m);
  c.send('QUIT\r\n');
  await c.seen.waitFor(/^221 /m);
}

/** The greeting only: the tunnel closes the client after a failed login. */
const greetingOnly = async (c: Awaited<ReturnType<typeof plainClient>>) => {
  await c.seen.waitFor(/^220 .*\r\n/m);
};

describe.runIf(hasExim)('smtp auth through exim', () => {
  const port = (name: string) => exim!.ports[name] as number;

  for (const [mechanism, label] of [
    [undefined, 'PLAIN (the default)'],
    ['login', 'LOGIN'],
  ] as const) {
    it(`${label}: logged in before the client's bytes; the client's MAIL FROM is the user's`, async () => {
      const [ours] = (
        await both(tmp.path, (a) => clientConf(pki, a, port('compat'), 'smtp', login(mechanism)), mailFrom)
      ).slice(-1) as [Outcome];
      expect(ours.transcript).toMatch(/\r\n250 sender ok, authenticated as alice\r\n/);
      expect(ours.lines.at(-1)).toMatch(
        /^Connection closed: 58 byte\(s\) sent to TLS, \d+ byte\(s\) sent to socket$/,
      );
    });
  }

  it('exim refuses AUTH after HELO: stunnel 5.68 cannot log in there, ucspi-tunnel (EHLO) can', async () => {
    const conf = (a: number) => clientConf(pki, a, port('auth'), 'smtp', login());
    const ours = await through(tmp.path, 'ucspi-tunnel', conf, mailFrom);
    await stopAll();
    expect(ours.transcript).toMatch(/\r\n250 sender ok, authenticated as alice\r\n/);
    if (!hasStunnel) return;
    const theirs = await through(tmp.path, 'stunnel4', conf, greetingOnly);
    expect(theirs.lines).toEqual([
      'PLAIN Authentication Failed',
      'Connection reset: 0 byte(s) sent to TLS, 0 byte(s) sent to socket',
    ]);
  });

  for (const [mechanism, line] of [
    [undefined, 'PLAIN Authentication Failed'],
    ['login', 'LOGIN authentication failed'],
  ] as const) {
    it(`a wrong password (${mechanism ?? 'plain'}): "${line}", the client reset, the password never logged`, async () => {
      const [ours] = (
        await both(
          tmp.path,
          (a) =>
            clientConf(pki, a, port('compat'), 'smtp', login(mechanism, 'wrong-pw')).replace(
              'debug = info',
              'debug = debug',
            ),
          greetingOnly,
        )
      ).slice(-1) as [Outcome];
      expect(ours.transcript).toMatch(/^220 mx\.test ESMTP Exim [^\r\n]*\r\n$/);
      expect(ours.lines).toEqual([line, 'Connection reset: 0 byte(s) sent to TLS, 0 byte(s) sent to socket']);
      // exim saw the attempt (its 535), so the refusal was real.
      expect(exim!.mainlog()).toMatch(new RegExp(`${mechanism ?? 'plain'} authenticator failed .*535`));
    });
  }

  it('the password is in no log line of ucspi-tunnel at debug level', async () => {
    const conf = (a: number) =>
      clientConf(pki, a, port('compat'), 'smtp', login('login')).replace('debug = info', 'debug = debug');
    const p = await freePort();
    const d = await startDaemon('ucspi-tunnel', writeConfig(tmp.path, 'debug.conf', conf(p)));
    const c = await plainClient(p);
    await mailFrom(c);
    c.send('');
    await d.log.waitFor(/Connection closed/);
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    expect(d.log.text()).not.toMatch(new RegExp(`${PASS}|${b64(PASS)}|${b64(`\0${USER}\0${PASS}`)}`));
  });

  for (const [mechanism, line] of [
    [undefined, 'PLAIN Authentication Failed'],
    ['login', 'Remote server does not support LOGIN authentication'],
  ] as const) {
    it(`a server that offers no AUTH (${mechanism ?? 'plain'}): "${line}", the client reset`, async () => {
      const [ours] = (
        await both(
          tmp.path,
          (a) => clientConf(pki, a, port('noauth'), 'smtp', login(mechanism)),
          greetingOnly,
        )
      ).slice(-1) as [Outcome];
      expect(ours.lines).toEqual([line, 'Connection reset: 0 byte(s) sent to TLS, 0 byte(s) sent to socket']);
    });
  }

  it('only one of protocolUsername and protocolPassword: no AUTH, as stunnel (the parser warns)', async () => {
    const [ours] = (
      await both(
        tmp.path,
        (a) => clientConf(pki, a, port('auth'), 'smtp', `protocolUsername = ${USER}\n`),
        mailFrom,
      )
    ).slice(-1) as [Outcome];
    expect(ours.transcript).toMatch(/\r\n250 sender ok, not authenticated\r\n/);
  });
});

describe('credentials only to the right server', () => {
  it('a certificate that fails checkHost: nothing is said inside TLS, the client reset', async () => {
    const server = await fakeServer(
      pki,
      '220 mx.test ESMTP',
      (l) => (l.startsWith('EHLO') ? '250-mx.test\r\n250 STARTTLS' : l === 'STARTTLS' ? 'TLS' : '500 no'),
      '220 go',
    );
    const conf = (a: number) =>
      clientConf(pki, a, server.port, 'smtp', login()).replace(
        'checkHost = localhost',
        'checkHost = other.test',
      );
    const ours = await through(tmp.path, 'ucspi-tunnel', conf, greetingOnly);
    expect(ours.lines[0]).toMatch(/Rejected by CERT at depth=0/);
    expect(server.heard.filter((l) => l.startsWith('TLS:'))).toEqual([]);
  });
});

describe('a server that makes no sense inside TLS', () => {
  it('its EHLO reply is not 250: "PLAIN Authentication Failed" (stunnel ignores it, then AUTH fails)', async () => {
    const server = await fakeServer(
      pki,
      '220 mx.test ESMTP',
      (l) => (l.startsWith('EHLO') ? '250-mx.test\r\n250 STARTTLS' : l === 'STARTTLS' ? 'TLS' : '500 no'),
      '220 go',
    );
    const [ours] = (
      await both(tmp.path, (a) => clientConf(pki, a, server.port, 'smtp', login()), greetingOnly)
    ).slice(-1) as [Outcome];
    expect(ours.lines).toEqual([
      'PLAIN Authentication Failed',
      'Connection reset: 0 byte(s) sent to TLS, 0 byte(s) sent to socket',
    ]);
    // ucspi-tunnel stops at the EHLO reply: no credentials to a server that answers that way.
    expect(server.heard.at(-1)).toBe('TLS: EHLO localhost');
  });
});

describe('bad input', () => {
  const errors = (s: string) =>
    s
      .split('\n')
      .filter((l) => l.startsWith('[!]'))
      .map((l) => l.replace(/^\[!\] /, ''));

  it('protocolAuthentication = cram-md5: refused at its line (stunnel would use PLAIN)', async () => {
    const conf = writeConfig(tmp.path, 'bad-auth.conf', clientConf(pki, 1, 2, 'smtp', login('cram-md5')));
    const ours = await run(process.execPath, [TUNNEL, conf]);
    expect(ours.code).toBe(1);
    expect(errors(ours.stderr.toString())).toEqual([
      `${conf}:13: "protocolAuthentication = cram-md5": Unknown protocolAuthentication: basic or ntlm (connect), plain or login (smtp)`,
      'Configuration failed',
    ]);
  });

  it('protocolAuthentication = ntlm with smtp: refused (stunnel would use PLAIN)', async () => {
    const conf = writeConfig(tmp.path, 'ntlm-auth.conf', clientConf(pki, 1, 2, 'smtp', login('ntlm')));
    const ours = await run(process.execPath, [TUNNEL, conf]);
    expect(ours.code).toBe(1);
    expect(errors(ours.stderr.toString())).toEqual([
      'Service [p]: protocolAuthentication = ntlm is not supported with protocol = smtp (plain or login)',
      'Configuration failed',
    ]);
  });
});

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { findTool, run, type TestPki, waitForLine } from '@ucspi/testkit';

/** A real server started by a test: its ports and how to stop it (the process is always reaped). */
export interface Peer {
  ports: Record<string, number>;
  stop(): Promise<void>;
  /** Everything it wrote on stderr so far (for failure messages). */
  log(): string;
}

function started(child: ChildProcess, ports: Record<string, number>): Peer {
  let log = '';
  child.stdout?.on('data', (b: Buffer) => (log += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (log += b.toString()));
  const exited = once(child, 'exit');
  return {
    ports,
    log: () => log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves once something accepts connections on 127.0.0.1:port (polled, bounded: no event says so). */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - start > timeoutMs)
      throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Real servers drop privileges to their own users, who must read the certificate, the key and the
// directories on the way: a test directory (mode 700 from mkdtemp) is opened up for them.
function openUp(dir: string, pki: TestPki): { cert: string; key: string } {
  chmodSync(dir, 0o755);
  const cert = join(dir, 'peer-cert.pem');
  const key = join(dir, 'peer-key.pem');
  writeFileSync(cert, readFileSync(pki.serverChain), { mode: 0o644 });
  writeFileSync(key, readFileSync(pki.serverKey), { mode: 0o644 });
  chmodSync(key, 0o644);
  return { cert, key };
}

/**
 * Debian's exim4 as a foreground daemon (-bdf) on two loopback ports: `smtp` offers STARTTLS,
 * `plain` does not (tls_advertise_hosts is empty there). Every RCPT is refused: nothing is
 * ever delivered. Runs as root (the test environment), with its configuration in `dir`.
 */
export async function startExim(dir: string, pki: TestPki, smtp: number, plain: number): Promise<Peer> {
  const exim = findTool('exim') ?? findTool('exim4');
  if (!exim) throw new Error('exim not found');
  const { cert, key } = openUp(dir, pki);
  for (const d of ['spool', 'log']) mkdirSync(join(dir, d), { recursive: true, mode: 0o777 });
  chmodSync(join(dir, 'spool'), 0o777);
  chmodSync(join(dir, 'log'), 0o777);
  const conf = join(dir, 'exim.conf');
  writeFileSync(
    conf,
    [
      'primary_hostname = mx.test',
      `spool_directory = ${join(dir, 'spool')}`,
      `log_file_path = ${join(dir, 'log')}/%slog`,
      `pid_file_path = ${join(dir, 'exim.pid')}`,
      `daemon_smtp_ports = ${smtp} : ${plain}`,
      'local_interfaces = 127.0.0.1',
      `tls_advertise_hosts = \${if eq{$received_port}{${plain}}{}{*}}`,
      `tls_certificate = ${cert}`,
      `tls_privatekey = ${key}`,
      'acl_smtp_rcpt = acl_rcpt',
      'begin acl',
      'acl_rcpt:',
      '  deny',
      'begin routers',
      'begin transports',
      '',
    ].join('\n'),
  );
  // exim refuses a configuration file that others can write.
  chmodSync(conf, 0o644);
  const child = spawn(exim, ['-C', conf, '-bdf', '-v', '-odf'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const peer = started(child, { smtp, plain });
  try {
    await waitForLine(child.stderr as NonNullable<typeof child.stderr>, /listening for SMTP on/);
    await waitForPort(smtp);
  } catch (err) {
    await peer.stop();
    throw new Error(`exim did not start: ${(err as Error).message}\n${peer.log()}`);
  }
  return peer;
}

/**
 * Dovecot (imapd, pop3d, lmtpd, managesieved) in the foreground (-F) with a configuration in
 * `dir`, listening on loopback for IMAP, POP3, LMTP and ManageSieve, STARTTLS with the test
 * certificate. Logins are never made.
 */
export async function startDovecot(
  dir: string,
  pki: TestPki,
  ports: { imap: number; pop3: number; lmtp: number; sieve: number },
): Promise<Peer> {
  const dovecot = findTool('dovecot');
  if (!dovecot) throw new Error('dovecot not found');
  const { cert, key } = openUp(dir, pki);
  const conf = join(dir, 'dovecot.conf');
  writeFileSync(
    conf,
    `base_dir = ${join(dir, 'run')}
state_dir = ${join(dir, 'state')}
log_path = /dev/stderr
protocols = imap pop3 lmtp sieve
listen = 127.0.0.1
ssl = yes
ssl_cert = <${cert}
ssl_key = <${key}
auth_mechanisms = plain
passdb {
  driver = static
  args = password=unused
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=${join(dir, 'home')}
}
service imap-login {
  inet_listener imap {
    port = ${ports.imap}
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = ${ports.pop3}
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${ports.lmtp}
  }
}
service managesieve-login {
  inet_listener sieve {
    port = ${ports.sieve}
  }
}
`,
  );
  const child = spawn(dovecot, ['-F', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const peer = started(child, ports);
  try {
    await waitForLine(child.stderr as NonNullable<typeof child.stderr>, /starting up/);
    for (const p of Object.values(ports)) await waitForPort(p);
  } catch (err) {
    await peer.stop();
    throw new Error(`dovecot did not start: ${(err as Error).message}\n${peer.log()}`);
  }
  return peer;
}

/** tinyproxy in the foreground (-d) on loopback, with basic authentication `user`/`pass`. */
export async function startTinyproxy(dir: string, port: number, user: string, pass: string): Promise<Peer> {
  const tinyproxy = findTool('tinyproxy');
  if (!tinyproxy) throw new Error('tinyproxy not found');
  chmodSync(dir, 0o755);
  const conf = join(dir, 'tinyproxy.conf');
  writeFileSync(
    conf,
    [
      'User nobody',
      'Group nogroup',
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 60',
      'LogLevel Info',
      'MaxClients 20',
      'Allow 127.0.0.1',
      `BasicAuth ${user} ${pass}`,
      '',
    ].join('\n'),
  );
  const child = spawn(tinyproxy, ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const peer = started(child, { proxy: port });
  try {
    await waitForPort(port);
  } catch (err) {
    await peer.stop();
    throw new Error(`tinyproxy did not start: ${(err as Error).message}\n${peer.log()}`);
  }
  return peer;
}

/**
 * PostgreSQL 15 (Debian's postgresql): initdb and postgres run as the `postgres` user (runuser;
 * the tests run as root) in `dir`, listening on loopback with ssl=on. Takes a few seconds.
 */
export async function startPostgres(dir: string, pki: TestPki, port: number): Promise<Peer> {
  const bin = findPostgresBin();
  if (!bin) throw new Error('the PostgreSQL server is not installed');
  const { cert, key } = openUp(dir, pki);
  const data = join(dir, 'pgdata');
  // postgres wants its key private and its own.
  chmodSync(key, 0o600);
  await runChecked(['chown', 'postgres', dir, cert, key]);
  await runChecked([
    'runuser',
    '-u',
    'postgres',
    '--',
    join(bin, 'initdb'),
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
  ]);
  const child = spawn(
    'runuser',
    [
      '-u',
      'postgres',
      '--',
      join(bin, 'postgres'),
      '-D',
      data,
      '-k',
      dir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'ssl=on',
      '-c',
      `ssl_cert_file=${cert}`,
      '-c',
      `ssl_key_file=${key}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const peer = started(child, { postgres: port });
  try {
    await waitForLine(
      child.stderr as NonNullable<typeof child.stderr>,
      /ready to accept connections/,
      30_000,
    );
  } catch (err) {
    await peer.stop();
    throw new Error(`postgres did not start: ${(err as Error).message}\n${peer.log()}`);
  }
  return peer;
}

/** The directory of Debian's PostgreSQL server binaries (the newest version installed), or undefined. */
export function findPostgresBin(): string | undefined {
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const bin = join('/usr/lib/postgresql', v, 'bin');
      if (existsSync(join(bin, 'postgres')) && existsSync(join(bin, 'initdb'))) return bin;
    }
  } catch {
    // not installed
  }
  return undefined;
}

async function runChecked(argv: string[]): Promise<void> {
  const r = await run(argv[0] as string, argv.slice(1), { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${r.code}): ${r.stderr}`);
}

/** OpenLDAP's slapd in the foreground (-d 0) with a slapd.conf in `dir`, StartTLS with the test certificate. */
export async function startSlapd(dir: string, pki: TestPki, port: number): Promise<Peer> {
  const slapd = findTool('slapd');
  if (!slapd) throw new Error('slapd not found');
  const { cert, key } = openUp(dir, pki);
  mkdirSync(join(dir, 'ldapdb'), { recursive: true });
  const conf = join(dir, 'slapd.conf');
  writeFileSync(
    conf,
    [
      'include /etc/ldap/schema/core.schema',
      `pidfile ${join(dir, 'slapd.pid')}`,
      `argsfile ${join(dir, 'slapd.args')}`,
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      `TLSCertificateFile ${cert}`,
      `TLSCertificateKeyFile ${key}`,
      'database mdb',
      'suffix "dc=test"',
      'rootdn "cn=admin,dc=test"',
      `directory ${join(dir, 'ldapdb')}`,
      '',
    ].join('\n'),
  );
  const child = spawn(slapd, ['-d', '0', '-f', conf, '-h', `ldap://127.0.0.1:${port}/`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const peer = started(child, { ldap: port });
  try {
    await waitForPort(port);
  } catch (err) {
    await peer.stop();
    throw new Error(`slapd did not start: ${(err as Error).message}\n${peer.log()}`);
  }
  return peer;
}

/** vsftpd in the foreground on loopback with ssl_enable (AUTH TLS); nobody can log in. */
export async function startVsftpd(dir: string, pki: TestPki, port: number): Promise<Peer> {
  const vsftpd = findTool('vsftpd');
  if (!vsftpd) throw new Error('vsftpd not found');
  const { cert, key } = openUp(dir, pki);
  const empty = join(dir, 'empty');
  mkdirSync(empty, { recursive: true, mode: 0o755 });
  const conf = join(dir, 'vsftpd.conf');
  writeFileSync(
    conf,
    [
      'listen=YES',
      'listen_ipv6=NO',
      'listen_address=127.0.0.1',
      `listen_port=${port}`,
      'background=NO',
      'anonymous_enable=NO',
      'local_enable=YES',
      'ssl_enable=YES',
      `rsa_cert_file=${cert}`,
      `rsa_private_key_file=${key}`,
      `secure_chroot_dir=${empty}`,
      'seccomp_sandbox=NO',
      'require_ssl_reuse=NO',
      '',
    ].join('\n'),
  );
  const child = spawn(vsftpd, [conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const peer = started(child, { ftp: port });
  try {
    await waitForPort(port);
  } catch (err) {
    await peer.stop();
    throw new Error(`vsftpd did not start: ${(err as Error).message}\n${peer.log()}`);
  }
  return peer;
}

/**
 * Prosody 0.12 in the foreground (-F) with a configuration in `dir`: virtual host `chat.test`,
 * client-to-server and server-to-server ports on loopback, both requiring STARTTLS.
 */
export async function startProsody(dir: string, pki: TestPki, c2s: number, s2s: number): Promise<Peer> {
  const prosody = findTool('prosody');
  if (!prosody) throw new Error('prosody not found');
  const { cert, key } = openUp(dir, pki);
  mkdirSync(join(dir, 'prosody-data'), { recursive: true });
  const conf = join(dir, 'prosody.cfg.lua');
  writeFileSync(
    conf,
    [
      'run_as_root = true',
      `pidfile = "${join(dir, 'prosody.pid')}"`,
      `data_path = "${join(dir, 'prosody-data')}"`,
      `certificates = "${dir}"`,
      'interfaces = { "127.0.0.1" }',
      `c2s_ports = { ${c2s} }`,
      `s2s_ports = { ${s2s} }`,
      'c2s_direct_tls_ports = { }',
      'c2s_require_encryption = true',
      's2s_require_encryption = true',
      'modules_enabled = { "tls"; "saslauth"; "dialback"; "disco"; }',
      'log = { { levels = { min = "info" }, to = "console" } }',
      `ssl = { certificate = "${cert}"; key = "${key}"; }`,
      'VirtualHost "chat.test"',
      '',
    ].join('\n'),
  );
  const child = spawn(prosody, ['--config', conf, '-F'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const peer = started(child, { c2s, s2s });
  try {
    await waitForLine(
      child.stdout as NonNullable<typeof child.stdout>,
      new RegExp(`service 's2s' on .*:${s2s}`),
    );
    await waitForPort(c2s);
  } catch (err) {
    await peer.stop();
    throw new Error(`prosody did not start: ${(err as Error).message}\n${peer.log()}`);
  }
  return peer;
}

/**
 * MariaDB (Debian's mariadb-server): a fresh data directory made by mariadb-install-db and a
 * mariadbd on loopback with the test certificate, as the `mysql` user. Takes a few seconds.
 */
export async function startMariadb(dir: string, pki: TestPki, port: number): Promise<Peer> {
  const installDb = findTool('mariadb-install-db');
  const mariadbd = findTool('mariadbd');
  if (!installDb || !mariadbd) throw new Error('mariadb-server is not installed');
  const { cert, key } = openUp(dir, pki);
  const data = join(dir, 'mariadb-data');
  await runChecked(['chown', 'mysql', dir, cert, key]);
  await runChecked([
    installDb,
    '--no-defaults',
    '--user=mysql',
    `--datadir=${data}`,
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
  ]);
  const child = spawn(
    mariadbd,
    [
      '--no-defaults',
      '--user=mysql',
      `--datadir=${data}`,
      `--socket=${join(dir, 'mariadb.sock')}`,
      `--pid-file=${join(dir, 'mariadb.pid')}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--ssl-cert=${cert}`,
      `--ssl-key=${key}`,
      '--skip-log-bin',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const peer = started(child, { mysql: port });
  try {
    await waitForLine(child.stderr as NonNullable<typeof child.stderr>, /ready for connections/, 30_000);
  } catch (err) {
    await peer.stop();
    throw new Error(`mariadbd did not start: ${(err as Error).message}\n${peer.log()}`);
  }
  return peer;
}

/** InspIRCd 3 in the foreground with its starttls module (IRCv3 tls) on loopback. */
export async function startInspircd(dir: string, pki: TestPki, port: number): Promise<Peer> {
  const inspircd = findTool('inspircd');
  if (!inspircd) throw new Error('inspircd not found');
  const { cert, key } = openUp(dir, pki);
  const conf = join(dir, 'inspircd.conf');
  writeFileSync(
    conf,
    [
      '<server name="irc.test" description="test server" network="TestNet">',
      '<admin name="Admin" nick="admin" email="admin@irc.test">',
      `<bind address="127.0.0.1" port="${port}" type="clients">`,
      '<connect name="main" allow="*" timeout="60" pingfreq="120" hardsendq="1M" softsendq="8192" recvq="8192" localmax="100" globalmax="100" useident="no">',
      '<module name="ssl_gnutls">',
      `<sslprofile name="main" provider="gnutls" certfile="${cert}" keyfile="${key}" dhfile="" hash="sha256">`,
      '<module name="starttls">',
      '<starttls enabled="yes" provider="main">',
      `<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="${join(dir, 'ircd.log')}">`,
      '',
    ].join('\n'),
  );
  const child = spawn(inspircd, [`--config=${conf}`, '--nofork', '--runasroot', '--nopid'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const peer = started(child, { irc: port });
  try {
    await waitForLine(child.stdout as NonNullable<typeof child.stdout>, /is now running as/);
    await waitForPort(port);
  } catch (err) {
    await peer.stop();
    throw new Error(`inspircd did not start: ${(err as Error).message}\n${peer.log()}`);
  }
  return peer;
}

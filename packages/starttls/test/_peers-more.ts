import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findTool, type TestPki, waitForLine } from '@ucspi/testkit';
import { openUp, type Peer, started, waitForPort } from './_peers.js';

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

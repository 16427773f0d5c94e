import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { findTool, type TestPki, waitForLine } from '@ucspi/testkit';

/** A real server started by a test: its ports and how to stop it (the process is always reaped). */
export interface Peer {
  ports: Record<string, number>;
  stop(): Promise<void>;
  /** Everything it wrote on stderr so far (for failure messages). */
  log(): string;
}

export function started(child: ChildProcess, ports: Record<string, number>): Peer {
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
export function openUp(dir: string, pki: TestPki): { cert: string; key: string } {
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

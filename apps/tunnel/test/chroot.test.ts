// `chroot = DIRECTORY`: the tunnel chroots after binding and before setgid/setuid, as stunnel 5.68
// (stunnel.c's main_configure), into jails that are empty or hold only what is named: the pid
// file, the log file, the `exec` program and, for a reload, the configuration are inside.
// Chrooting needs root; the bad-input cases do not.
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { nativeSpawn } from '@ucspi/exec';
import {
  binPath,
  createTestPki,
  freePort,
  run,
  type TestPki,
  tempDir,
  toolAvailable,
  waitForLine,
  waitUntil,
  watchLog,
} from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  backend,
  opensslStartTls,
  reap,
  startDaemon,
  stopAll,
  TUNNEL,
  tlsTalk,
  writeConfig,
} from './_helpers.js';

const isRoot = process.getuid?.() === 0;
const hasStunnel = toolAvailable('stunnel4');
// The unprivileged identity dropped to: numbers, whatever the names are on this system.
const NOBODY = 65534;

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
let jails = 0;

beforeAll(() => {
  tmp = tempDir('ucspi-tunnel-chroot-');
  pki = createTestPki(join(tmp.path, 'pki'));
});
afterEach(stopAll);
afterAll(() => tmp.cleanup());

/** A new empty jail directory. */
function newJail(): string {
  const dir = join(tmp.path, `jail${++jails}`);
  mkdirSync(dir, { mode: 0o755 });
  return dir;
}

/** Copy host file `path` to the same path inside `jail`. */
function copyInto(jail: string, path: string, mode = 0o644): void {
  const to = join(jail, path);
  mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
  copyFileSync(path, to);
  chmodSync(to, mode);
}

/** The fields of /proc/PID/status that say who a process is. */
function identity(pid: number): { uid: string; gid: string; groups: string } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => status.match(new RegExp(`^${name}:\\s*(.*)$`, 'm'))?.[1]?.trim() ?? '';
  return { uid: field('Uid'), gid: field('Gid'), groups: field('Groups') };
}

const serverSection = (name: string, accept: number, target: string) =>
  `[${name}]\naccept = 127.0.0.1:${accept}\n${target}\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n`;

describe('chroot', () => {
  it.runIf(isRoot)('relays from inside an empty jail, chrooted before setgid and setuid', async () => {
    const jail = newJail();
    const b = await backend();
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'relay.conf',
      `foreground = yes\ndebug = info\nchroot = ${jail}\nsetuid = ${NOBODY}\nsetgid = ${NOBODY}\n` +
        serverSection('jailed', port, `connect = 127.0.0.1:${b.port}`),
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    const pid = t.proc.pid!;
    expect(readlinkSync(`/proc/${pid}/root`)).toBe(jail);
    // The chroot itself needs root: had setuid come first, it would have failed.
    expect(identity(pid)).toEqual({
      uid: `${NOBODY}\t${NOBODY}\t${NOBODY}\t${NOBODY}`,
      gid: `${NOBODY}\t${NOBODY}\t${NOBODY}\t${NOBODY}`,
      groups: `${NOBODY}`,
    });
    // stunnel's order and words: bound, then the chroot, then accepting.
    expect(t.log.text()).toMatch(
      new RegExp(
        `LOG6\\[ui\\]: Service \\[jailed\\] bound to 127\\.0\\.0\\.1:${port}\\n` +
          `.*LOG5\\[ui\\]: Switched to chroot directory: ${jail}\\n` +
          '.*LOG6\\[ui\\]: Accepting new connections',
      ),
    );
    // Two connections: the TLS handshake, the backend connection and the log all work in there.
    expect(await tlsTalk(port, 'first')).toBe('FIRST');
    expect(await tlsTalk(port, 'second')).toBe('SECOND');
    await t.log.waitForCount(/Connection closed: 6 byte\(s\) sent to TLS/, 1);
    expect(readdirSync(jail)).toEqual([]);
    expect(await t.stop()).toBe(0);
  });

  it.runIf(isRoot && toolAvailable('openssl'))(
    'protocol = smtp in an empty jail: the STARTTLS code imported on first use was loaded before',
    async () => {
      const jail = newJail();
      // A plain SMTP backend: greets, answers EHLO and QUIT.
      const smtp = createServer((sock) => {
        sock.on('error', () => undefined);
        sock.write('220 backend.test ESMTP\r\n');
        sock.on('data', (chunk: Buffer) => {
          for (const line of chunk.toString().split('\r\n').filter(Boolean))
            if (/^EHLO/i.test(line)) sock.write('250 backend.test\r\n');
            else sock.end('221 bye\r\n');
        });
      });
      await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
      try {
        const port = await freePort();
        const conf = writeConfig(
          tmp.path,
          'smtp.conf',
          `foreground = yes\ndebug = info\nchroot = ${jail}\n` +
            serverSection(
              'smtp',
              port,
              `connect = 127.0.0.1:${(smtp.address() as { port: number }).port}\nprotocol = smtp`,
            ),
        );
        const t = await startDaemon('ucspi-tunnel', conf);
        const r = await opensslStartTls(port, 'smtp', pki.caBundle, 'EHLO client.test\nQUIT\n', false);
        expect(r.stdout.toString(), `${r.stderr}${t.log.text()}`).toBe('250 backend.test\r\n221 bye\r\n');
        expect(readdirSync(jail)).toEqual([]);
      } finally {
        smtp.close();
      }
    },
  );

  it.runIf(isRoot && toolAvailable('openssl'))(
    'CApath and CRLpath are read inside the jail (at start from under the chroot directory)',
    async () => {
      const jail = newJail();
      expect(existsSync('/ca')).toBe(false);
      expect(existsSync('/crl')).toBe(false);
      mkdirSync(join(jail, 'ca'), { mode: 0o755 });
      for (const f of readdirSync(pki.caDir)) copyFileSync(join(pki.caDir, f), join(jail, 'ca', f));
      mkdirSync(join(jail, 'crl'), { mode: 0o755 });
      const crls = readFileSync(pki.crl, 'latin1').match(
        /-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----\n?/g,
      );
      for (const [i, block] of (crls ?? []).entries()) writeFileSync(join(jail, 'crl', `crl${i}.pem`), block);
      expect((await run('openssl', ['rehash', join(jail, 'crl')])).code).toBe(0);
      const b = await backend();
      const port = await freePort();
      const conf = writeConfig(
        tmp.path,
        'capath.conf',
        `foreground = yes\ndebug = info\nchroot = ${jail}\n` +
          serverSection(
            'ca',
            port,
            `connect = 127.0.0.1:${b.port}\nverifyChain = yes\nCApath = /ca\nCRLpath = /crl`,
          ),
      );
      const t = await startDaemon('ucspi-tunnel', conf);
      const as = (cert: string, key: string) =>
        tlsTalk(port, 'id', { cert: readFileSync(cert), key: readFileSync(key) }).catch(() => 'refused');
      expect(await as(pki.clientChain, pki.clientKey)).toBe('ID');
      expect(await as(pki.revokedCert, pki.revokedKey)).not.toBe('ID');
      await t.log.waitFor(/Rejected by CERT: .*REVOKED/);
      expect(b.connections()).toBe(1);
    },
  );

  it.runIf(isRoot)('rules = FILE.cdb is checked and read inside the jail', async () => {
    const jail = newJail();
    expect(existsSync('/rules.cdb')).toBe(false);
    const cdb = join(jail, 'rules.cdb');
    const r = await run(process.execPath, [binPath('packages/rules', 'tcprules'), cdb, `${cdb}.tmp`], {
      input: '127.0.0.2:deny\n:allow\n',
    });
    expect(r.code, r.stderr.toString()).toBe(0);
    const b = await backend();
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'rules.conf',
      `foreground = yes\ndebug = info\nchroot = ${jail}\n` +
        serverSection('r', port, `connect = 127.0.0.1:${b.port}\nrules = /rules.cdb`),
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    expect(await tlsTalk(port, 'one')).toBe('ONE');
    await tlsTalk(port, 'two', { localAddress: '127.0.0.2' } as ConnectionOptions).catch(() => '');
    await t.log.waitFor(/Service \[r\] REFUSED by rules from 127\.0\.0\.2:\d+/);
    expect(b.connections()).toBe(1);
  });

  it.runIf(isRoot && toolAvailable('ldd'))(
    'runs the exec program found inside the jail (a path the host does not have)',
    async () => {
      const jail = newJail();
      // /bin/cat with its shared libraries, as /inside-only/echo in the jail.
      const program = '/inside-only/echo';
      expect(existsSync(program)).toBe(false);
      mkdirSync(join(jail, 'inside-only'), { mode: 0o755 });
      copyFileSync('/bin/cat', join(jail, program));
      chmodSync(join(jail, program), 0o755);
      for (const lib of execFileSync('ldd', ['/bin/cat'], { encoding: 'utf8' }).matchAll(/(\/\S+)/g))
        copyInto(jail, lib[1]!, 0o755);
      const port = await freePort();
      const conf = writeConfig(
        tmp.path,
        'exec.conf',
        `foreground = yes\ndebug = info\nchroot = ${jail}\nsetuid = ${NOBODY}\nsetgid = ${NOBODY}\n` +
          serverSection('prog', port, `exec = ${program}\nexecArgs = echo`),
      );
      const t = await startDaemon('ucspi-tunnel', conf);
      expect(readlinkSync(`/proc/${t.proc.pid}/root`)).toBe(jail);
      expect(await tlsTalk(port, 'through cat')).toBe('through cat');
      await t.log.waitFor(/Child process \d+ finished with code 0/);
      await t.log.waitFor(/Connection closed: 11 byte\(s\) sent to TLS, 11 byte\(s\) sent to socket/);
    },
  );

  it.runIf(isRoot)(
    'HUP re-reads the configuration inside the jail: missing there, the old one stays; copied in, it applies',
    async () => {
      const jail = newJail();
      const one = await backend((s) => `one:${s}`);
      const two = await backend((s) => `two:${s}`);
      const port = await freePort();
      const text = (target: number) =>
        `foreground = yes\ndebug = info\nchroot = ${jail}\n` +
        serverSection('hup', port, `connect = 127.0.0.1:${target}`);
      const conf = writeConfig(tmp.path, 'hup.conf', text(one.port));
      const t = await startDaemon('ucspi-tunnel', conf);
      // The host file is there, but the jail holds no configuration: stunnel's lines.
      writeConfig(tmp.path, 'hup.conf', text(two.port));
      t.proc.kill('SIGHUP');
      await t.log.waitFor(
        /LOG3\[ui\]: Cannot open configuration file\n.*LOG3\[ui\]: Configuration failed\n.*LOG3\[ui\]: Failed to reload the configuration file/,
      );
      expect(await tlsTalk(port, 'a')).toBe('one:a');
      // The same paths inside the jail: the file and its certificate and key.
      for (const f of [conf, pki.serverChain, pki.serverKey]) copyInto(jail, f);
      t.proc.kill('SIGHUP');
      await t.log.waitForCount(/LOG5\[ui\]: Configuration successful/, 2);
      expect(await tlsTalk(port, 'b')).toBe('two:b');
      // chroot is not applied again.
      expect(readlinkSync(`/proc/${t.proc.pid}/root`)).toBe(jail);
      expect(t.log.text().match(/Switched to chroot directory/g)).toHaveLength(1);
    },
  );

  it.runIf(isRoot && hasStunnel)(
    'puts the pid file and the log file inside the jail, owned by the setuid user, as stunnel4',
    async () => {
      const seen: Record<string, string> = {};
      for (const cmd of ['stunnel4', 'ucspi-tunnel'] as const) {
        const jail = newJail();
        mkdirSync(join(jail, 'run'), { mode: 0o755 });
        chownSync(join(jail, 'run'), NOBODY, NOBODY);
        const b = await backend();
        const port = await freePort();
        const conf = writeConfig(
          tmp.path,
          `files-${cmd}.conf`,
          `foreground = yes\ndebug = debug\nchroot = ${jail}\nsetuid = ${NOBODY}\nsetgid = ${NOBODY}\n` +
            'pid = /run/tunnel.pid\noutput = /run/tunnel.log\n' +
            serverSection('files', port, `connect = 127.0.0.1:${b.port}`),
        );
        const t = await startDaemon(cmd, conf, null);
        const log = join(jail, 'run', 'tunnel.log');
        const pidFile = join(jail, 'run', 'tunnel.pid');
        await waitUntil(
          () => existsSync(log) && /Accepting new connections/.test(readFileSync(log, 'utf8')),
          15_000,
        );
        expect(readFileSync(pidFile, 'utf8')).toBe(`${t.proc.pid}\n`);
        for (const f of [log, pidFile]) expect([statSync(f).uid, statSync(f).gid]).toEqual([NOBODY, NOBODY]);
        expect(existsSync('/run/tunnel.pid')).toBe(false);
        expect(await tlsTalk(port, 'x')).toBe('X');
        expect(await t.stop()).toBe(0);
        expect(existsSync(pidFile)).toBe(false);
        // The daemon's own lines from binding to accepting (stunnel4 says more in between).
        const lines = readFileSync(log, 'utf8')
          .split('\n')
          .map((l) => l.replace(/^\S+ \S+ /, ''))
          .filter((l) => /bound to|Switched to chroot|pid file|Accepting new/.test(l))
          .map((l) =>
            l
              .replace(/ \(FD=\d+\)/, '')
              .replace(jail, 'JAIL')
              .replace(`:${port}`, ':PORT'),
          );
        seen[cmd] = lines.join('\n');
      }
      expect(seen['ucspi-tunnel']).toBe(seen.stunnel4);
      expect(seen.stunnel4).toMatch(/bound to[\s\S]*Switched to chroot directory[\s\S]*Created pid file/);
    },
  );

  it.runIf(isRoot && toolAvailable('tcpserver'))(
    'inetd mode under tcpserver: chroot, then setgid and setuid, before the connection is served',
    async () => {
      const jail = newJail();
      const b = await backend();
      // logId = process: the log names the pid of the tunnel serving the connection.
      const conf = writeConfig(
        tmp.path,
        'inetd.conf',
        `foreground = yes\nchroot = ${jail}\nsetuid = ${NOBODY}\nsetgid = ${NOBODY}\nlogId = process\n` +
          `cert = ${pki.serverChain}\nkey = ${pki.serverKey}\nconnect = 127.0.0.1:${b.port}\n`,
      );
      // No ident, DNS or local name lookups by tcpserver: nothing but the tunnel to wait for.
      const proc = spawn('tcpserver', ['-1', '-RHl0', '127.0.0.1', '0', process.execPath, TUNNEL, conf], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const log = watchLog(proc.stderr!);
      try {
        const [, port] = await waitForLine(proc.stdout!, /^(\d+)$/);
        const c = tlsConnect({
          port: Number(port),
          host: '127.0.0.1',
          rejectUnauthorized: false,
          allowHalfOpen: true,
        } as ConnectionOptions);
        c.on('error', () => undefined);
        let reply = '';
        c.on('data', (d: Buffer) => {
          reply += d.toString();
        });
        const ended = new Promise<void>((r) => c.once('end', () => r()));
        const [, pid] = await log.waitFor(/LOG5\[(\d+)\]: s_connect: connected/);
        // The connection is open: the process serving it is in the jail, as the user.
        expect(readlinkSync(`/proc/${pid}/root`)).toBe(jail);
        expect(identity(Number(pid)).uid).toBe(`${NOBODY}\t${NOBODY}\t${NOBODY}\t${NOBODY}`);
        expect(identity(Number(pid)).groups).toBe(`${NOBODY}`);
        c.end('inetd');
        await ended;
        expect(reply).toBe('INETD');
        expect(log.text()).toMatch(new RegExp(`LOG5\\[ui\\]: Switched to chroot directory: ${jail}\\n`));
      } finally {
        await reap(proc);
      }
    },
  );

  it.runIf(nativeSpawn)(
    'bad input: a directory that does not exist fails naming the line, nothing started',
    async () => {
      const port = await freePort();
      const missing = join(tmp.path, 'no-such-jail');
      const pidFile = join(tmp.path, 'never.pid');
      const conf = writeConfig(
        tmp.path,
        'missing.conf',
        `foreground = yes\npid = ${pidFile}\nchroot = ${missing}\n` +
          serverSection('m', port, 'connect = 127.0.0.1:9'),
      );
      for (const args of [[conf], ['-t', conf]]) {
        const r = await run(process.execPath, [TUNNEL, ...args]);
        expect(r.code).toBe(1);
        expect(
          r.stderr
            .toString()
            .split('\n')
            .filter((l) => l.startsWith('[!]')),
        ).toEqual([
          '[!] chroot: No such file or directory (2)',
          `[!] ${conf}:3: "chroot = ${missing}": Failed to change root directory`,
          '[!] Configuration failed',
        ]);
        expect(r.stderr.toString()).not.toMatch(/bound to/);
      }
      expect(existsSync(pidFile)).toBe(false);
      // A file is not a directory.
      const file = writeConfig(tmp.path, 'notadir', 'x');
      const conf2 = writeConfig(
        tmp.path,
        'file.conf',
        `chroot = ${file}\n${serverSection('f', port, 'connect = 9')}`,
      );
      const r = await run(process.execPath, [TUNNEL, '-t', conf2]);
      expect(r.code).toBe(1);
      expect(r.stderr.toString()).toContain('[!] chroot: Not a directory (20)\n');
    },
  );

  it('bad input: without the native addon, chroot fails naming the line', async () => {
    const jail = newJail();
    const conf = writeConfig(
      tmp.path,
      'nonative.conf',
      `foreground = yes\nchroot = ${jail}\n${serverSection('n', await freePort(), 'connect = 9')}`,
    );
    const r = await run(process.execPath, [TUNNEL, conf], {
      env: { ...process.env, UCSPI_EXEC_NATIVE: '0' },
    });
    expect(r.code).toBe(1);
    expect(r.stderr.toString()).toContain(
      `[!] ${conf}:2: "chroot = ${jail}": chroot needs the native addon of @ucspi/exec (Linux x64/arm64): Node.js has no chroot\n`,
    );
    expect(r.stderr.toString()).not.toMatch(/bound to/);
  });
});

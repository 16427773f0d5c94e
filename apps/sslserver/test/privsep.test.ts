// SSL_CHROOT, SSL_UID, SSL_GID: the TLS side runs in a handler process that chroots and drops to
// those ids, while the program keeps the identity of -u/-g. Needs root (chroot, setuid), as the
// original does; CI runs as root and fails rather than skip.
import { mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { dirname, join } from 'node:path';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createTestPki, run, tempDir } from '@ucspi/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { expectLetGoWhenSilent, type Running, startServer, stopAll, talkTls } from './_helpers.js';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const ourBin = join(pkgDir, 'dist', 'bin', 'sslserver.js');
const tmp = tempDir();
afterAll(() => tmp.cleanup());
afterEach(stopAll);

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI) throw new Error('the SSL_CHROOT/SSL_UID tests need root');

const NOBODY = '65534';

function startJailed(args: string[], extra: Record<string, string> = {}): Promise<Running> {
  const jail = join(tmp.path, 'jail');
  mkdirSync(jail, { recursive: true });
  // The development certificate unless `extra` names one.
  const { CERTFILE: _c, KEYFILE: _k, ...inherited } = process.env;
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    XDG_CACHE_HOME: join(tmp.path, 'cache'),
    SSL_CHROOT: jail,
    SSL_UID: NOBODY,
    SSL_GID: NOBODY,
    ...extra,
  };
  // -l: no DNS lookup of the local address.
  return startServer(process.execPath, [ourBin, '-l', 'localhost', ...args], env);
}

/** The handler: the server's child running tls-handler.js. */
function handlerOf(serverPid: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== serverPid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('tls-handler')) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

const ids = (pid: number, field: 'Uid' | 'Gid') =>
  readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`))
    ?.split(/\s+/)
    .slice(1, 5);

describe.runIf(isRoot)('sslserver with SSL_CHROOT, SSL_UID and SSL_GID', () => {
  it('runs TLS in a chrooted handler as SSL_UID/SSL_GID; the program runs as -u/-g', async () => {
    const s = await startJailed([
      '-1',
      '-V',
      '-H',
      '-R',
      '-u',
      '1',
      '-g',
      '1',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      'echo "uid=$(id -u) gid=$(id -g) proto=$PROTO"; exec cat',
    ]);
    const handler = handlerOf(s.proc.pid!);
    expect(handler).toBeDefined();
    expect(readlinkSync(`/proc/${handler}/root`)).toBe(join(tmp.path, 'jail'));
    expect(ids(handler!, 'Uid')).toEqual([NOBODY, NOBODY, NOBODY, NOBODY]);
    expect(ids(handler!, 'Gid')).toEqual([NOBODY, NOBODY, NOBODY, NOBODY]);
    // The server itself dropped to -u/-g after binding.
    expect(ids(s.proc.pid!, 'Uid')?.[0]).toBe('1');

    // 4 MiB through cat both ways, with the client's half-close, then the program's EOF.
    const big = Buffer.alloc(4 << 20, 'x');
    const out = await talkTls(s.port, big);
    const head = 'uid=1 gid=1 proto=SSL\n';
    expect(out.subarray(0, head.length).toString()).toBe(head);
    expect(out.length).toBe(head.length + big.length);
    await s.waitLog(/^sslserver: ended by \d+ status 0$/m);
    expect(s.stderr()).toMatch(/^sslserver: ok \d+ localhost:127\.0\.0\.1:\d+ :127\.0\.0\.1::\d+$/m);
    expect(s.stderr()).toMatch(/^sslserver: tls \d+ accept TLSv1\.3:TLS_/m);
    expect(s.stderr()).toMatch(/^sslserver: ended by \d+ status 0$/m);
    expect(await s.stop()).toBe(0);
  });

  it('-s and -B through the handler; a garbage client gets the error line and others are served', async () => {
    const s = await startJailed([
      '-1',
      '-v',
      '-s',
      '-H',
      '-R',
      '-B',
      'banner:',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      'echo "$SSL_PROTOCOL"',
    ]);
    const garbage = await new Promise<string>((resolve) => {
      const c = netConnect(s.port, '127.0.0.1');
      let got = '';
      c.on('data', (b: Buffer) => {
        got += b.toString('latin1');
      });
      c.on('error', () => resolve(got));
      c.on('close', () => resolve(got));
      c.end('GET / HTTP/1.0\r\n\r\n');
    });
    expect(garbage).not.toContain('TLSv1');
    expect((await talkTls(s.port)).toString()).toBe('banner:TLSv1.3\n');
    // The man page's line, with OpenSSL's reason; the server's pid stands in before any program.
    await s.waitLog(
      new RegExp(
        `^sslserver: error: \\(111\\) unable to accept TLS for pid: ${s.proc.pid} http request$`,
        'm',
      ),
    );
    expect(s.stderr()).toMatch(/^sslserver: status 0\/40\/0$/m);
    expect(await s.stop()).toBe(0);
  });

  it('-n: STARTTLS through the handler, with the TLS environment list after Y', async () => {
    const SMTP = `printf '220 test ESMTP\\r\\n'
while IFS= read -r line; do
  case "$line" in
    EHLO*|HELO*) printf '250-test\\r\\n250 STARTTLS\\r\\n';;
    STARTTLS*) printf '220 go ahead\\r\\n'; printf Y >&$SSLCTLFD; break;;
  esac
done
dd bs=1 count=20 <&$SSLCTLFD 2>/dev/null >&$SSLWRITEFD; echo >&$SSLWRITEFD
IFS= read -r l <&$SSLREADFD; printf 'got %s\\n' "$l" >&$SSLWRITEFD`;
    const s = await startJailed(['-1', '-v', '-n', '-H', '-R', '127.0.0.1', '0', 'sh', '-c', SMTP]);
    const r = await run(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${s.port}`, '-starttls', 'smtp', '-quiet'],
      {
        input: 'hello-tls\n',
        timeoutMs: 10_000,
      },
    );
    const out = r.stdout.toString();
    expect(out).toContain('SSL_PROTOCOL=TLSv1.3\n');
    expect(out).toContain('got hello-tls\n');
    await s.waitLog(/^sslserver: tls \d+ accept$/m);
    expect(await s.stop()).toBe(0);
  });

  it('-m through the handler: a client without a certificate gets nothing, one with it is served', async () => {
    const pki = createTestPki(join(tmp.path, 'pki'));
    const s = await startJailed(['-1', '-v', '-m', '-H', '-R', '127.0.0.1', '0', 'echo', 'secret'], {
      CERTFILE: pki.serverCert,
      KEYFILE: pki.serverKey,
      CAFILE: pki.caBundle,
    });
    expect((await talkTls(s.port).catch(() => Buffer.alloc(0))).toString()).toBe('');
    const withCert = await new Promise<string>((resolve, reject) => {
      const c = tlsConnect({
        host: '127.0.0.1',
        port: s.port,
        ca: readFileSync(pki.caBundle),
        cert: readFileSync(pki.clientCert),
        key: readFileSync(pki.clientKey),
        servername: 'localhost',
      });
      let out = '';
      c.on('data', (b: Buffer) => {
        out += b.toString();
      });
      c.on('error', reject);
      c.on('end', () => resolve(out));
    });
    expect(withCert).toBe('secret\n');
    await s.waitLog(/^sslserver: error: no client certificate$/m);
    await s.waitLog(/^sslserver: info: valid client cert received for pid: \d+$/m);
    expect(await s.stop()).toBe(0);
  });

  it('SIGTERM to the whole process group (systemd): the connection in progress finishes, then exit 0', async () => {
    const s = await startJailed([
      '-1',
      '-v',
      '-H',
      '-R',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      'read a; echo "got $a"; read x; echo "got $x"',
    ]);
    const handler = handlerOf(s.proc.pid!);
    expect(handler).toBeDefined();
    // A connection in progress: handshake done, the program waiting for its line.
    const c = tlsConnect({
      host: '127.0.0.1',
      port: s.port,
      rejectUnauthorized: false,
      allowHalfOpen: true,
    } as ConnectionOptions);
    let out = '';
    c.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const ended = new Promise<void>((resolve) => c.on('end', () => resolve()));
    await new Promise<void>((resolve) => c.once('secureConnect', () => resolve()));
    // The program runs and the handler pumps for it: its answer to a first line has come back
    // (the log's `tls` line comes before the program's channels reach the handler).
    c.write('early\n');
    await new Promise<void>((resolve) => c.once('data', () => resolve()));
    process.kill(handler!, 'SIGTERM');
    s.proc.kill('SIGTERM');
    // The server drains (DRAINTIMEOUT): the handler still pumps for the connection.
    await s.waitLog(/^sslserver: draining 1 connections$/m);
    c.write('late\n');
    await ended;
    c.end();
    expect(out).toBe('got early\ngot late\n');
    expect(await s.stop()).toBe(0);
  });

  it('the close deadline through the handler: a silent client is let go after CLOSETIMEOUT', async () => {
    const s = await startJailed(['-1', '-v', '-H', '-R', '127.0.0.1', '0', 'echo', 'bye'], {
      CLOSETIMEOUT: '1',
    });
    await expectLetGoWhenSilent(s, 'bye\n');
  });

  it('exits 111 when its handler dies, for the supervisor to restart it', async () => {
    const s = await startJailed(['-1', '-Q', '-H', '-R', '127.0.0.1', '0', 'cat']);
    const handler = handlerOf(s.proc.pid!);
    expect(handler).toBeDefined();
    process.kill(handler!, 'SIGKILL');
    const code = await new Promise<number | null>((resolve) => {
      if (s.proc.exitCode !== null) resolve(s.proc.exitCode);
      else s.proc.once('exit', (c) => resolve(c));
    });
    expect(code).toBe(111);
    expect(s.stderr()).toMatch(
      new RegExp(`^sslserver: fatal: TLS handler ${handler} died \\(SIGKILL\\)$`, 'm'),
    );
  });
});

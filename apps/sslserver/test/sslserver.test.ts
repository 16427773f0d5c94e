import { connect as netConnect } from 'node:net';
import { dirname, join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { findTool, run, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Running, startServer, stopAll, talkTls } from './_helpers.js';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const ourBin = join(pkgDir, 'dist', 'bin', 'sslserver.js');

const cacheDir = tempDir();
afterAll(() => cacheDir.cleanup());
afterEach(stopAll);

/** Start our sslserver (-1 in args) with the development certificate, made in this test's own cache. */
function startOurs(args: string[]): Promise<Running> {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheDir.path };
  delete env.CERTFILE;
  delete env.KEYFILE;
  return startServer(process.execPath, [ourBin, ...args], env);
}

describe('our sslserver', () => {
  it('fails with the usage line and exit 100 without arguments', async () => {
    const r = await run(process.execPath, [ourBin]);
    expect(r.code).toBe(100);
    expect(r.stderr.toString()).toMatch(/^sslserver: usage: sslserver /);
  });
});

describe('our sslserver through TLS', () => {
  it('runs the program behind TLS with PROTO=SSL and the SSL* variables, logs -V lines', async () => {
    const s = await startOurs([
      '-1',
      '-V',
      '-H',
      '-R',
      '-l',
      'localhost',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      'env | grep -E "^(PROTO|SSL|TCP)" | sort',
    ]);
    const out = (await talkTls(s.port)).toString();
    expect(out).toMatch(/^PROTO=SSL$/m);
    expect(out).toMatch(/^SSLREMOTEIP=127\.0\.0\.1$/m);
    expect(out).toMatch(new RegExp(`^SSLLOCALPORT=${s.port}$`, 'm'));
    expect(out).not.toMatch(/^TCPREMOTEIP=/m);
    await s.waitLog(/^sslserver: ended by \d+ status 0$/m);
    expect(s.stderr()).toMatch(/^sslserver: status 0\/40\/0$/m);
    expect(s.stderr()).toMatch(/^sslserver: ok \d+ localhost:127\.0\.0\.1:\d+ :127\.0\.0\.1::\d+$/m);
    expect(s.stderr()).toMatch(/^sslserver: tls \d+ accept TLSv1\.3:TLS_/m);
    expect(s.stderr()).toMatch(/^sslserver: ended by \d+ status 0$/m);
    expect(await s.stop()).toBe(0);
  });

  it('with -d (Nagle, the default) the first response does not wait for a delayed ACK', async () => {
    const s = await startOurs(['-1', '-H', '-R', '-l', '0', '127.0.0.1', '0', 'cat']);
    /** One TLS 1.3 connection: ms from the request to its echo (after the handshake). */
    const roundTrip = () =>
      new Promise<number>((resolve, reject) => {
        const c = tlsConnect({ port: s.port, host: '127.0.0.1', rejectUnauthorized: false });
        c.on('error', reject);
        c.once('secureConnect', () => {
          const t0 = performance.now();
          c.once('data', () => {
            resolve(performance.now() - t0);
            c.destroy();
          });
          c.write('ping\n');
        });
      });
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push(await roundTrip());
    // The session tickets TLS 1.3 sends after the handshake and the echo used to leave as two
    // segments, the second held by Nagle until the client's delayed ACK (40 ms on Linux).
    expect(Math.min(...times)).toBeLessThan(30);
  });

  it('-I binds an IPv6 link-local address on that interface (in a network namespace of its own)', async () => {
    // A private network namespace whose loopback gets fe80::1: nothing outside the test is touched.
    const root = process.getuid?.() === 0;
    if (!root || !findTool('unshare') || !findTool('ip')) {
      if (process.env.CI === 'true') throw new Error('the -I test needs root, unshare and ip under CI');
      console.warn('skipped: -I needs root, unshare and ip');
      return;
    }
    const client = `const c=require('tls').connect({host:'fe80::1%lo',port:+process.argv[1],rejectUnauthorized:false});
      c.on('data',(d)=>process.stdout.write(d));c.on('error',(e)=>{console.log('ERR '+e.message);process.exit(1)});`;
    const script = `set -e
      ip link set lo up
      ip -6 addr add fe80::1/64 dev lo nodad
      "$NODE" "$BIN" -1 -e -H -R -I lo fe80::1 0 sh -c 'echo "$PROTO $TCP6INTERFACE $SSLLOCALIP"' > "$DIR/port" &
      for i in 1 2 3 4 5 6 7 8 9 10; do [ -s "$DIR/port" ] && break; sleep 0.3; done
      "$NODE" -e "$CLIENT" "$(cat "$DIR/port")"
      kill $!`;
    const r = await run('unshare', ['-n', 'sh', '-c', script], {
      env: {
        ...process.env,
        NODE: process.execPath,
        BIN: ourBin,
        DIR: cacheDir.path,
        CLIENT: client,
        XDG_CACHE_HOME: cacheDir.path,
        CERTFILE: '',
      },
    });
    expect(r.stdout.toString()).toBe('TCP6 lo fe80::1\n');
    // A name that is no interface: no server, djb's bind failure and exit 111.
    const bad = await run(
      'unshare',
      ['-n', process.execPath, ourBin, '-H', '-R', '-I', 'nosuch0', 'fe80::1', '0', 'true'],
      {
        env: { ...process.env, XDG_CACHE_HOME: cacheDir.path, CERTFILE: '' },
      },
    );
    expect(bad.code).toBe(111);
    expect(bad.stderr.toString()).toMatch(/^sslserver: fatal: unable to bind: /m);
  });

  it('-e adds the TCP* set and PROTO=TCP; -s adds SSL_PROTOCOL', async () => {
    const s = await startOurs([
      '-1',
      '-q',
      '-e',
      '-s',
      '-H',
      '-R',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      'env | grep -E "^(PROTO|TCPREMOTEIP|SSL_PROTOCOL)=" | sort',
    ]);
    const out = (await talkTls(s.port)).toString();
    expect(out).toMatch(/^PROTO=TCP$/m);
    expect(out).toMatch(/^TCPREMOTEIP=127\.0\.0\.1$/m);
    expect(out).toMatch(/^SSL_PROTOCOL=TLSv1\.[23]$/m);
  });

  it('pumps 64 MiB both ways through cat without hanging; -B banner comes first', async () => {
    const s = await startOurs(['-1', '-q', '-H', '-R', '-B', 'BANNER', '127.0.0.1', '0', 'cat']);
    const big = Buffer.alloc(64 * 1024 * 1024, 'z');
    const out = await talkTls(s.port, big);
    expect(out.subarray(0, 6).toString()).toBe('BANNER');
    expect(out.length).toBe(big.length + 6);
  }, 60_000);

  it('half-close: the client still gets output written after its EOF', async () => {
    const s = await startOurs([
      '-1',
      '-q',
      '-H',
      '-R',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      'cat >/dev/null; sleep 0.3; echo after',
    ]);
    expect((await talkTls(s.port, 'data')).toString()).toBe('after\n');
  });

  it('survives garbage instead of a ClientHello, a reset mid-handshake and a silent client (-T)', async () => {
    const s = await startOurs(['-1', '-v', '-H', '-R', '-T', '1', '127.0.0.1', '0', 'echo', 'ok']);
    await new Promise<void>((resolve) => {
      const c = netConnect(s.port, '127.0.0.1', () => c.write('GET / HTTP/1.0\r\n\r\n'));
      c.on('error', () => undefined);
      c.on('close', () => resolve());
    });
    await new Promise<void>((resolve) => {
      const c = netConnect(s.port, '127.0.0.1', () => {
        c.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
        c.resetAndDestroy();
        resolve();
      });
    });
    const t0 = Date.now();
    await new Promise<void>((resolve) => {
      const c = netConnect(s.port, '127.0.0.1');
      c.on('error', () => undefined);
      c.on('close', () => resolve());
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(Date.now() - t0).toBeLessThan(5000);
    // The man page's error lines, with OpenSSL's reasons (the server's pid before any program).
    const pid = s.proc.pid;
    await s.waitLog(
      new RegExp(`^sslserver: error: \\(111\\) unable to accept TLS for pid: ${pid} http request$`, 'm'),
    );
    await s.waitLog(new RegExp(`^sslserver: error: \\(111\\) unable to accept TLS for pid: ${pid}$`, 'm'));
    // The server still works and every slot was freed.
    expect((await talkTls(s.port)).toString()).toBe('ok\n');
    await s.waitLog(/^sslserver: ended by \d+ status 0\nsslserver: status 0\/40\/0\n$/m);
  }, 20_000);

  it('a bad record after the handshake: the man page\'s "unable to speak TLS" line, the program ended', async () => {
    const s = await startOurs(['-1', '-v', '-H', '-R', '127.0.0.1', '0', 'sh', '-c', 'echo ready; exec cat']);
    await new Promise<void>((resolve) => {
      const raw = netConnect(s.port, '127.0.0.1');
      const t = tlsConnect({ socket: raw, rejectUnauthorized: false });
      t.on('error', () => undefined);
      raw.on('error', () => undefined);
      // Once the program speaks (the handshake is over on both sides): an application-data record
      // whose authentication tag cannot be right.
      t.once('data', () =>
        raw.write(Buffer.from('170303001500112233445566778899aabbccddeeff0011223344', 'hex')),
      );
      raw.on('close', () => resolve());
    });
    await s.waitLog(/^sslserver: error: \(111\) unable to speak TLS for pid: \d+ \S.*$/m);
    await s.waitLog(/sslserver: status 0\/40\/0\n$/);
  });

  it('a client that closes during the handshake frees its slot at once, not after -T', async () => {
    // -T 20: waiting for the timeout would take far longer than this test allows.
    const s = await startOurs(['-1', '-v', '-H', '-R', '-T', '20', '127.0.0.1', '0', 'cat']);
    // Each client closes as soon as its side of the TLS 1.3 handshake is done: the server then
    // sees EOF before the client's Finished (a scanner does this).
    await Promise.all(
      Array.from(
        { length: 10 },
        () =>
          new Promise<void>((resolve) => {
            const c = tlsConnect({ port: s.port, host: '127.0.0.1', rejectUnauthorized: false }, () =>
              c.destroy(),
            );
            c.on('error', () => undefined);
            c.on('close', () => resolve());
          }),
      ),
    );
    // Every slot back well before -T (20 s) could have freed it.
    await s.waitLogCount(/^sslserver: error: \(111\) unable to accept TLS/m, 10, 5000);
    await s.waitLog(/sslserver: status 0\/40\/0\n$/, 5000);
    expect((await talkTls(s.port, 'still here\n')).toString()).toBe('still here\n');
  });

  it.runIf(toolAvailable('openssl'))('talks to openssl s_client', async () => {
    const s = await startOurs([
      '-1',
      '-q',
      '-H',
      '-R',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      'read line; echo "got $line"',
    ]);
    const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${s.port}`, '-quiet'], {
      input: 'hello\n',
      timeoutMs: 10_000,
    });
    expect(r.stdout.toString()).toBe('got hello\n');
  });

  it.runIf(toolAvailable('gnutls-cli'))('talks to gnutls-cli', async () => {
    const s = await startOurs(['-1', '-q', '-H', '-R', '127.0.0.1', '0', 'echo', 'hi gnutls']);
    const r = await run(
      'gnutls-cli',
      ['--insecure', '--logfile=/dev/null', '-p', String(s.port), '127.0.0.1'],
      { input: '', timeoutMs: 10_000 },
    );
    expect(r.stdout.toString()).toContain('hi gnutls');
  });
});

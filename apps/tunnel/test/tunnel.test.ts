// ucspi-tunnel against real peers on loopback: openssl s_client, Debian's stunnel4 in the other
// mode, plain backends; server mode, client mode, exec, failover, bad input, pid file, signals.

import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createTestPki,
  freePort,
  run,
  type TestPki,
  tempDir,
  toolAvailable,
  waitForLine,
  watchLog,
} from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  backend,
  opensslStartTls,
  plainAsk,
  plainTalk,
  reap,
  startDaemon,
  stopAll,
  TUNNEL,
  tlsTalk,
  writeConfig,
} from './_helpers.js';

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
const hasStunnel = toolAvailable('stunnel4');
const hasOpenssl = toolAvailable('openssl');

beforeAll(() => {
  tmp = tempDir('ucspi-tunnel-');
  pki = createTestPki(join(tmp.path, 'pki'));
});
afterEach(stopAll);
afterAll(() => tmp.cleanup());

const serverSection = (name: string, accept: number, connect: string, extra = '') =>
  `[${name}]\naccept = 127.0.0.1:${accept}\nconnect = ${connect}\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n${extra}`;

describe('server mode (TLS in, plain out)', () => {
  it('relays a TLS client to a plain backend and logs in stunnel words', async () => {
    const b = await backend();
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'server.conf',
      `foreground = yes\ndebug = info\n${serverSection('web', port, `127.0.0.1:${b.port}`)}`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    expect(await tlsTalk(port, 'hello tunnel')).toBe('HELLO TUNNEL');
    await t.log.waitFor(/Connection closed: 12 byte\(s\) sent to TLS, 12 byte\(s\) sent to socket/);
    const text = t.log.text();
    expect(text).toMatch(
      /^\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d LOG5\[0\]: Service \[web\] accepted connection from 127\.0\.0\.1:\d+$/m,
    );
    expect(text).toMatch(/LOG5\[0\]: s_connect: connected 127\.0\.0\.1:\d+/);
    expect(text).toMatch(/LOG6\[0\]: TLSv1\.3 ciphersuite: TLS_/);
  });

  it.runIf(hasOpenssl)('serves openssl s_client', async () => {
    // s_client -quiet ignores its stdin's end: the backend answers and closes.
    const b = await backend((s) => s.toUpperCase(), true);
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'ossl.conf',
      `foreground = yes\ndebug = info\n${serverSection('o', port, `127.0.0.1:${b.port}`)}`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    const r = await run(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-quiet',
        '-CAfile',
        pki.caBundle,
        '-verify_return_error',
      ],
      {
        input: 'from openssl\n',
      },
    );
    expect(r.stdout.toString(), `${r.stderr}${t.log.text()}`).toBe('FROM OPENSSL\n');
  });

  it('logs a handshake of garbage, closes that connection, and serves the next', async () => {
    const b = await backend();
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'garbage.conf',
      `foreground = yes\ndebug = info\n${serverSection('g', port, `127.0.0.1:${b.port}`)}`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    await plainTalk(port, 'GET / HTTP/1.0\r\n\r\n');
    await t.log.waitFor(
      /LOG3\[0\]: SSL_accept: .+\n.*LOG5\[0\]: Connection reset: 0 byte\(s\) sent to TLS, 0 byte\(s\) sent to socket/,
    );
    expect(b.connections()).toBe(0);
    expect(await tlsTalk(port, 'next')).toBe('NEXT');
  });

  it('a backend that refuses: logged, the client closed, failover = prio reaches the next target', async () => {
    const b = await backend();
    const dead = await freePort();
    const port = await freePort();
    const port2 = await freePort();
    const conf = writeConfig(
      tmp.path,
      'refused.conf',
      `foreground = yes\ndebug = info\n${serverSection('dead', port, `127.0.0.1:${dead}`)}${serverSection('fo', port2, `127.0.0.1:${dead}\nconnect = 127.0.0.1:${b.port}`)}`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    expect(await tlsTalk(port, 'x').catch(() => '')).toBe('');
    await t.log.waitFor(
      /s_connect: connect 127\.0\.0\.1:\d+: Connection refused \(111\)\n.*No more addresses to connect\n.*Connection reset: 0 byte/,
    );
    expect(await tlsTalk(port2, 'second')).toBe('SECOND');
  });

  it('failover = rr alternates between targets', async () => {
    const b1 = await backend(() => 'one');
    const b2 = await backend(() => 'two');
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'rr.conf',
      `foreground = yes\ndebug = info\n${serverSection('rr', port, `127.0.0.1:${b1.port}\nconnect = 127.0.0.1:${b2.port}\nfailover = rr`)}`,
    );
    await startDaemon('ucspi-tunnel', conf);
    const answers = [await tlsTalk(port, 'a'), await tlsTalk(port, 'b'), await tlsTalk(port, 'c')];
    expect(answers).toEqual(['one', 'two', 'one']);
  });

  it('verify = 2: a client without a certificate is refused, one with a certificate of the CA passes', async () => {
    const b = await backend();
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'verify.conf',
      `foreground = yes\ndebug = info\n${serverSection('v', port, `127.0.0.1:${b.port}`, `CAfile = ${pki.caBundle}\nverify = 2\n`)}`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    const refused = await tlsTalk(port, 'no cert').catch(() => 'error');
    expect(['', 'error']).toContain(refused);
    await t.log.waitFor(/Rejected by CERT: No peer certificate received/);
    const ok = await tlsTalk(port, 'with cert', {
      cert: readFileSync(pki.clientChain),
      key: readFileSync(pki.clientKey),
    });
    expect(ok).toBe('WITH CERT');
    expect(b.connections()).toBe(1);
  });

  it('exec: the program gets stunnel variables and the TCP/SSL sets, its output after EOF arrives', async () => {
    const script = join(tmp.path, 'prog.sh');
    writeFileSync(
      script,
      '#!/bin/sh\nread line\necho "got $line from $REMOTE_HOST:$REMOTE_PORT $PROTO $SSLREMOTEIP $SSL_CLIENT_DN"\n',
    );
    chmodSync(script, 0o755);
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'exec.conf',
      `foreground = yes\ndebug = info\n[e]\naccept = 127.0.0.1:${port}\nexec = ${script}\nexecArgs = prog\ncert = ${pki.serverCert}\nkey = ${pki.serverKey}\nCAfile = ${pki.caBundle}\nverify = 1\n`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    const out = await tlsTalk(port, 'hi\nunread\n', {
      cert: readFileSync(pki.clientChain),
      key: readFileSync(pki.clientKey),
    });
    expect(out).toMatch(/^got hi from 127\.0\.0\.1:\d+ SSL 127\.0\.0\.1 .*CN ?= ?client\.test/);
    await t.log.waitFor(/Connection closed: \d+ byte\(s\) sent to TLS, 10 byte\(s\) sent to socket/);
  });
});

describe('data and deadlines', () => {
  it('moves 16 MiB each way intact through server mode, the answer after the client end', async () => {
    const { createServer } = await import('node:net');
    const { connect } = await import('node:tls');
    const up = Buffer.alloc(16 << 20, 'u');
    const down = Buffer.alloc(16 << 20, 'd');
    let got = 0;
    const sink = createServer({ allowHalfOpen: true }, (s) => {
      s.on('data', (b: Buffer) => {
        got += b.length;
      });
      s.on('end', () => s.end(down));
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'bulk.conf',
      `foreground = yes\ndebug = info\n${serverSection('bulk', port, `127.0.0.1:${(sink.address() as { port: number }).port}`)}`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    try {
      const received = await new Promise<number>((resolve, reject) => {
        const c = connect({
          port,
          host: '127.0.0.1',
          rejectUnauthorized: false,
          allowHalfOpen: true,
        } as never);
        let n = 0;
        let bad = false;
        c.on('data', (b: Buffer) => {
          if (b.some((x) => x !== 0x64)) bad = true;
          n += b.length;
        });
        c.on('error', reject);
        c.on('end', () => {
          c.end();
          resolve(bad ? -1 : n);
        });
        c.once('secureConnect', () => c.end(up));
      });
      expect(received).toBe(down.length);
      expect(got).toBe(up.length);
      await t.log.waitFor(
        /Connection closed: 16777216 byte\(s\) sent to TLS, 16777216 byte\(s\) sent to socket/,
      );
    } finally {
      sink.close();
    }
  });

  it('TIMEOUTidle closes a silent connection', async () => {
    const b = await backend();
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'idle.conf',
      `foreground = yes\ndebug = info\n${serverSection('idle', port, `127.0.0.1:${b.port}`, 'TIMEOUTidle = 1\n')}`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    const { connect } = await import('node:tls');
    const c = connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    c.on('error', () => undefined);
    c.resume();
    const t0 = performance.now();
    await new Promise((r) => c.once('close', r));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(900);
    await t.log.waitFor(/TIMEOUTidle exceeded: sending reset\n.*Connection reset: 0 byte/);
  });
});

describe('exec with input left unread', () => {
  it('a program that exits without reading all its input still has all of its output delivered', async () => {
    // stunnel loses such output in about a third of the runs (its socketpair is reset).
    const script = join(tmp.path, 'one-line.sh');
    writeFileSync(script, '#!/bin/sh\nread line\nhead -c 200000 /dev/zero | tr "\\0" x\necho end\n');
    chmodSync(script, 0o755);
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'unread.conf',
      `foreground = yes\ndebug = info\n[u]\naccept = 127.0.0.1:${port}\nexec = ${script}\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n`,
    );
    await startDaemon('ucspi-tunnel', conf);
    for (let i = 0; i < 5; i++) {
      const out = await tlsTalk(port, `first\n${'never read\n'.repeat(100000)}`).catch(
        (e: Error) => `error ${e.message}`,
      );
      expect(out.length).toBe(200004);
      expect(out.endsWith('xend\n')).toBe(true);
    }
  });
});

describe('client mode, bad peers', () => {
  it('a backend that does not speak TLS: SSL_connect logged, the client closed, the next connection handled alike', async () => {
    const plain = await backend(() => 'this is not TLS\r\n', true);
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'client-garbage.conf',
      `foreground = yes\ndebug = info\n[c]\nclient = yes\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${plain.port}\n`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    expect(await plainTalk(port, 'x').catch(() => '')).toBe('');
    await t.log.waitFor(/LOG3\[0\]: SSL_connect: .+\n.*LOG5\[0\]: Connection reset: 0 byte/);
    expect(await plainTalk(port, 'y').catch(() => '')).toBe('');
    await t.log.waitFor(/LOG3\[1\]: SSL_connect: /);
  });

  it('verify = 2 refuses a server whose certificate the CA did not sign', async () => {
    const b = await backend();
    const sport = await freePort();
    await startDaemon(
      'ucspi-tunnel',
      writeConfig(
        tmp.path,
        'selfsigned-server.conf',
        `foreground = yes\ndebug = info\n[s]\naccept = 127.0.0.1:${sport}\nconnect = 127.0.0.1:${b.port}\ncert = ${pki.selfSignedCert}\nkey = ${pki.selfSignedKey}\n`,
      ),
    );
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'client-verify.conf',
      `foreground = yes\ndebug = info\n[c]\nclient = yes\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${sport}\nCAfile = ${pki.caBundle}\nverify = 2\n`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    expect(await plainTalk(port, 'secret').catch(() => '')).toBe('');
    await t.log.waitFor(/LOG3\[0\]: SSL_connect: .*Certificate verification failed/);
    expect(b.connections()).toBe(0);
  });
});

describe.runIf(hasStunnel)('against stunnel4 in the other mode', () => {
  it('our client mode (checkHost, verify = 2) in front of stunnel4 server mode', async () => {
    const b = await backend();
    const sport = await freePort();
    const sconf = writeConfig(
      tmp.path,
      'st-server.conf',
      `foreground = yes\ndebug = info\npid =\n${serverSection('s', sport, `127.0.0.1:${b.port}`)}`,
    );
    await startDaemon('stunnel4', sconf);
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'our-client.conf',
      `foreground = yes\ndebug = info\n[c]\nclient = yes\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${sport}\nCAfile = ${pki.caBundle}\nverify = 2\ncheckHost = localhost\n`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    expect(await plainTalk(port, 'through two tunnels')).toBe('THROUGH TWO TUNNELS');
    await t.log.waitFor(/Connection closed: 19 byte\(s\) sent to TLS, 19 byte\(s\) sent to socket/);
    // The client side's words, as stunnel's client.c (the server side says `accepted`).
    expect(t.log.text()).toMatch(/LOG6\[0\]: TLS connected: new session negotiated/);
  });

  it('our client mode refuses stunnel4 whose certificate does not match checkHost', async () => {
    const b = await backend();
    const sport = await freePort();
    const sconf = writeConfig(
      tmp.path,
      'st-server2.conf',
      `foreground = yes\ndebug = info\npid =\n${serverSection('s', sport, `127.0.0.1:${b.port}`)}`,
    );
    await startDaemon('stunnel4', sconf);
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'our-client2.conf',
      `foreground = yes\ndebug = info\n[c]\nclient = yes\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${sport}\nCAfile = ${pki.caBundle}\nverify = 2\ncheckHost = other.test\n`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    expect(await plainTalk(port, 'secret').catch(() => '')).toBe('');
    await t.log.waitFor(/Rejected by CERT at depth=0: Certificate does not match any of: other\.test/);
    expect(b.connections()).toBe(0);
  });

  it('stunnel4 client mode with a client certificate in front of our server mode (verify = 2)', async () => {
    const b = await backend();
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'our-server.conf',
      `foreground = yes\ndebug = info\n${serverSection('s', port, `127.0.0.1:${b.port}`, `CAfile = ${pki.caBundle}\nverify = 2\n`)}`,
    );
    await startDaemon('ucspi-tunnel', conf);
    const cport = await freePort();
    const cconf = writeConfig(
      tmp.path,
      'st-client.conf',
      `foreground = yes\ndebug = info\npid =\n[c]\nclient = yes\naccept = 127.0.0.1:${cport}\nconnect = 127.0.0.1:${port}\ncert = ${pki.clientChain}\nkey = ${pki.clientKey}\nCAfile = ${pki.caBundle}\nverify = 2\ncheckHost = localhost\n`,
    );
    await startDaemon('stunnel4', cconf);
    expect(await plainTalk(cport, 'stunnel to us')).toBe('STUNNEL TO US');
  });
});

describe('configuration errors at start', () => {
  // The same files through stunnel4 and ucspi-tunnel: the same message and exit status 1.
  const cases: Array<[string, string]> = [
    ['trailing comment', 'foreground = yes\n[a]\nclient = yes ; note\n'],
    ['unknown option', 'foreground = yes\nbogusOption = 1\n'],
    ['no equals sign', 'foreground = yes\nthis line has no equals sign\n'],
    ['global option in a section', 'foreground = yes\n[a]\nforeground = yes\n'],
    ['server without cert', 'foreground = yes\n[a]\naccept = 1\nconnect = 2\n'],
    ['one endpoint', 'foreground = yes\n[a]\nclient = yes\naccept = 127.0.0.1:1\n'],
    [
      'three endpoints',
      'foreground = yes\n[a]\nclient = yes\naccept = 127.0.0.1:1\nconnect = 2\nexec = /bin/cat\n',
    ],
    [
      'verify without CA',
      'foreground = yes\n[a]\nclient = yes\naccept = 127.0.0.1:1\nconnect = 2\nverify = 2\n',
    ],
    [
      'checkHost without verify',
      'foreground = yes\n[a]\nclient = yes\naccept = 127.0.0.1:1\nconnect = 2\ncheckHost = x\n',
    ],
    ['bad verify level', 'foreground = yes\n[a]\nverify = 5\n'],
    ['bad idle timeout', 'foreground = yes\n[a]\nTIMEOUTidle = x\n'],
    ['bad failover', 'foreground = yes\n[a]\nfailover = foo\n'],
    ['SSLv2', 'foreground = yes\n[a]\nsslVersion = SSLv2\n'],
    [
      'proxy in client mode',
      'foreground = yes\n[a]\nclient = yes\naccept = 127.0.0.1:1\nconnect = 2\nprotocol = proxy\n',
    ],
    [
      'unknown protocol',
      'foreground = yes\n[a]\nclient = yes\naccept = 127.0.0.1:1\nconnect = 2\nprotocol = bogus\n',
    ],
    ['relative pid', 'pid = rel.pid\n[a]\n'],
    ['inetd accept', 'foreground = yes\nclient = yes\nconnect = 2\naccept = 1\n'],
    ['inetd no endpoint', 'foreground = yes\nclient = yes\n'],
    ['bad debug', 'foreground = yes\ndebug = bogus\n'],
    ['missing include folder', 'foreground = yes\ninclude = /nonexistent-ucspi\n'],
  ];
  it.each(cases)('%s: same message and exit 1 as stunnel4', async (name, text) => {
    const conf = writeConfig(tmp.path, `bad-${name.replace(/\W+/g, '-')}.conf`, text);
    const ours = await run(process.execPath, [join(__dirname, '..', 'dist', 'bin', 'ucspi-tunnel.js'), conf]);
    const errors = (s: string) =>
      s
        .split('\n')
        .filter((l) => l.startsWith('[!]'))
        .map((l) => l.replace(/^\[!\] /, ''));
    expect(ours.code).toBe(1);
    const mine = errors(ours.stderr.toString());
    expect(mine.at(-1)).toBe('Configuration failed');
    if (!hasStunnel) return;
    const theirs = await run('stunnel4', [conf], { timeoutMs: 10_000 });
    expect(theirs.code).toBe(1);
    expect(mine).toEqual(errors(theirs.stderr.toString()));
  });

  it('a missing certificate file: exit 1, nothing bound, no pid file', async () => {
    const port = await freePort();
    const pid = join(tmp.path, 'never.pid');
    const conf = writeConfig(
      tmp.path,
      'nocert.conf',
      `pid = ${pid}\n[fine]\naccept = 127.0.0.1:${port}\nconnect = 1\ncert = ${join(tmp.path, 'missing.pem')}\n`,
    );
    const r = await run(process.execPath, [join(__dirname, '..', 'dist', 'bin', 'ucspi-tunnel.js'), conf]);
    expect(r.code).toBe(1);
    expect(r.stderr.toString()).toMatch(
      /\[!\] Service \[fine\]: Failed to initialize TLS context\n\[!\] Configuration failed\n$/,
    );
    expect(existsSync(pid)).toBe(false);
    expect(await plainTalk(port, '').catch((e: NodeJS.ErrnoException) => e.code)).toBe('ECONNREFUSED');
  });

  it('a file that does not exist: stunnel words, exit 1', async () => {
    const r = await run(process.execPath, [
      join(__dirname, '..', 'dist', 'bin', 'ucspi-tunnel.js'),
      '/nonexistent/x.conf',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr.toString()).toBe(
      '[!] Invalid configuration file name "/nonexistent/x.conf"\n[!] realpath: No such file or directory (2)\n',
    );
  });

  it('options not built yet: a warning naming the line, and the service still runs', async () => {
    const b = await backend();
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'warn.conf',
      `foreground = yes\ndebug = info\ncompression = zlib\n${serverSection('w', port, `127.0.0.1:${b.port}`, 'sessiond = 127.0.0.1:9\n')}`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    expect(t.log.text()).toContain(`[!] ${conf}:3: "compression = zlib": compression is obsolete`);
    expect(t.log.text()).toContain(
      `[!] ${conf}:9: "sessiond = 127.0.0.1:9": sessiond is not supported by ucspi-tunnel yet`,
    );
    expect(await tlsTalk(port, 'still')).toBe('STILL');
  });
});

describe.runIf(hasOpenssl)(
  'protocol = smtp in server mode, openssl s_client -starttls smtp as the client',
  () => {
    /** A plain SMTP backend: greets with `greeting`, answers EHLO and QUIT. */
    async function smtpBackend(greeting: string): Promise<number> {
      const { createServer } = await import('node:net');
      const server = createServer((sock) => {
        sock.on('error', () => undefined);
        sock.write(`${greeting}\r\n`);
        let buf = '';
        sock.on('data', (b: Buffer) => {
          buf += b.toString();
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (/^EHLO /i.test(line)) sock.write('250 backend.test at your service\r\n');
            else if (/^QUIT/i.test(line)) sock.end('221 backend.test bye\r\n');
            else sock.write('500 what\r\n');
          }
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      afterCleanup.push(() => server.close());
      return (server.address() as { port: number }).port;
    }
    const afterCleanup: Array<() => void> = [];
    afterEach(() => {
      for (const f of afterCleanup.splice(0)) f();
    });

    it('passes the backend greeting, offers STARTTLS, then relays the session inside TLS', async () => {
      const bport = await smtpBackend('220-backend.test ESMTP\r\n220 ready');
      const port = await freePort();
      const conf = writeConfig(
        tmp.path,
        'smtp.conf',
        `foreground = yes\ndebug = info\n${serverSection('smtp', port, `127.0.0.1:${bport}`, 'protocol = smtp\n')}`,
      );
      const t = await startDaemon('ucspi-tunnel', conf);
      const r = await opensslStartTls(port, 'smtp', pki.caBundle, 'EHLO client.test\nQUIT\n');
      expect(r.stdout.toString(), `${r.stderr}${t.log.text()}`).toBe(
        '250 backend.test at your service\r\n221 backend.test bye\r\n',
      );
      await t.log.waitFor(/Connection closed: 56 byte\(s\) sent to TLS, 24 byte\(s\) sent to socket/);
    });

    it.each([
      ['pop3', '+OK backend ready', 'QUIT\n', '+OK backend bye\r\n'],
      ['imap', '* OK backend ready', 'a LOGOUT\n', '* BYE backend\r\na OK LOGOUT done\r\n'],
    ])(
      '%s: openssl s_client -starttls through the tunnel to a plain backend',
      async (proto, greeting, input, expected) => {
        const { createServer } = await import('node:net');
        const server = createServer((sock) => {
          sock.on('error', () => undefined);
          sock.write(`${greeting}\r\n`);
          sock.on('data', (b: Buffer) => {
            const line = b.toString().trim();
            if (/^QUIT$/i.test(line)) sock.end('+OK backend bye\r\n');
            else if (/^a LOGOUT$/i.test(line)) sock.end('* BYE backend\r\na OK LOGOUT done\r\n');
            else sock.write(proto === 'pop3' ? '-ERR what\r\n' : '* BAD what\r\n');
          });
        });
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        afterCleanup.push(() => server.close());
        const port = await freePort();
        const conf = writeConfig(
          tmp.path,
          `${proto}.conf`,
          `foreground = yes\ndebug = info\n${serverSection(proto, port, `127.0.0.1:${(server.address() as { port: number }).port}`, `protocol = ${proto}\n`)}`,
        );
        const t = await startDaemon('ucspi-tunnel', conf);
        const r = await opensslStartTls(port, proto, pki.caBundle, input);
        expect(r.stdout.toString(), `${r.stderr}${t.log.text()}`).toBe(expected);
      },
    );

    it('a backend that refuses in its greeting: logged, the client closed before any TLS', async () => {
      const bport = await smtpBackend('554 go away');
      const port = await freePort();
      const conf = writeConfig(
        tmp.path,
        'smtp-refused.conf',
        `foreground = yes\ndebug = info\n${serverSection('smtp', port, `127.0.0.1:${bport}`, 'protocol = smtp\n')}`,
      );
      const t = await startDaemon('ucspi-tunnel', conf);
      expect(await plainTalk(port, 'EHLO x\r\n').catch(() => '')).toBe('');
      await t.log.waitFor(
        /LOG3\[0\]: Protocol smtp: Unexpected greeting from the server: 554 go away\n.*Connection reset: 0 byte/,
      );
    });
  },
);

describe.runIf(toolAvailable('tinyproxy'))('protocol = connect through tinyproxy', () => {
  it('client mode reaches a TLS server behind an HTTP CONNECT proxy, verifying it by protocolHost', async () => {
    const { connect: tcpConnect } = await import('node:net');
    // tinyproxy closes both ways at a client's end: the backend answers at once and closes.
    const b = await backend((x) => x.toUpperCase(), true);
    const sport = await freePort();
    await startDaemon(
      'ucspi-tunnel',
      writeConfig(
        tmp.path,
        'behind-proxy.conf',
        `foreground = yes\ndebug = info\n${serverSection('s', sport, `127.0.0.1:${b.port}`)}`,
      ),
    );
    const pport = await freePort();
    const pconf = writeConfig(
      tmp.path,
      'tinyproxy.conf',
      `Port ${pport}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nMaxClients 10\nLogLevel Info\n`,
    );
    const proxy = spawn('tinyproxy', ['-d', '-c', pconf], { stdio: ['ignore', 'ignore', 'ignore'] });
    try {
      // Ready once its port takes connections.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const up = await new Promise<boolean>((r) => {
          const c = tcpConnect(pport, '127.0.0.1', () => {
            c.destroy();
            r(true);
          });
          c.on('error', () => r(false));
        });
        if (up) break;
        if (Date.now() > deadline) throw new Error('tinyproxy did not start');
        await new Promise((r) => setTimeout(r, 50));
      }
      const port = await freePort();
      const conf = writeConfig(
        tmp.path,
        'via-proxy.conf',
        `foreground = yes\ndebug = info\n[c]\nclient = yes\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${pport}\nprotocol = connect\nprotocolHost = localhost:${sport}\nCAfile = ${pki.caBundle}\nverify = 2\ncheckHost = localhost\n`,
      );
      const t = await startDaemon('ucspi-tunnel', conf);
      expect(await plainAsk(port, 'via proxy'), t.log.text()).toBe('VIA PROXY');
      await t.log.waitFor(/Connection closed: 9 byte\(s\) sent to TLS, 9 byte\(s\) sent to socket/);
      // A target the proxy cannot reach: the dialogue fails, logged, the client closed.
      const port2 = await freePort();
      const dead = await freePort();
      const conf2 = writeConfig(
        tmp.path,
        'via-proxy-dead.conf',
        `foreground = yes\ndebug = info\n[c]\nclient = yes\naccept = 127.0.0.1:${port2}\nconnect = 127.0.0.1:${pport}\nprotocol = connect\nprotocolHost = 127.0.0.1:${dead}\n`,
      );
      const t2 = await startDaemon('ucspi-tunnel', conf2);
      expect(await plainTalk(port2, 'x').catch(() => '')).toBe('');
      await t2.log.waitFor(/LOG3\[0\]: Protocol connect: .+\n.*Connection reset: 0 byte/);
    } finally {
      await reap(proxy);
    }
  });
});

describe.runIf(toolAvailable('tcpserver'))('inetd mode (no sections) under ucspi-tcp tcpserver', () => {
  it('serves the one connection on descriptors 0 and 1', async () => {
    const b = await backend();
    const conf = writeConfig(
      tmp.path,
      'inetd.conf',
      `foreground = yes\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\nconnect = 127.0.0.1:${b.port}\n`,
    );
    const proc = spawn('tcpserver', ['-1', '127.0.0.1', '0', process.execPath, TUNNEL, conf], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = watchLog(proc.stderr!);
    try {
      const [, port] = await waitForLine(proc.stdout!, /^(\d+)$/);
      expect(await tlsTalk(Number(port), 'inetd')).toBe('INETD');
      await log.waitFor(/LOG5\[0\]: Connection closed: 5 byte\(s\) sent to TLS, 5 byte\(s\) sent to socket/);
    } finally {
      await reap(proc);
    }
  });
});

describe('daemon', () => {
  it('writes the pid file, removes it and exits 0 on TERM with "Terminated"', async () => {
    const b = await backend();
    const port = await freePort();
    const pid = join(tmp.path, 'tunnel.pid');
    const conf = writeConfig(
      tmp.path,
      'pid.conf',
      `foreground = yes\ndebug = info\npid = ${pid}\n${serverSection('p', port, `127.0.0.1:${b.port}`)}`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    expect(readFileSync(pid, 'utf8')).toBe(`${t.proc.pid}\n`);
    expect(await t.stop('SIGTERM')).toBe(0);
    expect(t.log.text()).toMatch(/LOG5\[ui\]: Terminated/);
    expect(existsSync(pid)).toBe(false);
  });

  it('HUP applies a new connect target to new connections and keeps the old configuration when the new one is bad', async () => {
    const b1 = await backend(() => 'old');
    const b2 = await backend(() => 'new');
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'hup.conf',
      `foreground = yes\ndebug = info\n${serverSection('h', port, `127.0.0.1:${b1.port}`)}`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    expect(await tlsTalk(port, 'x')).toBe('old');
    writeConfig(
      tmp.path,
      'hup.conf',
      `foreground = yes\ndebug = info\n${serverSection('h', port, `127.0.0.1:${b2.port}`)}`,
    );
    t.proc.kill('SIGHUP');
    await t.log.waitForCount(/Configuration successful/, 2);
    expect(await tlsTalk(port, 'x')).toBe('new');
    writeConfig(tmp.path, 'hup.conf', 'foreground = yes\n[h]\nbogus = 1\n');
    t.proc.kill('SIGHUP');
    await t.log.waitFor(
      /LOG3\[ui\]: .*hup\.conf:3: "bogus = 1": Specified option name is not valid here\n.*Failed to reload/,
    );
    expect(await tlsTalk(port, 'x')).toBe('new');
  });

  it('HUP keeps a connection in progress on its old backend', async () => {
    const { connect } = await import('node:tls');
    const b1 = await backend(() => 'old');
    const b2 = await backend(() => 'new');
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'hup2.conf',
      `foreground = yes\ndebug = info\n${serverSection('h', port, `127.0.0.1:${b1.port}`)}`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    // A connection established before the reload, its backend connected.
    const held = connect({
      port,
      host: '127.0.0.1',
      rejectUnauthorized: false,
      allowHalfOpen: true,
    } as never);
    let heldOut = '';
    held.on('data', (b: Buffer) => {
      heldOut += b.toString();
    });
    await t.log.waitFor(/connected remote server/);
    writeConfig(
      tmp.path,
      'hup2.conf',
      `foreground = yes\ndebug = info\n${serverSection('h', port, `127.0.0.1:${b2.port}`)}`,
    );
    t.proc.kill('SIGHUP');
    await t.log.waitForCount(/Configuration successful/, 2);
    expect(await tlsTalk(port, 'x')).toBe('new');
    const heldEnd = new Promise((r) => held.once('end', r));
    held.end('x');
    await heldEnd;
    expect(heldOut).toBe('old');
  });

  it('-fd N reads the configuration from a descriptor', async () => {
    const bin = join(__dirname, '..', 'dist', 'bin', 'ucspi-tunnel.js');
    const good = writeConfig(tmp.path, 'fd.conf', serverSection('fd', await freePort(), '127.0.0.1:9'));
    const ok = await run('sh', ['-c', 'exec "$0" "$1" -t -fd 3 3<"$2"', process.execPath, bin, good]);
    expect(ok.code, ok.stderr.toString()).toBe(0);
    const bad = writeConfig(tmp.path, 'fd-bad.conf', 'oops\n');
    const no = await run('sh', ['-c', 'exec "$0" "$1" -t -fd 3 3<"$2"', process.execPath, bin, bad]);
    expect(no.code).toBe(1);
    expect(no.stderr.toString()).toBe('[!] -fd 3:1: "oops": No \'=\' found\n[!] Configuration failed\n');
  });

  it('-t checks a configuration and starts nothing; a bad one exits 1', async () => {
    const bin = join(__dirname, '..', 'dist', 'bin', 'ucspi-tunnel.js');
    const port = await freePort();
    const good = writeConfig(tmp.path, 'check.conf', serverSection('c', port, '127.0.0.1:9'));
    const ok = await run(process.execPath, [bin, '-t', good]);
    expect(ok.code).toBe(0);
    expect(ok.stderr.toString()).toMatch(/Configuration successful\n$/);
    const bad = writeConfig(
      tmp.path,
      'check-bad.conf',
      `${serverSection('c', port, '127.0.0.1:9')}cert = ${pki.malformed}\n`,
    );
    const no = await run(process.execPath, [bin, '-t', bad]);
    expect(no.code).toBe(1);
    expect(no.stderr.toString()).toMatch(
      /Service \[c\]: Failed to initialize TLS context\n\[!\] Configuration failed\n$/,
    );
  });

  it('USR1 reopens the output file after it was moved away', async () => {
    const b = await backend();
    const port = await freePort();
    const out = join(tmp.path, 'tunnel.log');
    const conf = writeConfig(
      tmp.path,
      'usr1.conf',
      `foreground = yes\ndebug = info\noutput = ${out}\n${serverSection('u', port, `127.0.0.1:${b.port}`)}`,
    );
    const t = await startDaemon('ucspi-tunnel', conf, null);
    // The log is in the file, not on stderr.
    const { waitUntil } = await import('@ucspi/testkit');
    await waitUntil(() => existsSync(out) && readFileSync(out, 'utf8').includes('Accepting new connections'));
    renameSync(out, `${out}.1`);
    t.proc.kill('SIGUSR1');
    await waitUntil(() => existsSync(out) && readFileSync(out, 'utf8').includes('Log file reopened'));
    expect(await tlsTalk(port, 'rotated')).toBe('ROTATED');
    await waitUntil(() => readFileSync(out, 'utf8').includes('Connection closed'));
  });
});

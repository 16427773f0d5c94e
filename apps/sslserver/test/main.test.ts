// main() run in-process with the real libraries: limits, rules decisions, log lines, the TLS pump,
// robustness, UCSPI-TLS (-n). Rules are real cdbs compiled by @ucspi/rules, certificates come from the
// test PKI, and the development certificate is made in a temporary cache directory.
import { readdirSync, readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { compileRules } from '@ucspi/rules';
import {
  createTestPki,
  run,
  type TestPki,
  tempDir,
  toolAvailable,
  waitUntil,
  watchLog,
} from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/index.js';
import { talk, talkTls } from './_helpers.js';

const dir = tempDir();
let pki: TestPki;
const cdb = (name: string) => join(dir.path, `${name}.cdb`);
beforeAll(async () => {
  pki = createTestPki(join(dir.path, 'pki'));
  await compileRules(Buffer.from('127.:deny\n'), cdb('deny'), join(dir.path, 'deny.tmp'));
  await compileRules(Buffer.from(':allow,RULEVAR="yes"\n'), cdb('allow'), join(dir.path, 'allow.tmp'));
  await compileRules(Buffer.from(':allow,MAXCONIP="1"\n'), cdb('maxconip'), join(dir.path, 'maxconip.tmp'));
}, 30_000);
afterAll(() => dir.cleanup());

interface Started {
  port: number;
  log: () => string;
  /** Wait until the log shows `n` ended connections (`end`/`ended by` lines), the status after each. */
  settled: (n?: number) => Promise<void>;
  stop: () => Promise<number>;
}

/** A stream to give main() as stdout or stderr, and what has been written to it so far. */
function capture(): { stream: PassThrough; text: () => string; watch: ReturnType<typeof watchLog> } {
  const stream = new PassThrough();
  const watch = watchLog(stream);
  return { stream, text: watch.text, watch };
}

/** Start main() in-process; resolves once the port is printed. */
async function start(
  flavour: 'tcpserver' | 'sslserver',
  argv: string[],
  extraEnv: Record<string, string> = {},
): Promise<Started> {
  const stdout = new PassThrough();
  const stderr = capture();
  let stop: () => void = () => undefined;
  const stopSignal = new Promise<void>((r) => {
    stop = r;
  });
  const env = {
    PATH: process.env.PATH,
    XDG_CACHE_HOME: join(dir.path, 'cache'),
    // Lookups (the local name without -l) go to loopback, never to the machine's resolver.
    DNSCACHEIP: '127.0.0.1',
    ...extraEnv,
  };
  const done = main(flavour, ['-1', ...argv], env, {
    stdout,
    stderr: stderr.stream,
    stopSignal,
  });
  const port = await Promise.race([
    new Promise<number>((r) => stdout.once('data', (b: Buffer) => r(Number(b.toString().trim())))),
    done.then((code) => {
      throw new Error(`exited ${code}: ${stderr.text()}`);
    }),
  ]);
  return {
    port,
    log: stderr.text,
    settled: async (n = 1) => {
      await stderr.watch.waitForCount(
        /^(sslserver: ended by|tcpserver: end) \d+ status \d+\n\w+: status:? \d/m,
        n,
      );
    },
    stop: async () => {
      stop();
      return done;
    },
  };
}

const norm = (log: string) =>
  log
    .trim()
    .split('\n')
    .map((l) =>
      l
        .replace(/\b(pid|ok|deny|end|by) \d+/, '$1 PID')
        .replace(/:\d+ :/, ':PORT :')
        .replace(/::\d+$/, '::RPORT'),
    );
const ENV_PROG = ['sh', '-c', 'env | grep -E "^(TCP|SSL|PROTO|RULEVAR)" | sort'];

describe('tcpserver main() with the real libraries', () => {
  it('sets the environment and logs the lines of ucspi-tcp', async () => {
    const s = await start('tcpserver', [
      '-v',
      '-H',
      '-R',
      '-l',
      'localhost',
      '-x',
      cdb('allow'),
      '127.0.0.1',
      '0',
      ...ENV_PROG,
    ]);
    const out = await talk(s.port);
    await s.settled();
    expect(await s.stop()).toBe(0);
    expect(out).toMatch(/^PROTO=TCP$/m);
    expect(out).toMatch(/^RULEVAR=yes$/m);
    expect(out).toMatch(new RegExp(`^TCPLOCALPORT=${s.port}$`, 'm'));
    expect(out).not.toMatch(/^TCPREMOTEHOST=/m);
    expect(norm(s.log())).toEqual([
      'tcpserver: status: 0/40',
      'tcpserver: status: 1/40',
      'tcpserver: pid PID from 127.0.0.1',
      'tcpserver: ok PID localhost:127.0.0.1:PORT :127.0.0.1::RPORT',
      'tcpserver: end PID status 0',
      'tcpserver: status: 0/40',
    ]);
  });

  it('deny closes without running the program; -X allows a missing cdb, without -X it is dropped', async () => {
    const d = await start('tcpserver', [
      '-v',
      '-H',
      '-R',
      '-l',
      'L',
      '-x',
      cdb('deny'),
      '127.0.0.1',
      '0',
      'echo',
      'ran',
    ]);
    expect(await talk(d.port)).toBe('');
    await d.stop();
    expect(norm(d.log())).toContain('tcpserver: deny PID L:127.0.0.1:PORT :127.0.0.1::RPORT');
    expect(norm(d.log())).toContain('tcpserver: end PID status 25600');
    const x = await start('tcpserver', [
      '-q',
      '-H',
      '-R',
      '-X',
      '-x',
      cdb('missing'),
      '127.0.0.1',
      '0',
      'echo',
      'ran',
    ]);
    expect(await talk(x.port)).toBe('ran\n');
    await x.stop();
    const nx = await start('tcpserver', [
      '-q',
      '-H',
      '-R',
      '-x',
      cdb('missing'),
      '127.0.0.1',
      '0',
      'echo',
      'ran',
    ]);
    expect(await talk(nx.port)).toBe('');
    await nx.stop();
  });

  it('-c 1 starts the second program only after the first ended; exit status in wstat form', async () => {
    const s = await start('tcpserver', [
      '-v',
      '-H',
      '-R',
      '-l',
      'L',
      '-c',
      '1',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      'date +%s%N; sleep 0.4; exit 2',
    ]);
    const outs = await Promise.all([talk(s.port), talk(s.port)]);
    const [a, b] = outs.map((x) => Number(BigInt(x.trim()) / 1_000_000n)).sort((x, y) => x - y);
    expect((b ?? 0) - (a ?? 0)).toBeGreaterThanOrEqual(350);
    await s.settled(2);
    await s.stop();
    expect(s.log()).not.toMatch(/status: 2\/1/);
    expect(s.log()).toMatch(/end \d+ status 512/);
  });

  it('-B writes the banner before the program output', async () => {
    const s = await start('tcpserver', ['-q', '-H', '-R', '-B', 'hello ', '127.0.0.1', '0', 'echo', 'there']);
    expect(await talk(s.port)).toBe('hello there\n');
    expect(await s.stop()).toBe(0);
  });

  it('leaves no zombie processes after many connections', async () => {
    const s = await start('tcpserver', ['-v', '-H', '-R', '127.0.0.1', '0', 'echo', 'x']);
    const outs = await Promise.all(Array.from({ length: 30 }, () => talk(s.port)));
    expect(outs.every((o) => o === 'x\n')).toBe(true);
    // Every program has ended and been reaped (its `end` line), then none is left a zombie.
    await s.settled(30);
    await s.stop();
    expect(zombies()).toEqual([]);
  });
});

/** This process's children that have exited and not been reaped. */
function zombies(): string[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => {
      try {
        return readFileSync(`/proc/${d}/stat`, 'utf8');
      } catch {
        return '';
      }
    })
    .filter((st) => {
      // fields after the ")": state, ppid
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      return f[0] === 'Z' && Number(f[1]) === process.pid;
    });
}

describe('main() (continued)', () => {
  it('sslserver: a bad SSL_UID is a usage error (exit 100); a chroot that fails is fatal (exit 111)', async () => {
    const attempt = async (env: Record<string, string>) => {
      const stderr = capture();
      const stdout = capture();
      const code = await main(
        'sslserver',
        ['-1', '127.0.0.1', '0', 'true'],
        { XDG_CACHE_HOME: join(dir.path, 'cache'), ...env },
        { stdout: stdout.stream, stderr: stderr.stream },
      );
      const log = stderr.text().replace(/^sslserver: warning: using a self-signed.*\n/m, '');
      return { code, log, out: stdout.text() };
    };
    expect(await attempt({ SSL_UID: 'nobody' })).toEqual({
      code: 100,
      log: 'sslserver: fatal: SSL_UID must be a numeric id, not nobody\n',
      out: '',
    });
    const missing = join(dir.path, 'no-such-jail');
    // The handler fails before the server says it is listening: no port line, nothing half-started.
    expect(await attempt({ SSL_CHROOT: missing })).toEqual({
      code: 111,
      log: `sslserver: fatal: unable to chroot to ${missing}: ENOENT\n`,
      out: '',
    });
  });

  it('bind failure: djb wording, exit 111', async () => {
    const a = await start('tcpserver', ['-H', '-R', '127.0.0.1', '0', 'true']);
    const stderr = capture();
    const code = await main(
      'tcpserver',
      ['-H', '-R', '127.0.0.1', String(a.port), 'true'],
      {},
      { stdout: new PassThrough(), stderr: stderr.stream },
    );
    await a.stop();
    expect(code).toBe(111);
    expect(stderr.text()).toBe('tcpserver: fatal: unable to bind: address already used\n');
  });
});

describe.runIf(toolAvailable('openssl'))('sslserver main() with the real libraries', () => {
  it('runs the program behind TLS: env (-e sets PROTO=TCP), -V line, banner', async () => {
    const s = await start('sslserver', [
      '-V',
      '-e',
      '-s',
      '-H',
      '-R',
      '-l',
      'L',
      '-B',
      'BAN:',
      '127.0.0.1',
      '0',
      ...ENV_PROG,
    ]);
    const out = (await talkTls(s.port)).toString();
    await s.settled();
    await s.stop();
    // The banner comes first, then the program's output (the sorted env starts with PROTO).
    expect(out.startsWith('BAN:PROTO=TCP\n')).toBe(true);
    expect(out).toMatch(/^SSLREMOTEIP=127\.0\.0\.1$/m);
    expect(out).toMatch(/^TCPREMOTEIP=127\.0\.0\.1$/m);
    expect(out).toMatch(/^SSL_PROTOCOL=TLSv1\.3$/m);
    expect(s.log()).toMatch(/^sslserver: warning: using a self-signed DEVELOPMENT certificate/m);
    expect(norm(s.log())).toEqual(
      expect.arrayContaining([
        'sslserver: status 0/40/0',
        'sslserver: ok PID L:127.0.0.1:PORT :127.0.0.1::RPORT',
        'sslserver: ended by PID status 0',
      ]),
    );
    expect(s.log()).toMatch(/^sslserver: tls \d+ accept TLSv1\.3:TLS_\w+$/m);
  });

  it('pumps 64 MiB both ways through cat; half-close gets later output', async () => {
    const s = await start('sslserver', ['-q', '-H', '-R', '127.0.0.1', '0', 'cat']);
    const big = Buffer.alloc(64 * 1024 * 1024, 'q');
    expect((await talkTls(s.port, big)).length).toBe(big.length);
    await s.stop();
    const h = await start('sslserver', [
      '-q',
      '-H',
      '-R',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      'cat >/dev/null; sleep 0.2; echo after',
    ]);
    expect((await talkTls(h.port, 'x')).toString()).toBe('after\n');
    await h.stop();
  }, 60_000);

  it('survives garbage, a reset mid-handshake and a silent client (-T 1); slots are freed', async () => {
    const s = await start('sslserver', ['-v', '-H', '-R', '-T', '1', '127.0.0.1', '0', 'echo', 'ok']);
    await new Promise<void>((r) => {
      const c = netConnect(s.port, '127.0.0.1', () => c.write('GET / HTTP/1.0\r\n\r\n'));
      c.on('error', () => undefined);
      c.on('close', () => r());
    });
    await new Promise<void>((r) => {
      const c = netConnect(s.port, '127.0.0.1', () => {
        c.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
        c.resetAndDestroy();
        r();
      });
    });
    const t0 = Date.now();
    await new Promise<void>((r) => {
      const c = netConnect(s.port, '127.0.0.1');
      c.on('error', () => undefined);
      c.on('close', () => r());
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await talkTls(s.port)).toString()).toBe('ok\n');
    await s.settled();
    await s.stop();
    expect(s.log().trim().split('\n').pop()).toBe('sslserver: status 0/40/0');
  }, 20_000);

  it('-m: a client without a certificate never gets program output', async () => {
    const s = await start('sslserver', ['-v', '-m', '-H', '-R', '127.0.0.1', '0', 'echo', 'secret'], {
      CERTFILE: pki.serverCert,
      KEYFILE: pki.serverKey,
      CAFILE: pki.caBundle,
    });
    expect((await talkTls(s.port).catch(() => Buffer.alloc(0))).toString()).toBe('');
    await waitUntil(() => /^sslserver: error: no client certificate$/m.test(s.log()), 5000).catch(
      () => undefined,
    );
    await s.stop();
    expect(s.log()).toMatch(/^sslserver: error: no client certificate$/m);
  });

  it('MAXCONIP from the environment or a rule limits programs per client address', async () => {
    const prog = ['sh', '-c', 'sleep 0.6; echo served'];
    const fromEnv = await start('sslserver', ['-v', '-H', '-R', '-l', 'L', '127.0.0.1', '0', ...prog], {
      MAXCONIP: '1',
    });
    const outs = await Promise.all([0, 1].map(() => talkTls(fromEnv.port).then(String, () => 'refused')));
    await fromEnv.settled(2);
    await fromEnv.stop();
    expect(outs.sort()).toEqual(['refused', 'served\n']);
    expect(fromEnv.log()).toMatch(/^sslserver: status 0\/40\/1$/m);
    expect(fromEnv.log()).toMatch(
      /^sslserver: WARNING ip connection limit of 1 exceeded for: 127\.0\.0\.1$/m,
    );
    expect(fromEnv.log()).toMatch(
      /^sslserver: deny \d+ L:127\.0\.0\.1:\d+ :127\.0\.0\.1::\d+ ip connection limit:1 exceeded$/m,
    );

    const fromRule = await start('sslserver', [
      '-v',
      '-H',
      '-R',
      '-x',
      cdb('maxconip'),
      '127.0.0.1',
      '0',
      ...prog,
    ]);
    const ruled = await Promise.all([0, 1].map(() => talkTls(fromRule.port).then(String, () => 'refused')));
    await fromRule.settled(2);
    await fromRule.stop();
    expect(ruled.sort()).toEqual(['refused', 'served\n']);
    expect(fromRule.log()).toMatch(/ip connection limit:1 exceeded$/m);
    expect(fromRule.log()).not.toMatch(/WARNING/);
  });

  it('a MAXCONIP that is not a number is a fatal error (exit 100)', async () => {
    const stderr = capture();
    const code = await main(
      'sslserver',
      ['127.0.0.1', '0', 'true'],
      { MAXCONIP: 'many', CERTFILE: pki.serverCert, KEYFILE: pki.serverKey },
      { stdout: new PassThrough(), stderr: stderr.stream },
    );
    expect(code).toBe(100);
    expect(stderr.text()).toBe('sslserver: fatal: MAXCONIP must be a whole number, not many\n');
  });

  it('talks to openssl s_client', async () => {
    const s = await start('sslserver', [
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
    await s.stop();
    expect(r.stdout.toString()).toBe('got hello\n');
  });

  // A small SMTP-ish program for -n: plaintext dialogue on fd 0/1, then `y` (or `Y`) on SSLCTLFD
  // and one line read from SSLREADFD echoed to SSLWRITEFD.
  const SMTP = `printf '220 test ESMTP\r\n'
while IFS= read -r line; do
  case "$line" in
    EHLO*|HELO*) printf '250-test\r\n250 STARTTLS\r\n';;
    STARTTLS*) printf '220 go ahead\r\n'; printf "$REQ" >&$SSLCTLFD; break;;
  esac
done
if [ "$REQ" = Y ]; then dd bs=1 count=22 <&$SSLCTLFD 2>/dev/null >&$SSLWRITEFD; echo >&$SSLWRITEFD; fi
IFS= read -r l <&$SSLREADFD; printf 'got %s\n' "$l" >&$SSLWRITEFD`;

  it('-n: openssl s_client -starttls smtp reaches the program through SSLREADFD/SSLWRITEFD', async () => {
    const s = await start('sslserver', ['-v', '-n', '-H', '-R', '127.0.0.1', '0', 'sh', '-c', SMTP], {
      REQ: 'y',
    });
    const r = await run(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${s.port}`, '-starttls', 'smtp', '-quiet'],
      {
        input: 'hello-tls\n',
        timeoutMs: 10_000,
      },
    );
    await s.settled();
    await s.stop();
    expect(r.stdout.toString()).toContain('got hello-tls\n');
    expect(s.log()).toMatch(/^sslserver: tls \d+ accept$/m);
  });

  /** Plaintext SMTP up to STARTTLS (sent with `extra` in the same write), then TLS on the same socket. */
  function starttls(port: number, extra: string): Promise<string> {
    return new Promise((resolve) => {
      const c = netConnect(port, '127.0.0.1');
      let plain = '';
      c.on('error', () => resolve('plain-error'));
      const onPlain = (b: Buffer) => {
        plain += b.toString();
        if (plain.includes('220 test')) {
          plain = '';
          c.write('EHLO x\r\n');
        } else if (plain.includes('250 STARTTLS')) {
          plain = '';
          c.write(`STARTTLS\r\n${extra}`);
        } else if (plain.includes('220 go ahead')) {
          c.off('data', onPlain);
          const t = tlsConnect({ socket: c, rejectUnauthorized: false });
          let out = '';
          t.on('data', (d: Buffer) => {
            out += d.toString();
          });
          t.on('error', () => resolve(`tls-error:${out}`));
          t.on('end', () => resolve(out));
          t.on('close', () => resolve(out));
          t.once('secureConnect', () => t.end('after-tls\n'));
        }
      };
      c.on('data', onPlain);
    });
  }

  it('-n with Y: the program receives the TLS environment list on SSLCTLFD', async () => {
    const s = await start('sslserver', ['-q', '-n', '-H', '-R', '127.0.0.1', '0', 'sh', '-c', SMTP], {
      REQ: 'Y',
    });
    const out = await starttls(s.port, '');
    await s.stop();
    // The program read the first 22 bytes of the list: SSL_PROTOCOL comes first, as in ucspi-ssl.
    expect(out).toBe('SSL_PROTOCOL=TLSv1.3\0S\ngot after-tls\n');
  });

  it('-n: plaintext pipelined after STARTTLS is never delivered to the program as TLS data', async () => {
    const s = await start(
      'sslserver',
      ['-q', '-n', '-H', '-R', '-T', '2', '127.0.0.1', '0', 'sh', '-c', SMTP],
      { REQ: 'y' },
    );
    // The same dialogue without the injection: the upgraded session goes on and carries data both
    // ways, so a broken dialogue cannot pass as "nothing was injected".
    expect(await starttls(s.port, '')).toBe('got after-tls\n');
    const out = await starttls(s.port, 'INJECTED\r\n');
    await s.stop();
    expect(out).not.toContain('INJECTED');
    expect(out).not.toContain('got');
  });
});

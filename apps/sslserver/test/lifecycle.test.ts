// How connections end and what they give back: the close deadline after the program's output,
// slots after a program that never starts or is killed, and the privileges -u/-g leave.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { findTool, run, tempDir } from '@ucspi/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { expectLetGoWhenSilent, type Running, startServer, stopAll, talk, talkTls } from './_helpers.js';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const sslBin = join(pkgDir, 'dist', 'bin', 'sslserver.js');
const tcpBin = join(pkgDir, 'dist', 'bin', 'tcpserver.js');
const cacheDir = tempDir();
afterAll(() => cacheDir.cleanup());
afterEach(stopAll);

/** Our sslserver with the development certificate from this test's own cache. */
function startSsl(args: string[], extra: Record<string, string> = {}, wrap: string[] = []): Promise<Running> {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheDir.path, ...extra };
  delete env.CERTFILE;
  delete env.KEYFILE;
  const [cmd, ...pre] = wrap.length > 0 ? [...wrap, process.execPath] : [process.execPath];
  return startServer(cmd!, [...pre, sslBin, ...args], env);
}

/** The Uid, Gid and Groups lines of a process. */
function ids(pid: number): { uid: string; gid: string; groups: string } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => (status.match(new RegExp(`^${name}:\\s*(.*)$`, 'm'))?.[1] ?? '').trim();
  return { uid: field('Uid').split(/\s+/)[0]!, gid: field('Gid').split(/\s+/)[0]!, groups: field('Groups') };
}

describe('the close deadline (CLOSETIMEOUT)', () => {
  it('a client that reads everything and then stays silent is closed after the deadline; its slot is freed', async () => {
    // -w 3600 (the default idle timeout) would keep the silent client for an hour.
    const s = await startSsl(['-1', '-v', '-H', '-R', '127.0.0.1', '0', 'echo', 'bye'], {
      CLOSETIMEOUT: '1',
    });
    await expectLetGoWhenSilent(s, 'bye\n');
    expect(s.stderr()).toMatch(/^sslserver: ended by \d+ status 0$/m);
  });

  it('a client that answers in time is not cut short; a bad CLOSETIMEOUT is refused at start', async () => {
    const s = await startSsl(['-1', '-q', '-H', '-R', '127.0.0.1', '0', 'cat'], { CLOSETIMEOUT: '1' });
    // The client half-closes at once and keeps receiving: the deadline only starts after the
    // program's output has ended.
    const big = Buffer.alloc(8 << 20, 'y');
    expect((await talkTls(s.port, big)).length).toBe(big.length);
    const bad = await run(process.execPath, [sslBin, '-1', '127.0.0.1', '0', 'cat'], {
      env: { ...process.env, XDG_CACHE_HOME: cacheDir.path, CLOSETIMEOUT: 'soon' },
    });
    expect(bad.code).toBe(100);
    expect(bad.stderr.toString()).toMatch(
      /^sslserver: fatal: CLOSETIMEOUT must be a whole number of seconds, not soon$/m,
    );
  });
});

describe('every way a connection ends gives its slot back', () => {
  it('a program that cannot be run, and one that is killed', async () => {
    const missing = await startSsl(['-1', '-v', '-H', '-R', '127.0.0.1', '0', '/nonexistent/prog']);
    expect((await talkTls(missing.port)).toString()).toBe('');
    await missing.waitLog(/^sslserver: ended by \d+ status 28416\nsslserver: status 0\/40\/0\n/m);
    expect(missing.stderr()).toMatch(
      /^sslserver: warning: dropping connection, unable to run \/nonexistent\/prog: file does not exist$/m,
    );

    const s = await startSsl([
      '-1',
      '-v',
      '-H',
      '-R',
      '127.0.0.1',
      '0',
      'sh',
      '-c',
      'echo up; exec sleep 30',
    ]);
    const c = tlsConnect({ port: s.port, host: '127.0.0.1', rejectUnauthorized: false });
    c.on('error', () => undefined);
    const ended = new Promise<void>((resolve) => c.on('close', () => resolve()));
    // The program runs (it said so): now it is killed.
    await new Promise<void>((resolve) => c.once('data', () => resolve()));
    const [, pid] = await s.waitLog(/^sslserver: ok (\d+) /m);
    process.kill(Number(pid), 'SIGKILL');
    await ended;
    await s.waitLog(new RegExp(`^sslserver: ended by ${pid} status 9\\nsslserver: status 0/40/0\\n`, 'm'));
  });
});

describe.runIf(process.getuid?.() === 0 && findTool('setpriv') !== undefined)(
  '-u and -g as root: supplementary groups are cleared, as prot_gid does',
  () => {
    for (const [name, bin] of [
      ['tcpserver', tcpBin],
      ['sslserver', sslBin],
    ] as const) {
      it(`${name}: the server and its program keep only the -g group`, async () => {
        const args = ['-1', '-v', '-H', '-R', '-u', '1', '-g', '2', '127.0.0.1', '0', 'sh', '-c'];
        const prog = 'grep -E "^(Uid|Gid|Groups):" /proc/self/status';
        // Started with root's supplementary groups 0, 4 and 27, as a root shell often has.
        const s =
          name === 'sslserver'
            ? await startSsl([...args, prog], {}, ['setpriv', '--groups', '0,4,27', '--'])
            : await startServer('setpriv', [
                '--groups',
                '0,4,27',
                '--',
                process.execPath,
                bin,
                ...args,
                prog,
              ]);
        expect(ids(s.proc.pid!)).toEqual({ uid: '1', gid: '2', groups: '2' });
        const out = name === 'sslserver' ? (await talkTls(s.port)).toString() : await talk(s.port);
        expect(out).toMatch(/^Uid:\s+1\s/m);
        expect(out).toMatch(/^Gid:\s+2\s/m);
        expect(out).toMatch(/^Groups:\s*2\s*$/m);
      });
    }
  },
);

describe('start-up', () => {
  it('with -v, says once when programs start without the native spawner; silent when it is in use', async () => {
    const args = ['-1', '-v', '-H', '-R', '-l', 'x', '127.0.0.1', '0', 'echo', 'hi'];
    const fallback = await startServer(process.execPath, [tcpBin, ...args], {
      ...process.env,
      UCSPI_EXEC_NATIVE: '0',
    });
    expect(await talk(fallback.port)).toBe('hi\n');
    await fallback.waitLog(/^tcpserver: end \d+ status 0$/m);
    const lines = fallback.stderr().split('\n');
    expect(lines.filter((l) => l.startsWith('tcpserver: warning: no native spawner (')).length).toBe(1);
    const native = await startServer(process.execPath, [tcpBin, ...args]);
    expect(await talk(native.port)).toBe('hi\n');
    await native.waitLog(/^tcpserver: end \d+ status 0$/m);
    expect(native.stderr()).not.toMatch(/no native spawner/);
  });
});

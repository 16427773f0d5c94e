import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createTestPki, freePort, run, runBin, tempDir, toolAvailable, waitUntil } from '@ucspi/testkit';
import { afterAll, describe, expect, it } from 'vitest';

// The README's "Running as a service" examples, tried as written: its daemontools `run` and
// `log/run` scripts under a real svscan/supervise (Debian's daemontools), and its systemd unit
// through `systemd-analyze verify`. Only the install prefix, the account names, the address and the
// program are put in for this machine.
const here = dirname(fileURLToPath(import.meta.url));
const readme = readFileSync(join(here, '..', 'README.md'), 'utf8');
const serverBin = join(here, '..', 'dist', 'bin', 'sslserver.js');

/** The fenced block after `<!-- service: NAME -->` in the README. */
function example(name: string): string {
  const m = new RegExp(`<!-- service: ${name} -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\\n\`\`\``).exec(readme);
  if (!m?.[1]) throw new Error(`README has no "${name}" example`);
  return m[1];
}

const NOBODY = 65534;
const tmp = tempDir();
afterAll(() => tmp.cleanup());
// Everything below must be reachable by the account the programs run as.
chmodSync(tmp.path, 0o755);

/** A prefix like /opt/ucspi whose node_modules/.bin/sslserver runs this repository's build. */
function installPrefix(): string {
  const prefix = join(tmp.path, 'opt');
  const bin = join(prefix, 'node_modules', '.bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'sslserver'), `#!/bin/sh\nexec '${process.execPath}' '${serverBin}' "$@"\n`, {
    mode: 0o755,
  });
  return prefix;
}

const asRoot = process.getuid?.() === 0;

describe.runIf(asRoot && toolAvailable('svscan') && toolAvailable('multilog'))('daemontools', () => {
  let svscan: ChildProcess | undefined;
  const services = join(tmp.path, 'service');
  const dir = join(tmp.path, 'smtps');

  afterAll(async () => {
    svscan?.kill('SIGTERM');
    // supervise outlives svscan: stop the service, then its logger.
    if (existsSync(join(services, 'smtps'))) {
      await run('svc', ['-dx', join(services, 'smtps'), join(services, 'smtps', 'log')]);
    }
  });

  it('runs the README run script under supervise, logging through multilog', async () => {
    const prefix = installPrefix();
    const pki = createTestPki(join(tmp.path, 'pki'));
    const port = await freePort();
    mkdirSync(join(dir, 'env'), { recursive: true });
    mkdirSync(join(dir, 'log', 'main'), { recursive: true });
    const set = (name: string, value: string) => writeFileSync(join(dir, 'env', name), `${value}\n`);
    set('CERTFILE', pki.serverCert);
    set('KEYFILE', pki.serverKey);
    set('IP', '127.0.0.1');
    set('PORT', String(port));
    set('UID', String(NOBODY));
    set('GID', String(NOBODY));
    // The key is root's alone: the server reads it before it drops to $UID/$GID (-U).
    chmodSync(pki.serverKey, 0o600);
    // The program says who it runs as, then echoes.
    writeFileSync(join(dir, 'smtpd'), '#!/bin/sh\nid -u\nexec cat\n', { mode: 0o755 });
    const rules = await runBin(
      'packages/rules',
      'tcprules',
      [join(dir, 'rules.cdb'), join(dir, 'rules.tmp')],
      {
        input: ':allow\n',
      },
    );
    expect(rules.code).toBe(0);
    writeFileSync(join(dir, 'run'), example('run').replaceAll('/opt/ucspi', prefix), { mode: 0o755 });
    writeFileSync(join(dir, 'log', 'run'), example('log/run').replace('smtpslog', 'nobody'), { mode: 0o755 });
    chownSync(join(dir, 'log', 'main'), NOBODY, NOBODY);
    mkdirSync(services);
    symlinkSync(dir, join(services, 'smtps'));

    svscan = spawn('svscan', [services], { stdio: 'ignore' });
    const log = join(dir, 'log', 'main', 'current');
    const logText = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
    await waitUntil(() => /sslserver: status 0\/40/.test(logText()), 20_000);

    const reply = await new Promise<string>((resolve, reject) => {
      const c = tlsConnect({
        host: '127.0.0.1',
        port,
        rejectUnauthorized: false,
        allowHalfOpen: true,
      } as ConnectionOptions);
      let out = '';
      c.on('data', (b: Buffer) => {
        out += b.toString();
      });
      c.on('error', reject);
      c.on('end', () => resolve(out));
      c.end('hello under supervise\n');
    });
    expect(reply).toBe(`${NOBODY}\nhello under supervise\n`);

    // multilog's lines: a TAI64N stamp, then sslserver's own words.
    await waitUntil(() => /sslserver: ended by \d+ status 0/.test(logText()), 10_000);
    expect(logText()).toMatch(/^@4000[0-9a-f]{20} sslserver: status 0\/40/m);
    expect(logText()).toMatch(/^@4000[0-9a-f]{20} sslserver: ok \d+ /m);

    // svc -d: SIGTERM; the server exits and supervise leaves it down.
    expect((await run('svc', ['-d', join(services, 'smtps')])).code).toBe(0);
    const deadline = Date.now() + 10_000;
    let stat = '';
    while (Date.now() < deadline) {
      stat = (await run('svstat', [join(services, 'smtps')])).stdout.toString();
      if (/: down /.test(stat)) break;
    }
    expect(stat).toMatch(/: down \d+ seconds, normally up/);
  }, 60_000);
});

describe.runIf(toolAvailable('systemd-analyze'))('systemd', () => {
  it('the README unit passes systemd-analyze verify', async () => {
    const prefix = installPrefix();
    const unit = join(tmp.path, 'smtps.service');
    writeFileSync(
      unit,
      example('systemd').replaceAll('/opt/ucspi', prefix).replace('/usr/local/bin/smtpd', '/bin/cat'),
    );
    const r = await run('systemd-analyze', ['verify', '--man=no', unit]);
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
  });
});

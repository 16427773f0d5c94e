// TLSTICKETKEYS=FILE: sslservers given the same 48-byte file resume each other's sessions (TLS 1.2
// and 1.3, openssl s_client -sess_out/-sess_in), other keys give a full handshake and never an
// error, a file renamed into place is picked up while serving (the previous key still opens
// tickets), a bad file is fatal at start and only a warning on rotation, and TLSWORKERS handlers
// use the file's keys and its rotations.
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { run, toolAvailable, waitUntil } from '@ucspi/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stopAll } from './_helpers.js';
import {
  ARGS,
  cleanupTmp,
  env,
  fresh,
  keyFile,
  newSession,
  offer,
  ourBin,
  RELOADED,
  renameInto,
  roundRobin,
  sslserver,
  stopBalancers,
  VERSIONS,
} from './_ticket-keys.js';

afterAll(cleanupTmp);
afterEach(async () => {
  await stopAll();
  await stopBalancers();
});

describe.runIf(toolAvailable('openssl'))('TLSTICKETKEYS', () => {
  it("two servers with the same file resume each other's sessions (TLS 1.2 and 1.3)", async () => {
    const keys = keyFile();
    const a = await sslserver({ TLSTICKETKEYS: keys });
    const b = await sslserver({ TLSTICKETKEYS: keys });
    await a.waitLog(new RegExp(`ticketkeys \\d+ ${keys}`));
    for (const v of VERSIONS) {
      const session = await newSession(a.port, v);
      expect(await offer(b.port, v, session), v).toBe(true);
      expect(await offer(a.port, v, session), v).toBe(true);
    }
  });

  it('different files, or none: a full handshake, never an error', async () => {
    const a = await sslserver({ TLSTICKETKEYS: keyFile() });
    const b = await sslserver({ TLSTICKETKEYS: keyFile() });
    const c = await sslserver();
    for (const v of VERSIONS) {
      const session = await newSession(a.port, v);
      expect(await offer(b.port, v, session), v).toBe(false);
      expect(await offer(c.port, v, session), v).toBe(false);
      // The session itself was good: its own server resumes it.
      expect(await offer(a.port, v, session), v).toBe(true);
    }
  });

  it('rotation by rename: new sessions use the new key, the previous key still opens tickets', async () => {
    const first = randomBytes(48);
    const second = randomBytes(48);
    const rotating = keyFile(first);
    const a = await sslserver({ TLSTICKETKEYS: rotating });
    const withSecond = await sslserver({ TLSTICKETKEYS: keyFile(second) });
    const before = {
      '-tls1_2': await newSession(a.port, '-tls1_2'),
      '-tls1_3': await newSession(a.port, '-tls1_3'),
    };
    for (const v of VERSIONS) expect(await offer(withSecond.port, v, before[v]), v).toBe(false);

    renameInto(rotating, second);
    await a.waitLogCount(RELOADED, 1);
    for (const v of VERSIONS) {
      // Sealed under the new key: the other server with that key opens it.
      const after = await newSession(a.port, v);
      expect(await offer(withSecond.port, v, after), v).toBe(true);
      // Sealed a moment before the rotation: still opened (the previous key is kept).
      expect(await offer(a.port, v, before[v]), v).toBe(true);
    }

    // One more rotation: the first key is gone, its tickets get a full handshake, no error.
    renameInto(rotating, randomBytes(48));
    await a.waitLogCount(RELOADED, 2);
    for (const v of VERSIONS) expect(await offer(a.port, v, before[v]), v).toBe(false);
    // No handshake failed and nothing was warned about (but the development certificate).
    expect(a.stderr()).not.toMatch(/: error: |: fatal: |: warning: (?!.*DEVELOPMENT certificate)/);
  });

  describe('a bad file at start is fatal, naming it', () => {
    const start = (file: string) =>
      run(process.execPath, [ourBin, ...ARGS], { env: env({ TLSTICKETKEYS: file }), timeoutMs: 15_000 });

    it('47 bytes: exit 100', async () => {
      const file = keyFile(randomBytes(47));
      const r = await start(file);
      expect(r.code).toBe(100);
      expect(r.stderr.toString()).toContain(
        `sslserver: fatal: TLSTICKETKEYS ${file} must hold exactly 48 bytes, not 47\n`,
      );
      expect(r.stdout.toString()).toBe('');
    });

    it('missing or unreadable: exit 111', async () => {
      const missing = fresh('missing');
      const r = await start(missing);
      expect(r.code).toBe(111);
      expect(r.stderr.toString()).toContain(
        `sslserver: fatal: unable to read TLSTICKETKEYS ${missing}: no such file\n`,
      );
      // A directory cannot be read as a file (tests may run as root, where file modes do not stop reads).
      const dir = fresh('dir');
      mkdirSync(dir);
      const d = await start(dir);
      expect(d.code).toBe(111);
      expect(d.stderr.toString()).toMatch(
        new RegExp(`sslserver: fatal: unable to read TLSTICKETKEYS ${dir}: .+\\n`),
      );
    });
  });

  it('a bad file on rotation: a warning, the current keys kept, still serving', async () => {
    const keys = randomBytes(48);
    const rotating = keyFile(keys);
    const a = await sslserver({ TLSTICKETKEYS: rotating });
    const same = await sslserver({ TLSTICKETKEYS: keyFile(keys) });
    const session = await newSession(a.port, '-tls1_3');

    renameInto(rotating, randomBytes(47));
    await a.waitLog(
      new RegExp(
        `sslserver: warning: TLSTICKETKEYS ${rotating} must hold exactly 48 bytes, not 47, keeping the current ticket keys\\n`,
      ),
    );
    rmSync(rotating);
    await a.waitLog(
      new RegExp(
        `sslserver: warning: unable to read TLSTICKETKEYS ${rotating}: no such file, keeping the current ticket keys\\n`,
      ),
    );
    // Still serving, with the same keys: both its own and the other server's tickets open.
    expect(await offer(a.port, '-tls1_3', session)).toBe(true);
    const fromSame = await newSession(same.port, '-tls1_2');
    expect(await offer(a.port, '-tls1_2', fromSame)).toBe(true);
    expect(a.stderr()).not.toMatch(RELOADED);

    // A good file afterwards is picked up: the check goes on after a bad one.
    renameInto(rotating, randomBytes(48));
    await a.waitLogCount(RELOADED, 1);
    expect(a.proc.exitCode).toBeNull();
  });

  it('TLSWORKERS=2: every handler uses the file, and its rotation', async () => {
    const first = randomBytes(48);
    const second = randomBytes(48);
    const rotating = keyFile(first);
    const workers = await sslserver({ TLSTICKETKEYS: rotating, TLSWORKERS: '2' });
    await workers.waitLog(/info: TLS workers \d+ \d+/);
    const withFirst = await sslserver({ TLSTICKETKEYS: keyFile(first) });
    const withSecond = await sslserver({ TLSTICKETKEYS: keyFile(second) });
    for (const v of VERSIONS) {
      const session = await newSession(withFirst.port, v);
      // Two connections in turn: one to each handler (dealt in turn among equals).
      expect(await offer(workers.port, v, session), v).toBe(true);
      expect(await offer(workers.port, v, session), v).toBe(true);
      const theirs = await newSession(workers.port, v);
      expect(await offer(withFirst.port, v, theirs), v).toBe(true);
    }

    renameInto(rotating, second);
    await workers.waitLogCount(RELOADED, 1);
    for (const v of VERSIONS)
      for (let i = 0; i < 2; i++) {
        const after = await newSession(workers.port, v);
        expect(await offer(withSecond.port, v, after), `${v} #${i}`).toBe(true);
      }
  });

  it.runIf(process.getuid?.() === 0)(
    'SSL_CHROOT: the confined handler, which cannot see the file, gets its keys and rotations',
    async () => {
      const first = randomBytes(48);
      const second = randomBytes(48);
      const rotating = keyFile(first);
      const jail = fresh('jail');
      mkdirSync(jail);
      // An empty chroot and an unprivileged id: only the server process can read the file.
      const jailed = { TLSTICKETKEYS: rotating, SSL_CHROOT: jail, SSL_UID: '65534', SSL_GID: '65534' };
      const confined = await sslserver(jailed);
      const withFirst = await sslserver({ TLSTICKETKEYS: keyFile(first) });
      const withSecond = await sslserver({ TLSTICKETKEYS: keyFile(second) });
      const session = await newSession(withFirst.port, '-tls1_3');
      expect(await offer(confined.port, '-tls1_3', session)).toBe(true);

      renameInto(rotating, second);
      await confined.waitLogCount(RELOADED, 1);
      const after = await newSession(confined.port, '-tls1_2');
      expect(await offer(withSecond.port, '-tls1_2', after)).toBe(true);
    },
  );
});

describe.runIf(toolAvailable('openssl') && toolAvailable('haproxy'))('TLSTICKETKEYS behind HAProxy', () => {
  const oks = /^sslserver: ok /gm;
  for (const shared of [true, false])
    it(`round robin over two PROXYPROTO=1 instances, ${shared ? 'one file: resumed on the other' : 'no file: a full handshake on the other'}`, async () => {
      const keys = keyFile();
      const extra = (): Record<string, string> => ({
        PROXYPROTO: '1',
        ...(shared ? { TLSTICKETKEYS: keys } : {}),
      });
      const a = await sslserver(extra());
      const b = await sslserver(extra());
      const front = await roundRobin([a.port, b.port]);
      let served = 0;
      for (const v of VERSIONS) {
        // Two connections in a row: one to each instance, in either order.
        const session = await newSession(front, v);
        expect(await offer(front, v, session), v).toBe(shared);
        served += 2;
        await waitUntil(
          () => (a.stderr().match(oks)?.length ?? 0) + (b.stderr().match(oks)?.length ?? 0) === served,
        );
        expect(a.stderr().match(oks)?.length, v).toBe(served / 2);
        expect(b.stderr().match(oks)?.length, v).toBe(served / 2);
      }
    });
});

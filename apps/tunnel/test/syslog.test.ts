// syslog = yes (stunnel's default): every log line also goes to syslog as stunnel 5.68 sends it
// (`<PRI>Mmm dd hh:mm:ss stunnel: LOGn[ID]: text`, observed from Debian's stunnel4 through a
// receiver at /dev/log), here to a receiver the test binds (UCSPI_SYSLOG_SOCKET): a real
// AF_UNIX SOCK_DGRAM socket, Python's (Node.js has none).
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { DatagramSender } from '@ucspi/exec';
import {
  createTestPki,
  type DatagramReceiver,
  freePort,
  run,
  startDatagramReceiver,
  type TestPki,
  tempDir,
  toolAvailable,
  waitUntil,
  watchLog,
} from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backend, stopAll, TUNNEL, tlsTalk, writeConfig } from './_helpers.js';

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
const procs: ChildProcess[] = [];
beforeAll(() => {
  tmp = tempDir('ucspi-tunnel-syslog-');
  pki = createTestPki(join(tmp.path, 'pki'));
});
afterEach(async () => {
  for (const p of procs.splice(0)) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await new Promise((r) => p.once('exit', r));
    }
  }
  await stopAll();
});
afterAll(() => tmp.cleanup());

/** A syslog receiver bound at a new path, stopped after the test. */
let receivers = 0;
async function receiver(): Promise<DatagramReceiver> {
  const r = await startDatagramReceiver(join(tmp.path, `log-${++receivers}`));
  procs.push(r.proc);
  return r;
}

/** ucspi-tunnel on `conf` with its syslog socket at `path`; resolves once it accepts. */
async function tunnel(conf: string, path: string, ready = /Accepting new connections/) {
  const p = spawn(process.execPath, [TUNNEL, conf], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, UCSPI_SYSLOG_SOCKET: path },
  });
  procs.push(p);
  const log = watchLog(p.stderr!);
  await log.waitFor(ready);
  return log;
}

const section = (port: number, b: number) =>
  `[web]\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${b}\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n`;

/** syslog(3)'s form of a line, as stunnel 5.68 sends it. */
const line = (pri: number, tag: string, rest: string) =>
  new RegExp(`^<${pri}>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d ${tag}: ${rest}$`);

describe.runIf(toolAvailable('python3'))('syslog', () => {
  it('by default every line also goes to syslog, tagged stunnel, facility daemon', async () => {
    const r = await receiver();
    const b = await backend();
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'default.conf',
      `foreground = yes\ndebug = info\n${section(port, b.port)}`,
    );
    const log = await tunnel(conf, r.path);
    expect(await tlsTalk(port, 'hi')).toBe('HI');
    await log.waitFor(/Connection closed/);
    await waitUntil(() => r.got().some((l) => l.includes('Connection closed')));
    const got = r.got();
    expect(got).toContainEqual(
      expect.stringMatching(line(29, 'stunnel', 'LOG5\\[ui\\]: Configuration successful')),
    );
    expect(got).toContainEqual(
      expect.stringMatching(
        line(29, 'stunnel', 'LOG5\\[0\\]: Service \\[web\\] accepted connection from 127\\.0\\.0\\.1:\\d+'),
      ),
    );
    expect(got).toContainEqual(
      expect.stringMatching(line(30, 'stunnel', 'LOG6\\[0\\]: TLSv1\\.3 ciphersuite: .*')),
    );
    // The same lines as on stderr, in the same order.
    const fromStderr = log
      .text()
      .split('\n')
      .filter((l) => / LOG\d\[/.test(l))
      .map((l) => l.slice(l.indexOf(' LOG') + 1));
    expect(got.map((l) => l.slice(l.indexOf(': ') + 2))).toEqual(fromStderr);
  });

  it('`service` is the tag, `debug = FACILITY.LEVEL` the facility and the filter', async () => {
    const r = await receiver();
    const b = await backend();
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'tagged.conf',
      `foreground = yes\nservice = imaps-front\ndebug = local3.notice\n${section(port, b.port)}`,
    );
    // At notice, the last line before accepting is the one about the configuration.
    await tunnel(conf, r.path, /Configuration successful/);
    await waitUntil(() => r.got().some((l) => l.includes('Configuration successful')));
    // Listening a moment later: the client tries until it is.
    let answer: string | undefined;
    while (answer === undefined) answer = await tlsTalk(port, 'x').catch(() => undefined);
    expect(answer).toBe('X');
    await waitUntil(() => r.got().some((l) => l.includes('Connection closed')));
    // local3 = 19: PRI 19 * 8 + 5.
    expect(r.got()).toContainEqual(
      expect.stringMatching(line(157, 'imaps-front', 'LOG5\\[0\\]: Connection closed: .*')),
    );
    expect(r.got().filter((l) => /LOG[67]\[/.test(l))).toEqual([]);
  });

  it('syslog = no: nothing is sent', async () => {
    const r = await receiver();
    const b = await backend();
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'off.conf',
      `foreground = yes\nsyslog = no\ndebug = info\n${section(port, b.port)}`,
    );
    const log = await tunnel(conf, r.path);
    expect(await tlsTalk(port, 'x')).toBe('X');
    await log.waitFor(/Connection closed/);
    // A marker of ours, sent after everything the tunnel logged: the receiver gets it alone.
    const mark = new DatagramSender(r.path);
    expect(mark.send(Buffer.from('MARK'))).toBe(0);
    mark.close();
    await waitUntil(() => r.got().length > 0);
    expect(r.got()).toEqual(['MARK']);
  });

  it('bad values are configuration errors naming the line (exit 1)', async () => {
    const bad = writeConfig(
      tmp.path,
      'bad.conf',
      'foreground = yes\nsyslog = maybe\n[x]\naccept = 0\nconnect = 1\n',
    );
    const r1 = await run(process.execPath, [TUNNEL, bad]);
    expect(r1.code).toBe(1);
    expect(r1.stderr.toString()).toContain(
      `${bad}:2: "syslog = maybe": The argument needs to be either 'yes' or 'no'`,
    );
    const fac = writeConfig(
      tmp.path,
      'fac.conf',
      'foreground = yes\ndebug = nowhere.info\n[x]\naccept = 0\nconnect = 1\n',
    );
    const r2 = await run(process.execPath, [TUNNEL, fac]);
    expect(r2.code).toBe(1);
    expect(r2.stderr.toString()).toContain(`${fac}:2: "debug = nowhere.info": Illegal syslog facility`);
  });
});

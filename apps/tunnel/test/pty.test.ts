// `pty = yes`: the `exec` program on a new pseudo terminal (through @ucspi/exec's addon), as
// stunnel 5 does it; TLS clients are openssl s_client and node:tls on loopback; bad input compared
// with Debian's stunnel4 where it is installed.

import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { canSpawnPty } from '@ucspi/exec';
import { createTestPki, freePort, run, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backend, startDaemon, stopAll, TUNNEL, tlsTalk, writeConfig } from './_helpers.js';

let pki: TestPki;
let tmp: { path: string; cleanup: () => void };
const hasStunnel = toolAvailable('stunnel4');
const hasOpenssl = toolAvailable('openssl');

beforeAll(() => {
  tmp = tempDir('ucspi-tunnel-pty-');
  pki = createTestPki(join(tmp.path, 'pki'));
});
afterEach(stopAll);
afterAll(() => tmp.cleanup());

/** A shell script in the temporary folder; returns its path. */
function script(name: string, body: string): string {
  const path = join(tmp.path, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** A server section running `/bin/sh SCRIPT` on a terminal. */
const ptySection = (port: number, prog: string, extra = '') =>
  `[t]\naccept = 127.0.0.1:${port}\nexec = /bin/sh\nexecArgs = sh ${prog}\npty = yes\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n${extra}`;

/**
 * A node:tls client that sends `input` (without ending its side) and collects what comes until the
 * server's end, then ends its own side.
 */
function tlsListen(port: number, input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = tlsConnect({
      port,
      host: '127.0.0.1',
      rejectUnauthorized: false,
      allowHalfOpen: true,
    } as ConnectionOptions);
    const chunks: Buffer[] = [];
    c.on('data', (b: Buffer) => chunks.push(b));
    c.on('error', reject);
    c.on('end', () => {
      c.end();
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    c.once('secureConnect', () => {
      if (input) c.write(input);
    });
  });
}

describe.runIf(canSpawnPty)('pty = yes', () => {
  it("the program's stdin and stdout are a terminal; its end ends the connection with all its output", async () => {
    const prog = script(
      'tty.sh',
      [
        'tty',
        'test -t 0 && echo stdin-is-a-tty',
        'echo "REMOTE_HOST=$REMOTE_HOST"',
        'seq 1 20000',
        'printf "last line without newline"',
      ].join('\n'),
    );
    const port = await freePort();
    const conf = writeConfig(tmp.path, 'pty.conf', `foreground = yes\ndebug = 7\n${ptySection(port, prog)}`);
    const t = await startDaemon('ucspi-tunnel', conf);
    const out = await tlsListen(port);
    const lines = out.split('\r\n');
    expect(lines[0]).toMatch(/^\/dev\/pts\/\d+$/);
    expect(lines.slice(1, 3)).toEqual(['stdin-is-a-tty', 'REMOTE_HOST=127.0.0.1']);
    expect(lines.slice(3, -1)).toHaveLength(20000);
    expect(lines.at(-2)).toBe('20000');
    expect(lines.at(-1)).toBe('last line without newline');
    await t.log.waitFor(
      new RegExp(`Connection closed: ${out.length} byte\\(s\\) sent to TLS, 0 byte\\(s\\) sent to socket`),
    );
    const log = t.log.text();
    expect(log).toContain(`LOG7[0]: TTY=${lines[0]} allocated`);
    expect(log).toMatch(/LOG6\[0\]: Child process \d+ finished with code 0/);
  });

  it.runIf(hasOpenssl)(
    'openssl s_client: input goes through the terminal (echoed, line by line)',
    async () => {
      const prog = script('read.sh', 'read line; echo "got $line"; test -t 0 && echo yes');
      const port = await freePort();
      const conf = writeConfig(
        tmp.path,
        'pty-read.conf',
        `foreground = yes\ndebug = info\n${ptySection(port, prog)}`,
      );
      await startDaemon('ucspi-tunnel', conf);
      // -ign_eof: the client's stdin ending must not end the session (that would hang up the terminal).
      const s = spawn('openssl', ['s_client', '-quiet', '-ign_eof', '-connect', `127.0.0.1:${port}`], {
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      const chunks: Buffer[] = [];
      s.stdout.on('data', (b: Buffer) => chunks.push(b));
      const exited = new Promise<number | null>((r) => s.once('close', (code) => r(code)));
      const hard = setTimeout(() => s.kill('SIGKILL'), 15_000);
      s.stdin.end('hi there\n');
      const code = await exited.finally(() => clearTimeout(hard));
      // The program's end ended the session: s_client saw the server close and exited by itself.
      expect(code).toBe(0);
      expect(Buffer.concat(chunks).toString()).toBe('hi there\r\ngot hi there\r\nyes\r\n');
    },
  );

  it("the client's end hangs the terminal up: the program gets SIGHUP, the connection closes", async () => {
    const prog = script(
      'hup.sh',
      'trap \'echo "prog: got SIGHUP" >&2; exit 0\' HUP\necho ready\nsleep 60 & wait',
    );
    const port = await freePort();
    const conf = writeConfig(
      tmp.path,
      'pty-hup.conf',
      `foreground = yes\ndebug = info\n${ptySection(port, prog)}`,
    );
    const t = await startDaemon('ucspi-tunnel', conf);
    const out = await new Promise<string>((resolve, reject) => {
      const c = tlsConnect({
        port,
        host: '127.0.0.1',
        rejectUnauthorized: false,
        allowHalfOpen: true,
      } as ConnectionOptions);
      let text = '';
      c.on('data', (b: Buffer) => {
        text += b.toString();
        if (text.includes('ready\r\n')) c.end();
      });
      c.on('error', reject);
      c.on('end', () => resolve(text));
    });
    expect(out).toBe('ready\r\n');
    // The program's stderr is the tunnel's (inherited, as for exec without pty).
    await t.log.waitFor(/prog: got SIGHUP/);
    await t.log.waitFor(/Child process \d+ finished with code 0/);
    await t.log.waitFor(/Connection closed: 7 byte\(s\) sent to TLS, 0 byte\(s\) sent to socket/);
  });

  it.runIf(hasStunnel)(
    'as stunnel4 with the same file: the same terminal as seen by the program',
    async () => {
      const prog = script(
        'same.sh',
        'tty | sed "s/[0-9]*$/N/"; test -t 0 && echo yes; stty -g | cut -d: -f1-4; read x; echo "[$x]"',
      );
      const outputs: string[] = [];
      for (const cmd of ['ucspi-tunnel', 'stunnel4'] as const) {
        const port = await freePort();
        const conf = writeConfig(
          tmp.path,
          `pty-${cmd}.conf`,
          `foreground = yes\npid =\ndebug = info\n${ptySection(port, prog)}`,
        );
        await startDaemon(cmd, conf);
        outputs.push(await tlsListen(port, 'abc\n'));
        await stopAll();
      }
      expect(outputs[0]).toMatch(
        /^abc\r\n\/dev\/pts\/N\r\nyes\r\n[0-9a-f]+:[0-9a-f]+:[0-9a-f]+:[0-9a-f]+\r\n\[abc\]\r\n$/,
      );
      // Echo, canonical input, \r\n and the terminal's flags (stty -g) as stunnel leaves them.
      expect(outputs[0]).toBe(outputs[1]);
    },
  );
});

describe('bad input', () => {
  /** `ucspi-tunnel -t` on a configuration; its stderr lines. */
  const check = async (name: string, text: string, env: NodeJS.ProcessEnv = process.env) => {
    const conf = writeConfig(tmp.path, name, text);
    const r = await run(process.execPath, [TUNNEL, '-t', conf], { env });
    return { conf, code: r.code, err: r.stderr.toString() };
  };
  const section = (extra: string) =>
    `[t]\naccept = 127.0.0.1:1\nexec = /bin/cat\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n${extra}`;

  it('a value other than yes or no fails naming the line, as stunnel', async () => {
    const r = await check('pty-bad.conf', section('pty = maybe\n'));
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      `[!] ${r.conf}:6: "pty = maybe": The argument needs to be either 'yes' or 'no'\n[!] Configuration failed`,
    );
    if (hasStunnel) {
      const s = await run('stunnel4', [r.conf]);
      expect(s.code).toBe(1);
      expect(s.stderr.toString()).toContain(
        `[!] ${r.conf}:6: "pty = maybe": The argument needs to be either 'yes' or 'no'`,
      );
    }
    // Any case, as stunnel's other yes/no options.
    expect((await check('pty-case.conf', section('pty = YES\n'))).code).toBe(canSpawnPty ? 0 : 1);
  });

  it('without exec it is accepted with a warning (stunnel accepts it and has no use for it)', async () => {
    const b = await backend();
    const port = await freePort();
    const text = `foreground = yes\ndebug = info\n[t]\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${b.port}\npty = yes\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\n`;
    const r = await check('pty-noexec.conf', text);
    expect(r.code).toBe(canSpawnPty ? 0 : 1);
    if (!canSpawnPty) return;
    expect(r.err).toContain(`${r.conf}:3: "[t]": pty = yes without exec: not used`);
    // The service relays to its backend as without the line.
    const t = await startDaemon('ucspi-tunnel', r.conf);
    expect(await tlsTalk(port, 'plain relay')).toBe('PLAIN RELAY');
    expect(t.log.text()).toContain('pty = yes without exec: not used');
  });

  it('without the native addon pty = yes is refused naming the line, never ignored', async () => {
    const r = await check('pty-nonative.conf', section('pty = yes\n'), {
      ...process.env,
      UCSPI_EXEC_NATIVE: '0',
    });
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      `[!] ${r.conf}:6: "pty = yes": pty = yes needs the native addon of @ucspi/exec (Linux x64/arm64): not loaded here`,
    );
    // pty = no needs nothing.
    const ok = await check('pty-no-nonative.conf', section('pty = no\n'), {
      ...process.env,
      UCSPI_EXEC_NATIVE: '0',
    });
    expect(ok.code).toBe(0);
  });
});

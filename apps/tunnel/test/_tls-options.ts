// Helpers of tls-options.test.ts: a greeting backend, server sections, ucspi-tunnel or stunnel4 on
// them, openssl s_client, and the run of one bad configuration through both daemons.
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { createTestPki, run, type TestPki, tempDir, toolAvailable } from '@ucspi/testkit';
import { expect } from 'vitest';
import { startDaemon, TUNNEL, writeConfig } from './_helpers.js';

export const hasStunnel = toolAvailable('stunnel4');
export const hasOpenssl = toolAvailable('openssl');

/** What every test shares, made by {@link setUpFixture}. */
export const fx = {
  pki: undefined as unknown as TestPki,
  /** The temporary folder. */
  dir: '',
  /** A backend that writes `ready` and closes. */
  backendPort: 0,
};
let tmp: { path: string; cleanup: () => void } | undefined;
let greeter: Server | undefined;

/** beforeAll: the test PKI, the folder, the greeting backend. */
export async function setUpFixture(): Promise<void> {
  tmp = tempDir('ucspi-tunnel-tlsopt-');
  fx.dir = tmp.path;
  fx.pki = createTestPki(join(tmp.path, 'pki'));
  // The backend greets and closes: s_client (with -ign_eof) then reads to the end, so a TLS 1.3
  // ticket sent after the handshake has arrived before it writes -sess_out.
  greeter = createServer((s) => {
    s.on('error', () => undefined);
    s.end('ready\n');
  });
  await new Promise<void>((r) => greeter!.listen(0, '127.0.0.1', r));
  fx.backendPort = (greeter.address() as { port: number }).port;
}

/** afterAll. */
export function tearDownFixture(): void {
  greeter?.close();
  tmp?.cleanup();
}

let fileNo = 0;

/** A server section on `port` to the greeting backend, with `extra` lines. */
export const section = (name: string, port: number, extra = '') =>
  `[${name}]\naccept = 127.0.0.1:${port}\nconnect = 127.0.0.1:${fx.backendPort}\ncert = ${fx.pki.serverChain}\n` +
  `key = ${fx.pki.serverKey}\nCAfile = ${fx.pki.caBundle}\n${extra}`;

/** Start ucspi-tunnel (or stunnel4, the oracle) on `sections`; resolves once it accepts on `last`. */
export async function tunnel(sections: string, kind: 'ucspi-tunnel' | 'stunnel4' = 'ucspi-tunnel', last = 0) {
  const conf = writeConfig(fx.dir, `t${fileNo++}.conf`, `foreground = yes\ndebug = info\n${sections}`);
  const ready = kind === 'stunnel4' ? new RegExp(`bound to 127\\.0\\.0\\.1:${last}\\b`) : undefined;
  return { conf, daemon: await startDaemon(kind, conf, ready) };
}

/** openssl s_client against `port` with `args`; its whole output (stdout and stderr). */
export async function sClient(port: number, args: string[]): Promise<string> {
  const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-ign_eof', ...args], {
    timeoutMs: 15_000,
  });
  return `${r.stdout}${r.stderr}`;
}

/** A fresh path for s_client's -sess_out. */
export const sessionFile = () => join(fx.dir, `sess${fileNo++}.pem`);
export const reused = (out: string) => /^Reused, TLSv1\.[23]/m.test(out);
export const fresh = (out: string) => /^New, TLSv1\.[23]/m.test(out);

/** The `[!]` lines of a run, without the mark. */
export const errors = (s: string) =>
  s
    .split('\n')
    .filter((l) => l.startsWith('[!]'))
    .map((l) => l.replace(/^\[!\] /, ''));

/**
 * Run one bad configuration through ucspi-tunnel and stunnel4: exit 1 and the same error lines.
 * `sameWords: false` for what ucspi-tunnel refuses and stunnel accepts (its lines are returned).
 */
export async function badConfig(name: string, lines: string, sameWords = true): Promise<string[]> {
  const conf = writeConfig(
    fx.dir,
    `bad-${name.replace(/\W+/g, '-')}.conf`,
    `foreground = yes\n${section('svc', 1, lines)}`,
  );
  const ours = await run(process.execPath, [TUNNEL, conf]);
  const mine = errors(ours.stderr.toString());
  expect(ours.code, ours.stderr.toString()).toBe(1);
  expect(mine.at(-1)).toBe('Configuration failed');
  if (sameWords && hasStunnel) {
    const theirs = await run('stunnel4', [conf], { timeoutMs: 10_000 });
    expect(theirs.code).toBe(1);
    expect(mine).toEqual(errors(theirs.stderr.toString()));
  }
  return mine;
}

// Helpers of ticket-keys.test.ts: ticket key files and their rotation by rename, our sslserver,
// openssl s_client sessions saved and offered, and HAProxy round robin in front of instances.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, run, startHaproxy, tempDir } from '@ucspi/testkit';
import { expect } from 'vitest';
import { type Running, startServer } from './_helpers.js';

/** The built sslserver. */
export const ourBin = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin', 'sslserver.js');
const tmp = tempDir();
const balancers: ChildProcess[] = [];

/** afterAll: remove the temporary folder. */
export const cleanupTmp = () => tmp.cleanup();

/** afterEach: stop the balancers started since the last call. */
export async function stopBalancers(): Promise<void> {
  for (const b of balancers.splice(0)) {
    b.kill('SIGKILL');
    if (b.exitCode === null && b.signalCode === null) await once(b, 'exit');
  }
}

export const VERSIONS = ['-tls1_2', '-tls1_3'] as const;
export type Version = (typeof VERSIONS)[number];

let fileNo = 0;
export const fresh = (what: string) => join(tmp.path, `${what}${fileNo++}`);

/** A ticket key file of `bytes` (default: 48 random bytes). */
export function keyFile(bytes: Buffer = randomBytes(48)): string {
  const path = fresh('keys');
  writeFileSync(path, bytes);
  return path;
}

/** Replace `path` the way an operator rotates it: a new file renamed over the old one. */
export function renameInto(path: string, bytes: Buffer): void {
  const next = fresh('next');
  writeFileSync(next, bytes);
  renameSync(next, path);
}

/** The servers' environment: the inherited one without TLS settings, plus `extra`. */
export function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  // Every server of the run uses the same development certificate (one cache).
  const {
    CERTFILE: _c,
    KEYFILE: _k,
    TLSWORKERS: _w,
    TLSTICKETKEYS: _t,
    PROXYPROTO: _p,
    ...inherited
  } = process.env;
  return { ...inherited, XDG_CACHE_HOME: join(tmp.path, 'cache'), ...extra };
}

export const ARGS = ['-1', '-v', '-H', '-R', '-l', 'localhost', '127.0.0.1', '0', 'sh', '-c', 'echo ready'];

/** Our sslserver, -v, answering `ready` to each connection, with `extra` in its environment. */
export function sslserver(extra: Record<string, string> = {}): Promise<Running> {
  return startServer(process.execPath, [ourBin, ...ARGS], env(extra));
}

/** What one openssl s_client run saw: resumed or not, and the program's greeting. */
export interface Seen {
  reused: boolean;
  greeted: boolean;
  out: string;
}

/**
 * openssl s_client against `port` with `version` and `args` (-sess_out, -sess_in). -ign_eof makes it
 * read to the server's end, so a TLS 1.3 ticket, sent after the handshake, is in -sess_out.
 */
export async function sClient(port: number, version: Version, args: string[]): Promise<Seen> {
  const r = await run(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${port}`, '-ign_eof', version, ...args],
    { timeoutMs: 15_000 },
  );
  const out = `${r.stdout}${r.stderr}`;
  return { reused: /^Reused, TLSv1\.[23]/m.test(out), greeted: /^ready$/m.test(out), out };
}

/** A new session on `port`, saved to a fresh file; asserts that it was a full handshake. */
export async function newSession(port: number, version: Version): Promise<string> {
  const file = fresh('sess');
  const seen = await sClient(port, version, ['-sess_out', file]);
  expect(seen.greeted, seen.out).toBe(true);
  expect(seen.reused, seen.out).toBe(false);
  return file;
}

/** Offer the session in `file` to `port`: whether it was resumed (and the program answered). */
export async function offer(port: number, version: Version, file: string): Promise<boolean> {
  const seen = await sClient(port, version, ['-sess_in', file]);
  // Resumed or not, the connection goes on to the program: never a failed handshake.
  expect(seen.greeted, seen.out).toBe(true);
  expect(seen.out).not.toMatch(/alert|handshake failure/);
  return seen.reused;
}

/** The -v line of a rotation picked up. */
export const RELOADED = /sslserver: info: ticket keys reloaded from /g;

/** Debian's HAProxy, TCP mode, round robin with send-proxy-v2 over `backends`; its front port. */
export async function roundRobin(backends: number[]): Promise<number> {
  const front = await freePort();
  const servers = backends.map((port, i) => `  server s${i} 127.0.0.1:${port} send-proxy-v2`);
  const section = [`listen front\n  bind 127.0.0.1:${front}\n  balance roundrobin`, ...servers];
  balancers.push(await startHaproxy(tmp.path, section, [front]));
  return front;
}

// Debian's HAProxy as the real load balancer in front of servers under test (PROXY protocol, drain,
// shared ticket keys): a configuration written for the test, run in the foreground.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findTool } from './tools.js';
import { waitUntil } from './wait.js';

/** Whether `port` is listening on 127.0.0.1, read from /proc/net/tcp (no connection is made). */
function listening(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8').includes(`0100007F:${hex} 00000000:0000 0A`);
}

/**
 * Start HAProxy in TCP mode with `sections` (its `listen` sections, after defaults of mode tcp and
 * generous timeouts), the file written into `dir`; resolves once every port of `ports` listens on
 * 127.0.0.1. Readiness is read from /proc/net/tcp rather than by connecting, which a round-robin
 * front would deal to a backend (shifting the turns) and a PROXY backend would log as a bad header.
 * The caller stops the process (SIGKILL in afterEach is fine: it keeps no state).
 */
export async function startHaproxy(dir: string, sections: string[], ports: number[]): Promise<ChildProcess> {
  const cfg = join(dir, `haproxy-${ports.join('-')}.cfg`);
  const defaults = [
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 30s',
    '  timeout server 30s',
  ];
  writeFileSync(cfg, [...defaults, ...sections, ''].join('\n'));
  const proc = spawn(findTool('haproxy') ?? 'haproxy', ['-db', '-f', cfg], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  proc.stderr?.on('data', (b: Buffer) => {
    log += b.toString();
  });
  const ready = () => ports.every(listening);
  await waitUntil(() => proc.exitCode !== null || ready()).catch(() => undefined);
  if (!ready()) {
    proc.kill('SIGKILL');
    throw new Error(`haproxy did not start: ${log}`);
  }
  return proc;
}

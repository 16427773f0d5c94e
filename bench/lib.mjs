// Helpers shared by the benchmarks: free ports, waiting for a listener, /proc CPU times and Pss,
// medians, starting and stopping the servers under test.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A TCP port free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolve once something accepts connections on 127.0.0.1:port (5 s at most). */
export async function waitPort(port) {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((r) => {
      const c = createConnection({ port, host: '127.0.0.1' });
      c.on('connect', () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${port}`);
}

/** CPU seconds of a process (utime+stime), with its reaped children's (cutime+cstime) if asked. */
export function cpuOf(pid, withChildren = true) {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  const own = Number(f[11]) + Number(f[12]);
  return (withChildren ? own + Number(f[13]) + Number(f[14]) : own) / 100;
}

/**
 * Starts a long-running process for a benchmark: stdout ignored, the tail of stderr kept
 * (`p.errText()`) and its lines counted (`p.errLines()`), the process added to `registry` (if given)
 * so that the caller can kill whatever is left on an early exit.
 */
export function startProcess(cmd, args, { env = {}, registry } = {}) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let tail = '';
  let lines = 0;
  p.stderr.on('data', (b) => {
    tail = (tail + b).slice(-4000);
    for (const c of b) if (c === 10) lines++;
  });
  p.errText = () => tail;
  p.errLines = () => lines;
  registry?.push(p);
  return p;
}

/** TERM, then KILL 2 s later if still there; resolves once the process has exited. */
export function stopProcess(p) {
  return new Promise((r) => {
    if (p.exitCode !== null || p.signalCode !== null) return r();
    p.once('exit', r);
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), 2000).unref();
  });
}

/** Pss (KiB, /proc/PID/smaps_rollup) of pid itself (`self`) and of all its descendants (`children`). */
export function pssTree(pid) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch {}
  }
  const pss = (p) => {
    try {
      return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
    } catch {
      return 0;
    }
  };
  let kids = 0;
  const walk = (p) => {
    for (const c of children.get(p) ?? []) {
      kids += pss(c);
      walk(c);
    }
  };
  walk(pid);
  return { self: pss(pid), children: kids };
}

/**
 * A self-signed RSA-2048 certificate for 127.0.0.1 (openssl req, valid 2 days) in `dir`: the one
 * every TLS bench serves. Returns the paths of the certificate and its key.
 */
export function selfSignedCert(dir) {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

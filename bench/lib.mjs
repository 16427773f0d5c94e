// Helpers shared by the benchmarks: free ports, waiting for a listener, /proc CPU times, medians.
import { readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';

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

// The load clients of bench/server, used here over TLS against a tunnel: the C one (load.c, compiled
// by run.mjs) for connections and bulk data, the Node.js one (load.mjs) for latency and idle
// connections. Each runs as its own process and prints one JSON line.
import { execFileSync, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pssTree, sleep } from '../lib.mjs';

const loadMjs = join(dirname(fileURLToPath(import.meta.url)), '..', 'server', 'load.mjs');

/** One load client run: `conns N CONC` and `bulk MIB` through loadBin, `latency N` through load.mjs. */
export function load(loadBin, mode, port, ...args) {
  const [cmd, argv] =
    mode === 'bulk' || mode === 'conns'
      ? [loadBin, [mode, 'tls', String(port), ...args.map(String)]]
      : [process.execPath, [loadMjs, mode, 'tls', String(port), ...args.map(String)]];
  const out = execFileSync(cmd, argv, { timeout: 300_000 });
  return JSON.parse(out.toString().trim().split('\n').pop());
}

/**
 * Pss per idle connection (KiB): `count` TLS connections opened and held by load.mjs, the Pss of the
 * tunnel and its descendants with them open minus before; `pss` counts the descendants (exec mode's
 * programs) and the tunnel, `pssOwn` the tunnel alone.
 */
export async function idleMemory(port, pid, count, registry, warm = true) {
  // One round first, so that a garbage-collected runtime has grown to its steady size before the
  // baseline is taken (otherwise the heap shrinking after the load phases shows as negative).
  if (warm) await idleMemory(port, pid, count, registry, false);
  await sleep(300);
  const base = pssTree(pid);
  const p = spawn(process.execPath, [loadMjs, 'idle', 'tls', String(port), String(count)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  registry.push(p);
  const ready = await new Promise((resolve) => {
    p.stdout.once('data', () => resolve(true));
    p.once('exit', () => resolve(false));
  });
  if (!ready) throw new Error(`the idle client ended before opening its ${count} connections`);
  // Time for the tunnel to finish what each connection starts (a backend connection, a program).
  await sleep(1000);
  const loaded = pssTree(pid);
  p.stdin.end();
  await new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)));
  await sleep(500);
  // The programs' memory is exact; a garbage-collected tunnel's own growth is noisy, its heap may
  // shrink meanwhile: a shrink counts as zero, never as a saving (the same rule for both tunnels).
  const own = Math.max(0, loaded.self - base.self);
  return { pss: (Math.max(0, loaded.children - base.children) + own) / count, pssOwn: own / count };
}

// Programs started one after another through spawnPumped: server CPU and wall time per spawn, and the
// event loop's delay. `node bench/spawn.mjs` with the addon; with
// UCSPI_EXEC_NATIVE=0 for child_process.spawn; PREBUILDS_ONLY=1 to use the prebuild over a source build.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Duplex, PassThrough } from 'node:stream';

const target = process.argv[2]
  ? new URL(process.argv[2], `file://${process.cwd()}/`)
  : new URL('../packages/exec/dist/index.js', import.meta.url);
const m = await import(target.href);
const N = 300;
const h = monitorEventLoopDelay({ resolution: 1 });
h.enable();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < N; i++) {
  const a = new PassThrough(),
    b = new PassThrough();
  const s = Duplex.from({ readable: a, writable: b });
  a.end();
  b.resume();
  const c = await m.spawnPumped(s, { argv: ['true'], env: { PATH: '/usr/bin:/bin' } });
  await c.exited;
}
const cpu = process.cpuUsage(cpu0);
h.disable();
console.log(
  JSON.stringify({
    native: m.nativeStatus().loaded,
    cpuMsPerSpawn: +((cpu.user + cpu.system) / 1000 / N).toFixed(3),
    wallMsPerSpawn: +((performance.now() - t0) / N).toFixed(3),
    loopDelayP99ms: +(h.percentile(99) / 1e6).toFixed(2),
    loopDelayMaxMs: +(h.max / 1e6).toFixed(2),
  }),
);

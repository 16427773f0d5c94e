// ucspi-tunnel beside Debian's stunnel4, both started on the same stunnel.conf, in one run on
// 127.0.0.1, in two modes: relay (`connect` to a plain echo backend, echo.c, a fresh one per run and
// not counted) and exec (`exec = cat`). Per tunnel, medians of BENCH_RUNS rounds, each round running
// every tunnel once in turn:
// - connections/s: BENCH_CONNS at concurrency 8 (bench/server/load.c), and of the same connections
//   the request latency p50/p99 (connect, handshake, 5-byte echo);
// - tunnel CPU per connection: utime+stime from /proc/PID/stat, with the reaped children's (exec
//   mode's `cat`s), and the tunnel's own apart;
// - bulk MiB/s of a BENCH_BULK_MB echo (load.c, median of BENCH_BULK_REPS transfers);
// - round-trip latency p50/p99 of BENCH_LATENCY 16-byte round trips on one open connection;
// - Pss per idle connection: BENCH_IDLE held open, /proc/PID/smaps_rollup of the tunnel and its
//   descendants (exec mode's `cat`s), the tunnel's own apart (both with bench/server/load.mjs).
// Knobs: BENCH_WARM (warm-up connections), BENCH_MODES=relay,exec, BENCH_DEBUG (the `debug` level,
// 3), BENCH_BASELINE=DIR (ucspi-tunnel of another built checkout, in the same rounds),
// BENCH_WRITE=1 (replace this section of BENCHMARKS.md), BENCH_VERBOSE=1 (every run's figures).
// `--quick` (or BENCH_QUICK=1): one short round, to check that everything runs. Other arguments
// name the tunnels to run, e.g. `node bench/tunnel/run.mjs 'stunnel relay' 'ucspi-tunnel relay'`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  cpuOf,
  freePort,
  median,
  selfSignedCert,
  sleep,
  startProcess,
  stopProcess,
  waitPort,
} from '../lib.mjs';
import { idleMemory, load } from './measure.mjs';
import { section } from './report.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const args = process.argv.slice(2);
const QUICK = args.includes('--quick') || process.env.BENCH_QUICK === '1';
const knob = (name, full, quick) => Number(process.env[name] ?? (QUICK ? quick : full));
const cfg = {
  runs: knob('BENCH_RUNS', 5, 1),
  conns: knob('BENCH_CONNS', 1000, 100),
  bulk: knob('BENCH_BULK_MB', 256, 16),
  bulkReps: knob('BENCH_BULK_REPS', 5, 1),
  idle: knob('BENCH_IDLE', 200, 50),
  lat: knob('BENCH_LATENCY', 2000, 100),
  warm: knob('BENCH_WARM', 2000, 50),
  debug: knob('BENCH_DEBUG', 3, 3),
};
const MODES = (process.env.BENCH_MODES ?? 'relay,exec').split(',');
for (const mode of MODES) {
  if (mode !== 'relay' && mode !== 'exec') throw new Error(`BENCH_MODES: unknown mode ${mode}`);
}
const BASELINE = process.env.BENCH_BASELINE;
const BIN = 'apps/tunnel/dist/bin/ucspi-tunnel.js';
const dir = mkdtempSync(join(tmpdir(), 'tunnel-bench-'));
const procs = [];

// The load client and the echo backend are C: a Node.js client or backend spends milliseconds of
// CPU per TLS connection and per MiB on the same 2 cores as the tunnels, which would squeeze the
// differences between them.
const loadBin = join(dir, 'load');
const echoBin = join(dir, 'echo');
execFileSync('cc', ['-O2', '-o', loadBin, join(here, '../server/load.c'), '-lssl', '-lcrypto', '-lpthread']);
execFileSync('cc', ['-O2', '-o', echoBin, join(here, 'echo.c')]);
const { cert, key } = selfSignedCert(dir);
const cat = execFileSync('sh', ['-c', 'command -v cat']).toString().trim();

/** The one configuration file both tunnels read. */
function tunnelConf(port, service) {
  const f = join(dir, `tunnel-${port}.conf`);
  const lines = ['foreground = yes', 'pid =', `debug = ${cfg.debug}`, 'syslog = no', '[bench]'];
  lines.push(`accept = 127.0.0.1:${port}`, `cert = ${cert}`, `key = ${key}`, 'sslVersion = TLSv1.3');
  writeFileSync(f, `${[...lines, ...service].join('\n')}\n`);
  return f;
}

/** A launcher: a fresh backend (relay) and a fresh tunnel process, `stunnel4 FILE` or ours. */
function launcher(mode, top) {
  return async () => {
    const extra = [];
    let service = [`exec = ${cat}`, 'execArgs = cat'];
    if (mode === 'relay') {
      const back = await freePort();
      extra.push(startProcess(echoBin, [String(back)], { registry: procs }));
      await waitPort(back);
      service = [`connect = 127.0.0.1:${back}`];
    }
    const port = await freePort();
    const conf = tunnelConf(port, service);
    const [cmd, argv] = top ? [process.execPath, [join(top, BIN), conf]] : ['stunnel4', [conf]];
    return { port, proc: startProcess(cmd, argv, { registry: procs }), extra };
  };
}

/** One run of one tunnel: a fresh process, warmed up, then every metric once. */
async function measureOnce(name, launch) {
  const { port, proc, extra } = await launch();
  try {
    await waitPort(port);
    // Warm-up, so that the JIT-compiled tunnel is measured warm, as a C one always is (V8 optimizes
    // the per-connection paths during the first 2000 or so connections, see bench/server).
    load(loadBin, 'conns', port, cfg.warm, 8);
    load(loadBin, 'bulk', port, 32);
    await sleep(100); // the log written during the warm-up is read meanwhile (execFileSync blocks)
    const logLines = proc.errLines();
    // The tunnel's own CPU apart: in exec mode the total counts the reaped programs' too.
    const c0 = [cpuOf(proc.pid, true), cpuOf(proc.pid, false)];
    const req = load(loadBin, 'conns', port, cfg.conns, 8);
    await sleep(300);
    const cpu = ((cpuOf(proc.pid, true) - c0[0]) / cfg.conns) * 1000;
    const cpuOwn = ((cpuOf(proc.pid, false) - c0[1]) / cfg.conns) * 1000;
    const mibs = Array.from(
      { length: cfg.bulkReps },
      () => load(loadBin, 'bulk', port, cfg.bulk).mibPerSecond,
    );
    const lat = load(loadBin, 'latency', port, cfg.lat);
    const { pss, pssOwn } = await idleMemory(port, proc.pid, cfg.idle, procs);
    const m = {
      cps: cfg.conns / req.seconds,
      reqP50: req.p50,
      reqP99: req.p99,
      cpu,
      cpuOwn,
      mib: median(mibs),
      pss,
      pssOwn,
      rtP50: lat.p50,
      rtP99: lat.p99,
    };
    if (process.env.BENCH_VERBOSE === '1') {
      const logged = proc.errLines() - logLines;
      const last = logged
        ? `, the last: ${proc.errText().trimEnd().split('\n').slice(-Math.min(logged, 3)).join(' | ')}`
        : '';
      console.log(`  ${name}: ${JSON.stringify(m)}; ${logged} log lines during the measurement${last}`);
    }
    return m;
  } catch (err) {
    throw new Error(`${name}: ${err.message}\n--- its log (tail):\n${proc.errText()}`);
  } finally {
    await stopProcess(proc);
    for (const e of extra) await stopProcess(e);
  }
}

/** Medians per metric over the runs of one tunnel. */
function medians(name, runs) {
  const m = Object.fromEntries(Object.keys(runs[0]).map((k) => [k, median(runs.map((r) => r[k]))]));
  console.log(
    `${name}: ${m.cps.toFixed(0)} conn/s, ${m.cpu.toFixed(2)} ms CPU/conn (own ${m.cpuOwn.toFixed(2)}), ${m.mib.toFixed(0)} MiB/s, ${m.pss.toFixed(1)} KiB/idle conn (own ${m.pssOwn.toFixed(1)}), request p50 ${m.reqP50.toFixed(2)} p99 ${m.reqP99.toFixed(2)} ms, round trip p50 ${m.rtP50.toFixed(2)} p99 ${m.rtP99.toFixed(2)} ms`,
  );
  return m;
}

const tunnels = {};
for (const mode of MODES) {
  tunnels[`stunnel ${mode}`] = launcher(mode);
  tunnels[`ucspi-tunnel ${mode}`] = launcher(mode, root);
  if (BASELINE) tunnels[`ucspi-tunnel ${mode} (baseline)`] = launcher(mode, BASELINE);
}

process.on('SIGINT', () => {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  process.exit(130);
});
try {
  const only = args.filter((a) => !a.startsWith('--'));
  const chosen = Object.entries(tunnels).filter(([name]) => !only.length || only.includes(name));
  if (!chosen.length)
    throw new Error(`no tunnel named ${only.join(', ')}; known: ${Object.keys(tunnels).join(', ')}`);
  const runs = Object.fromEntries(chosen.map(([name]) => [name, []]));
  // Rounds interleave the tunnels (one run of each per round), so that the host's drift over the
  // minutes of a run falls on all of them alike.
  for (let r = 0; r < cfg.runs; r++) {
    for (const [name, launch] of chosen) runs[name].push(await measureOnce(name, launch));
  }
  const res = Object.fromEntries(chosen.map(([name]) => [name, medians(name, runs[name])]));
  for (const mode of MODES) {
    const now = res[`ucspi-tunnel ${mode}`];
    const before = res[`ucspi-tunnel ${mode} (baseline)`];
    if (!now || !before) continue;
    const f = (k) => (now[k] / before[k]).toFixed(2);
    console.log(
      `ucspi-tunnel ${mode} / baseline: conn/s ${f('cps')}, CPU/conn ${f('cpu')}, MiB/s ${f('mib')}, Pss/idle conn ${f('pss')}, request p50 ${f('reqP50')} p99 ${f('reqP99')}, round trip p50 ${f('rtP50')} p99 ${f('rtP99')}`,
    );
  }
  const stunnelVersion = (execFileSync('sh', ['-c', 'stunnel4 -version 2>&1'])
    .toString()
    .match(/stunnel [\d.]+/) ?? ['stunnel'])[0];
  const host = {
    cores: cpus().length,
    model: cpus()[0]?.model ?? 'CPU',
    node: process.version,
    stunnelVersion,
  };
  const text = section(res, MODES, {
    ...cfg,
    quick: QUICK,
    host,
    date: new Date().toISOString().slice(0, 10),
  });
  if (text) {
    console.log(`\n${text}`);
    if (process.env.BENCH_WRITE === '1' && !QUICK) {
      const md = join(root, 'BENCHMARKS.md');
      const re = /## ucspi-tunnel and stunnel\n[\s\S]*?(?=\n## |$)/;
      const old = readFileSync(md, 'utf8');
      writeFileSync(md, re.test(old) ? old.replace(re, text) : `${old.trimEnd()}\n\n${text}`);
    }
  }
} finally {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

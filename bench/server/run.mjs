// sslserver and tcpserver side by side with their anchors in one run, on 127.0.0.1:
// Debian's stunnel4 (exec = cat, and connect to a plain cat backend) and ucspi-tcp's tcpserver.
// Metrics per server (medians of BENCH_RUNS rounds, each running every server once in turn): connections/s (BENCH_CONNS at concurrency 8, C client load.c), server
// CPU per connection (utime+stime of the server and its reaped children, /proc/PID/stat), bulk MiB/s
// through cat (BENCH_BULK_MB, load.c; median of BENCH_BULK_REPS transfers), Pss per idle connection (BENCH_IDLE held open, /proc/PID/smaps_rollup
// of the server and its children), and small request/response latency p50/p99 (default Nagle).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  cpuOf,
  freePort,
  median,
  pssTree,
  selfSignedCert,
  sleep,
  stopProcess as stop,
  waitPort,
} from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CONNS = Number(process.env.BENCH_CONNS ?? 1000);
const BULK = Number(process.env.BENCH_BULK_MB ?? 256);
// Plain servers move data about 4 times as fast: a longer transfer keeps their runs as long, and as
// little noisy, as the TLS ones.
const BULK_PLAIN = Number(process.env.BENCH_BULK_PLAIN_MB ?? 1024);
const IDLE = Number(process.env.BENCH_IDLE ?? 200);
const BULK_REPS = Number(process.env.BENCH_BULK_REPS ?? 5);
const LAT = Number(process.env.BENCH_LATENCY ?? 2000);
const WARM = Number(process.env.BENCH_WARM ?? 2000);
const BASELINE = process.env.BENCH_BASELINE;
const dir = mkdtempSync(join(tmpdir(), 'server-bench-'));
const procs = [];

function start(cmd, args, env = {}) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  p.stderr.on('data', (b) => {
    err = (err + b).slice(-4000);
  });
  p.errText = () => err;
  procs.push(p);
  return p;
}

// Connections and bulk data come from a C client (load.c, OpenSSL): a Node.js client spends about
// 2 ms of CPU per TLS connection and 3 ms per MiB, a large share of 2 cores, which would squeeze the
// differences between servers. Idle connections and latency use the Node.js client (load.mjs).
const loadBin = join(dir, 'load');
execFileSync('cc', ['-O2', '-o', loadBin, join(here, 'load.c'), '-lssl', '-lcrypto', '-lpthread']);

function load(mode, proto, port, ...args) {
  const [cmd, argv] =
    mode === 'bulk' || mode === 'conns'
      ? [loadBin, [mode, proto, String(port), ...args.map(String)]]
      : [process.execPath, [join(here, 'load.mjs'), mode, proto, String(port), ...args.map(String)]];
  const out = execFileSync(cmd, argv, { timeout: 300_000 });
  return JSON.parse(out.toString().trim().split('\n').pop());
}
async function idleMemory(proto, port, pid, warm = true) {
  // One round first, so that a garbage-collected runtime has grown to its steady size before the
  // baseline is taken (otherwise the heap shrinking after the load phases shows as negative).
  if (warm) await idleMemory(proto, port, pid, false);
  await sleep(300);
  const base = pssTree(pid);
  const p = spawn(process.execPath, [join(here, 'load.mjs'), 'idle', proto, String(port), String(IDLE)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  procs.push(p);
  await new Promise((r) => p.stdout.once('data', r));
  await sleep(1000);
  const loaded = pssTree(pid);
  p.stdin.end();
  await new Promise((r) => p.once('exit', r));
  await sleep(500);
  // The programs' memory is exact; the server's own growth is noisy for a garbage-collected runtime
  // whose heap may shrink meanwhile: a shrink counts as zero, never as a saving.
  const own = Math.max(0, loaded.self - base.self);
  return { pss: (loaded.children - base.children + own) / IDLE, pssOwn: own / IDLE };
}

/** Children of pid alive now (a server's long-lived helpers, such as sslserver's TLSWORKERS). */
function childrenOf(pid) {
  const kids = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === pid) kids.push(Number(d));
    } catch {}
  }
  return kids;
}

/**
 * CPU seconds of pid, its reaped children, and those of `kept` still alive: children that live as
 * long as the server are never reaped during a run, so their CPU is read directly (one that ended
 * meanwhile was reaped, and its CPU is in the server's children's share).
 */
function serverCpu(pid, kept) {
  let s = cpuOf(pid);
  for (const k of kept) {
    try {
      s += cpuOf(k, false);
    } catch {}
  }
  return s;
}

/** One run of one server: a fresh process, warmed up, then every metric once. */
async function measureOnce(name, proto, launch) {
  const { port, proc, extra = [] } = await launch();
  try {
    await waitPort(port);
    // Warm-up, so that a JIT-compiled server is measured warm, as a C one always is: V8 keeps
    // optimizing the per-connection paths for the first 2000 or so connections (node --trace-opt:
    // about 140 functions compiled during the first 2000, 10 per 1000 after 4000), on a helper thread
    // whose CPU counts as the server's.
    load('conns', proto, port, WARM, 8);
    load('bulk', proto, port, 32);
    const kept = childrenOf(proc.pid);
    const c0 = serverCpu(proc.pid, kept);
    const { seconds } = load('conns', proto, port, CONNS, 8);
    await sleep(300);
    const cpu = ((serverCpu(proc.pid, kept) - c0) / CONNS) * 1000;
    // Several transfers, the median: one transfer on this shared machine varies by ±30 %.
    const mib = median(
      Array.from(
        { length: BULK_REPS },
        () => load('bulk', proto, port, proto === 'plain' ? BULK_PLAIN : BULK).mibPerSecond,
      ),
    );
    const lat = load('latency', proto, port, LAT);
    const { pss, pssOwn } = await idleMemory(proto, port, proc.pid);
    return { cps: CONNS / seconds, cpu, mib, pss, pssOwn, p50: lat.p50, p99: lat.p99 };
  } catch (err) {
    throw new Error(`${name}: ${err.message}\n${proc.errText()}`);
  } finally {
    await stop(proc);
    for (const e of extra) await stop(e);
  }
}

/** Medians per metric over the runs of one server. */
function medians(name, runs) {
  const m = Object.fromEntries(Object.keys(runs[0]).map((k) => [k, median(runs.map((r) => r[k]))]));
  console.log(
    `${name}: ${m.cps.toFixed(0)} conn/s, ${m.cpu.toFixed(2)} ms CPU/conn, ${m.mib.toFixed(0)} MiB/s, ${m.pss.toFixed(0)} KiB/idle conn (own ${m.pssOwn.toFixed(1)}), p50 ${m.p50.toFixed(2)} ms p99 ${m.p99.toFixed(2)} ms`,
  );
  return m;
}

const { cert, key } = selfSignedCert(dir);
const cat = execFileSync('sh', ['-c', 'command -v cat']).toString().trim();
const stunnelConf = async (service) => {
  const port = await freePort();
  const f = join(dir, `stunnel-${port}.conf`);
  writeFileSync(
    f,
    `foreground = yes\npid =\ndebug = 0\nsyslog = no\n[s]\naccept = 127.0.0.1:${port}\ncert = ${cert}\nkey = ${key}\n${service}\n`,
  );
  return { port, f };
};

/** A launcher for one of our bins in checkout `top` (-H -R -l 0 -c 400, cat per connection). */
function ours(top, bin, env = {}) {
  return async () => {
    const port = await freePort();
    const args = ['-H', '-R', '-l', '0', '-c', '400', '127.0.0.1', String(port), cat];
    return {
      port,
      proc: start(process.execPath, [join(top, `apps/sslserver/dist/bin/${bin}.js`), ...args], env),
    };
  };
}

const servers = {
  'stunnel exec': [
    'tls',
    async () => {
      const { port, f } = await stunnelConf(`exec = ${cat}\nexecArgs = cat`);
      return { port, proc: start('stunnel4', [f]) };
    },
  ],
  'stunnel connect': [
    'tls',
    async () => {
      const back = await freePort();
      const backend = start('tcpserver', [
        '-H',
        '-R',
        '-l',
        '0',
        '-c',
        '400',
        '127.0.0.1',
        String(back),
        cat,
      ]);
      await waitPort(back);
      const { port, f } = await stunnelConf(`connect = 127.0.0.1:${back}`);
      return { port, proc: start('stunnel4', [f]), extra: [backend] };
    },
  ],
  sslserver: ['tls', ours(root, 'sslserver', { CERTFILE: cert, KEYFILE: key })],
  // The TLS side spread over 2 handler processes (one per core here).
  'sslserver TLSWORKERS=2': [
    'tls',
    ours(root, 'sslserver', { CERTFILE: cert, KEYFILE: key, TLSWORKERS: '2' }),
  ],
  'ucspi-tcp tcpserver': [
    'plain',
    async () => {
      const port = await freePort();
      return {
        port,
        proc: start('tcpserver', ['-H', '-R', '-l', '0', '-c', '400', '127.0.0.1', String(port), cat]),
      };
    },
  ],
  tcpserver: ['plain', ours(root, 'tcpserver')],
  // BENCH_BASELINE=DIR: the same bins from another checkout (built), run in the same rounds, for a
  // before/after comparison of a change.
  ...(BASELINE
    ? {
        'sslserver (baseline)': ['tls', ours(BASELINE, 'sslserver', { CERTFILE: cert, KEYFILE: key })],
        'tcpserver (baseline)': ['plain', ours(BASELINE, 'tcpserver')],
      }
    : {}),
};

process.on('SIGINT', () => {
  for (const p of procs) p.kill('SIGKILL');
  process.exit(130);
});
try {
  const only = process.argv.slice(2);
  // Rounds interleave the servers (one run of each per round), so that the host's drift over the
  // minutes of a run falls on all of them alike.
  const chosen = Object.entries(servers).filter(([name]) => !only.length || only.includes(name));
  const runs = Object.fromEntries(chosen.map(([name]) => [name, []]));
  for (let r = 0; r < RUNS; r++)
    for (const [name, [proto, launch]] of chosen) runs[name].push(await measureOnce(name, proto, launch));
  const res = Object.fromEntries(chosen.map(([name]) => [name, medians(name, runs[name])]));
  for (const bin of ['sslserver', 'tcpserver']) {
    const now = res[bin];
    const before = res[`${bin} (baseline)`];
    if (!now || !before) continue;
    const f = (k) => (now[k] / before[k]).toFixed(2);
    console.log(
      `${bin} / baseline: conn/s ${f('cps')}, CPU/conn ${f('cpu')}, MiB/s ${f('mib')}, Pss/idle conn ${f('pss')}, p50 ${f('p50')}, p99 ${f('p99')}`,
    );
  }
  const s = res.sslserver;
  const se = res['stunnel exec'];
  const t = res.tcpserver;
  const u = res['ucspi-tcp tcpserver'];
  if (s && se && t && u && res['stunnel connect'] && process.env.BENCH_WRITE !== '0') {
    const stunnelVersion = (execFileSync('sh', ['-c', 'stunnel4 -version 2>&1'])
      .toString()
      .trim()
      .match(/stunnel [\d.]+/) ?? ['stunnel'])[0];
    const row = (n, m) =>
      `| ${n} | ${m.cps.toFixed(0)} | ${m.cpu.toFixed(2)} | ${m.mib.toFixed(0)} | ${m.pss.toFixed(0)} | ${m.pssOwn.toFixed(0)} | ${m.p50.toFixed(2)} / ${m.p99.toFixed(2)} |`;
    const r = (a, b) => (a / b).toFixed(2);
    const ok = (cond) => (cond ? 'met' : 'not met');
    const section = `## sslserver and tcpserver

\`node bench/server/run.mjs\` (Debian's stunnel4 and ucspi-tcp, openssl, libssl-dev). Each server runs
\`cat\` for every connection on 127.0.0.1, RSA-2048 certificate, TLS 1.3; \`-H -R -l 0 -c 400\` for the
UCSPI servers, default Nagle (no -D). Each server is first warmed up with ${WARM} connections and 32 MiB
(V8 compiles the hot paths of a Node.js server during its first 2000 or so connections). The load clients are separate processes, the same for all: C
with OpenSSL (bench/server/load.c: 8 threads opening connections; one bulk connection) and Node.js
(bench/server/load.mjs: idle connections, latency).
stunnel connect mode forwards to ucspi-tcp's tcpserver running cat (its CPU and memory are not counted).

Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpus()[0]?.model ?? 'CPU'}), Node.js ${process.version}, ${stunnelVersion}; medians of ${RUNS} rounds,\neach running every server once in turn;
${CONNS} connections at concurrency 8, ${BULK} MiB through cat (${BULK_PLAIN} MiB for the plain servers; median of ${BULK_REPS} transfers per round), ${IDLE} idle connections, ${LAT} round trips.

| server | conn/s | CPU ms/conn | MiB/s | Pss KiB per idle conn | of which the server's own | latency p50 / p99 ms |
| --- | --- | --- | --- | --- | --- | --- |
${row('stunnel exec=cat', se)}
${row('stunnel connect', res['stunnel connect'])}
${row('**sslserver**', s)}
${res['sslserver TLSWORKERS=2'] ? `${row('**sslserver TLSWORKERS=2**', res['sslserver TLSWORKERS=2'])}\n` : ''}${row('ucspi-tcp tcpserver', u)}
${row('**tcpserver**', t)}

| ratio | measured | target | |
| --- | --- | --- | --- |
| sslserver / stunnel exec, conn/s | ${r(s.cps, se.cps)} | ≥ 1.3 | ${ok(s.cps / se.cps >= 1.3)} |
| sslserver / stunnel exec, CPU per conn | ${r(s.cpu, se.cpu)} | ≤ 0.7 | ${ok(s.cpu / se.cpu <= 0.7)} |
| sslserver / stunnel exec, bulk MiB/s | ${r(s.mib, se.mib)} | ≥ 1.6 | ${ok(s.mib / se.mib >= 1.6)} |
| sslserver / stunnel exec, Pss per idle conn | ${r(s.pss, se.pss)} | ≤ 0.6 | ${ok(s.pss / se.pss <= 0.6)} |
| sslserver / stunnel exec, the server's own Pss per idle conn (\`cat\` left out) | ${r(s.pssOwn, se.pssOwn)} | – | |
| tcpserver / ucspi-tcp, conn/s | ${r(t.cps, u.cps)} | ≥ 0.7 | ${ok(t.cps / u.cps >= 0.7)} |
| tcpserver / ucspi-tcp, bulk MiB/s | ${r(t.mib, u.mib)} | ≥ 0.95 | ${ok(t.mib / u.mib >= 0.95)} |

Reading the figures. Every UCSPI server here runs \`cat\` per connection, as stunnel exec does: that
program alone costs about 0.8 ms of CPU (exec, dynamic linking, exit) and 120 KiB of Pss (its private
pages), the same for all, which is a floor under the CPU and memory columns: with it, the Pss ratio
cannot go much below 0.8 however little the server itself keeps per connection (the column "of
which the server's own" leaves the programs out; a garbage-collected server's share there can round
to 0, when the idle connections fit into memory its warm-up left allocated). Programs are started by @ucspi/exec's native spawner (a clone sharing memory until execve,
off the event loop: about 0.1 ms of server CPU, where child_process.spawn took 1 to 2 ms and blocked
the event loop). The rest of sslserver's cost per connection is the TLS handshake in OpenSSL (about
0.8 ms, 0.6 of it the RSA-2048 signature) and Node.js's TLS socket machinery and V8 (about 1 ms),
all on one thread: stunnel spreads its handshakes over threads. Bulk data is bounded by the
server's CPU per byte, mostly the kernel's copies and wake-ups through sockets and pipes (both
servers copy every byte through the program's pipes twice) and AES-GCM both ways. sslserver's pump
lets up to 256 KiB wait for one side before it pauses the other; pausing at the TLS socket's own
16 KiB high-water mark, as it did until 2026-12-01, stopped and restarted the read of the program's
output every 64 KiB, and the bulk ratio was 1.2 to 1.6 instead of 1.6 to 1.8. tcpserver hands the accepted socket itself to the program, so its
data path is the original's and its bulk ratio is 1 up to the noise. Latency shows no Nagle
delayed-ACK stall with the default -d (p99 well under 40 ms; sslserver keeps TCP_NODELAY until the
first response). The machine is a shared 2-core VM whose host varies: single figures move by ±15 %
or more between runs, ratios less, and figures from different days are not comparable.
`;
    const md = join(root, 'BENCHMARKS.md');
    let text = readFileSync(md, 'utf8');
    const re = /## sslserver and tcpserver\n[\s\S]*?(?=\n## |$)/;
    text = re.test(text) ? text.replace(re, section) : `${text.trimEnd()}\n\n${section}`;
    writeFileSync(md, text);
    console.log(section);
  }
} finally {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

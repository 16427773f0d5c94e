// Two TLS servers behind Debian's HAProxy (TCP mode, round robin), as a scaled-out service runs:
// what a connection costs with and without session resumption across the balancer. Side by side in
// one run, each setup in turn per round (medians of BENCH_RUNS rounds):
//   sslserver x2  PROXYPROTO=1 behind `send-proxy-v2`, -H -R -l 0 (no lookups, as stunnel), `cat`:
//     shared   TLSTICKETKEYS=one file for both, the client offering its last ticket (tls-resume)
//     own      each instance its own random ticket key, the client offering its last ticket
//     full     no resumption offered (every handshake full)
//   stunnel4 x2  exec = cat, behind HAProxy without PROXY (stunnel has no PROXY input):
//     shared   the same ticketKeySecret/ticketMacSecret, tls-resume
//     full     no resumption offered
// Figures per setup: connections/s (BENCH_CONNS at concurrency 8, bench/server/load.c, TLS 1.3,
// RSA-2048), the share of resumed sessions (round robin sends each next connection of a client to
// the other instance), CPU ms per connection of both servers with their programs (utime+stime with
// reaped children, /proc/PID/stat), of the servers alone, and of HAProxy.
// `node bench/scaleout/run.mjs`; BENCH_WRITE=1 writes the table into BENCHMARKS.md.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuOf, freePort, median, selfSignedCert, startProcess, stopProcess, waitPort } from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONNS = Number(process.env.BENCH_CONNS ?? 1000);
const WARM = Number(process.env.BENCH_WARM ?? 200);
const dir = mkdtempSync(join(tmpdir(), 'scaleout-bench-'));
const procs = [];

const loadBin = join(dir, 'load');
execFileSync('cc', [
  '-O2',
  '-o',
  loadBin,
  join(here, '..', 'server', 'load.c'),
  '-lssl',
  '-lcrypto',
  '-lpthread',
]);
const { cert, key } = selfSignedCert(dir);
const ticketFile = join(dir, 'ticket.key');
writeFileSync(ticketFile, execFileSync('openssl', ['rand', '48']));
const sslserverBin = join(root, 'apps', 'sslserver', 'dist', 'bin', 'sslserver.js');

function load(proto, port, n) {
  const out = execFileSync(loadBin, ['conns', proto, String(port), String(n), '8'], { encoding: 'utf8' });
  return JSON.parse(out);
}

/** Two sslserver instances (PROXYPROTO=1) on free ports; `shared`: one TLSTICKETKEYS file. */
async function sslservers(shared) {
  const ports = [await freePort(), await freePort()];
  const env = {
    CERTFILE: cert,
    KEYFILE: key,
    PROXYPROTO: '1',
    ...(shared ? { TLSTICKETKEYS: ticketFile } : {}),
  };
  const ps = ports.map((p) =>
    startProcess(
      process.execPath,
      [sslserverBin, '-H', '-R', '-l', '0', '-c', '100', '127.0.0.1', String(p), 'cat'],
      {
        env,
        registry: procs,
      },
    ),
  );
  for (const p of ports) await waitPort(p);
  return { ports, procs: ps, sendProxy: 'send-proxy-v2' };
}

/** Two stunnel4 instances, exec = cat; `shared`: the same ticketKeySecret/ticketMacSecret. */
async function stunnels(shared) {
  const ports = [await freePort(), await freePort()];
  const secrets = shared
    ? [`ticketKeySecret = ${'ab'.repeat(16)}`, `ticketMacSecret = ${'cd'.repeat(16)}`]
    : [];
  const ps = ports.map((p, i) => {
    const conf = join(dir, `stunnel-${i}.conf`);
    writeFileSync(
      conf,
      [
        'foreground = yes',
        'pid =',
        'debug = 3',
        'syslog = no',
        '[s]',
        `accept = 127.0.0.1:${p}`,
        'exec = /bin/cat',
        `cert = ${cert}`,
        `key = ${key}`,
        ...secrets,
        '',
      ].join('\n'),
    );
    return startProcess('stunnel4', [conf], { registry: procs });
  });
  for (const p of ports) await waitPort(p);
  return { ports, procs: ps, sendProxy: '' };
}

/** HAProxy round robin over `ports`, each server line with `sendProxy`; resolves with its port. */
async function haproxy(ports, sendProxy) {
  const front = await freePort();
  const cfg = join(dir, `haproxy-${front}.cfg`);
  writeFileSync(
    cfg,
    [
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      'listen front',
      `  bind 127.0.0.1:${front}`,
      '  balance roundrobin',
      ...ports.map((p, i) => `  server s${i} 127.0.0.1:${p} ${sendProxy}`),
      '',
    ].join('\n'),
  );
  const p = startProcess('haproxy', ['-db', '-f', cfg], { registry: procs });
  await waitPort(front);
  return { port: front, proc: p };
}

const setups = [
  { name: 'sslserver x2, shared TLSTICKETKEYS', start: () => sslservers(true), proto: 'tls-resume' },
  { name: 'sslserver x2, own ticket keys', start: () => sslservers(false), proto: 'tls-resume' },
  { name: 'sslserver x2, no resumption', start: () => sslservers(true), proto: 'tls' },
  { name: 'stunnel4 x2, shared ticketKeySecret', start: () => stunnels(true), proto: 'tls-resume' },
  { name: 'stunnel4 x2, no resumption', start: () => stunnels(true), proto: 'tls' },
];

async function measure(setup) {
  const servers = await setup.start();
  const front = await haproxy(servers.ports, servers.sendProxy);
  try {
    // waitPort's probe and the warm-up go through too: count only the measured connections.
    load(setup.proto, front.port, WARM);
    const c0 = servers.procs.map((p) => [cpuOf(p.pid), cpuOf(p.pid, false)]);
    const h0 = cpuOf(front.proc.pid);
    const r = load(setup.proto, front.port, CONNS);
    const c1 = servers.procs.map((p) => [cpuOf(p.pid), cpuOf(p.pid, false)]);
    const h1 = cpuOf(front.proc.pid);
    const sum = (k) => c1.reduce((s, c, i) => s + c[k] - c0[i][k], 0);
    return {
      cps: CONNS / r.seconds,
      resumed: (r.resumed / CONNS) * 100,
      cpu: (sum(0) / CONNS) * 1000,
      cpuOwn: (sum(1) / CONNS) * 1000,
      lb: ((h1 - h0) / CONNS) * 1000,
      p50: r.p50,
    };
  } finally {
    await stopProcess(front.proc);
    for (const p of servers.procs) await stopProcess(p);
  }
}

const results = new Map(setups.map((s) => [s.name, []]));
try {
  for (let round = 0; round < RUNS; round++) {
    for (const s of setups) {
      const m = await measure(s);
      results.get(s.name).push(m);
      console.log(
        `round ${round + 1} ${s.name}: ${m.cps.toFixed(0)} conn/s, ${m.resumed.toFixed(0)} % resumed, CPU ms/conn ${m.cpu.toFixed(2)} (servers alone ${m.cpuOwn.toFixed(2)}), HAProxy ${m.lb.toFixed(3)}`,
      );
    }
  }
} finally {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

const med = (name, k) => median(results.get(name).map((m) => m[k]));
const rows = setups.map(
  (s) =>
    `| ${s.name} | ${med(s.name, 'cps').toFixed(0)} | ${med(s.name, 'resumed').toFixed(0)} % | ${med(s.name, 'cpu').toFixed(2)} | ${med(s.name, 'cpuOwn').toFixed(2)} | ${med(s.name, 'lb').toFixed(3)} |`,
);
const table = [
  '| setup (behind HAProxy, round robin) | conn/s | resumed | CPU ms/conn, servers + cat | servers alone | HAProxy |',
  '| --- | --- | --- | --- | --- | --- |',
  ...rows,
].join('\n');
const machine = `${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'}`;
console.log(`\n${new Date().toISOString().slice(0, 10)}, ${machine}, medians of ${RUNS} rounds\n${table}`);
if (process.env.BENCH_WRITE === '1') {
  const file = join(root, 'BENCHMARKS.md');
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf('<!-- scaleout:start -->');
  const end = text.indexOf('<!-- scaleout:end -->');
  if (start < 0 || end < 0) throw new Error('BENCHMARKS.md has no scaleout markers');
  const block = `<!-- scaleout:start -->\n${new Date().toISOString().slice(0, 10)}, ${machine}, medians of ${RUNS} rounds of ${CONNS} connections at concurrency 8:\n\n${table}\n`;
  writeFileSync(file, text.slice(0, start) + block + text.slice(end));
}

// The BENCHMARKS.md section of bench/tunnel/run.mjs: the method, one table of figures, one of the
// ratios ucspi-tunnel / stunnel against the targets of the issue that asked for this benchmark.

const row = (mode, name, m) =>
  `| ${mode} | ${name} | ${m.cps.toFixed(0)} | ${m.cpu.toFixed(2)} | ${m.cpuOwn.toFixed(2)} | ${m.mib.toFixed(0)} | ${m.pss.toFixed(1)} | ${m.pssOwn.toFixed(1)} | ${m.reqP50.toFixed(2)} / ${m.reqP99.toFixed(2)} | ${m.rtP50.toFixed(2)} / ${m.rtP99.toFixed(2)} |`;

// [label, metric, target text, test of the ratio ours / stunnel or null when there is no target]
const TARGETS = [
  ['conn/s', 'cps', '≥ 1.3', (r) => r >= 1.3],
  ['CPU per conn', 'cpu', '–', null],
  ['the tunnel’s own CPU per conn', 'cpuOwn', '–', null],
  ['bulk MiB/s', 'mib', '≥ 1.6', (r) => r >= 1.6],
  ['Pss per idle conn', 'pss', '≤ 0.3', (r) => r <= 0.3],
  ['the tunnel’s own Pss per idle conn', 'pssOwn', '–', null],
  ['request latency p50', 'reqP50', '–', null],
  ['request latency p99', 'reqP99', '≤ 1 (no worse)', (r) => r <= 1],
  ['round-trip latency p50', 'rtP50', '–', null],
  ['round-trip latency p99', 'rtP99', '≤ 1 (no worse)', (r) => r <= 1],
];

/** The markdown section, or '' when no mode has both tunnels measured. */
export function section(res, modes, c) {
  const pairs = modes
    .map((mode) => [mode, res[`stunnel ${mode}`], res[`ucspi-tunnel ${mode}`]])
    .filter(([, s, u]) => s && u);
  if (!pairs.length) return '';
  const figures = pairs.flatMap(([mode, s, u]) => [
    row(mode, 'stunnel', s),
    row(mode, '**ucspi-tunnel**', u),
  ]);
  const ratios = pairs.flatMap(([mode, s, u]) =>
    TARGETS.map(([label, k, target, ok]) => {
      const r = s[k] > 0 ? u[k] / s[k] : Number.NaN;
      const verdict = ok && Number.isFinite(r) ? (ok(r) ? 'met' : 'not met') : '';
      return `| ${mode}, ${label} | ${Number.isFinite(r) ? r.toFixed(2) : '–'} | ${target} | ${verdict} |`;
    }),
  );
  const h = c.host;
  return `## ucspi-tunnel and stunnel

\`node bench/tunnel/run.mjs\` (or \`node bench/run.mjs tunnel\`; needs Debian's stunnel4, openssl, cc
and libssl-dev). ucspi-tunnel (apps/tunnel, built) and stunnel4 each read the same configuration file:
\`foreground = yes\`, \`pid =\` (none), \`debug = ${c.debug}\` (errors only: no log line per connection for
either), \`syslog = no\`, one service on 127.0.0.1 with an RSA-2048 certificate and
\`sslVersion = TLSv1.3\`, and either \`connect\` to an echo backend (relay) or \`exec = cat\` (exec).
The echo backend (bench/tunnel/echo.c) is one C process with epoll, a fresh one for every run,
identical for both tunnels and not counted: on its own (load.c over plain TCP) it echoes about
700 MiB/s and 10,000 connections/s, far beyond either tunnel. Each tunnel is first warmed up with ${c.warm} connections and 32 MiB (V8
compiles the hot paths of a Node.js server during its first 2000 or so connections). The load
clients are separate processes, the same for both, those of bench/server: C with OpenSSL
(bench/server/load.c: 8 threads opening connections, each sending 5 bytes and reading the echo; one
bulk connection writing and reading back at once) and Node.js (bench/server/load.mjs: idle
connections, 16-byte round trips on one open connection, default Nagle). The request latency is
each of the connections/s test's connections timed from connect to the echo read (handshake
included, 8 at a time); the round-trip latency is measured on one connection, its first round trip
included.

Server CPU is utime+stime of the tunnel process from /proc/PID/stat (all of its threads) plus its
reaped children's (cutime+cstime: in exec mode the \`cat\`s, with whatever the forked child did before
its execve); "own" leaves the children out (in relay mode there are none). Pss per idle connection is
/proc/PID/smaps_rollup with ${c.idle} idle TLS connections open minus with none, divided by ${c.idle}; in exec
mode the \`cat\`s (descendants of the tunnel) are counted, and "own" is the tunnel process alone; a
tunnel's own Pss that shrank counts as 0 (a garbage-collected heap may shrink meanwhile); the relay
backend's memory is not counted.

Measured ${c.date} on ${h.cores} cores (${h.model}), Node.js ${h.node}, ${h.stunnelVersion}; medians of ${c.runs} rounds,
each running every tunnel once in turn; ${c.conns} connections at concurrency 8, ${c.bulk} MiB echoed (median of ${c.bulkReps} transfers per round), ${c.idle} idle connections, ${c.lat} round trips.${c.quick ? ' **--quick: a smoke run, not a measurement.**' : ''}

| mode | tunnel | conn/s | CPU ms/conn | of which the tunnel's own | MiB/s | Pss KiB per idle conn | of which the tunnel's own | request p50 / p99 ms | round trip p50 / p99 ms |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${figures.join('\n')}

| ratio ucspi-tunnel / stunnel | measured | target | |
| --- | --- | --- | --- |
${ratios.join('\n')}

In exec mode every connection runs \`cat\` under both tunnels, the same program for both: its exec,
dynamic linking and private pages are a floor under the CPU and memory columns there (about 120 KiB
of Pss per \`cat\`), so the Pss target (≤ 0.3) cannot be reached by the total; the "own" columns show
what the tunnel itself spends and keeps. Pss divides shared pages among the processes mapping them:
other processes starting or ending during a measurement move it, so the memory figures need a quiet
machine. The machine is a shared 2-core VM: single figures move by ±15 % or more between runs,
ratios less, and figures from different days are not comparable.
`;
}

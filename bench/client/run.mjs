// tcpclient's start-up and throughput, side by side with `openssl s_client` and `socat` in one run:
// - exec to first byte: from the spawn of the client (stdin a pipe holding one line) to the arrival
//   of that line at the server, over TLS 1.3 (RSA-2048, the server verified against its CA and
//   name by every client) and over plain TCP; BENCH_FIRST runs of each client, interleaved;
// - bulk: BENCH_MIB MiB from a TLS server to the client, client mode (stdout /dev/null) and prog
//   mode (the program `cat <&6 >/dev/null`; socat: SYSTEM:'cat >/dev/null'), from spawn to exit;
//   BENCH_RUNS rounds, interleaved.
// Medians; ratios are ours / theirs (time: < 1 is faster; rate: > 1 is faster). For scale, the
// time from spawn to exit of `node -e 0` (Node.js's own start) is printed beside them.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const tcpclient = join(here, '..', '..', 'apps', 'client', 'dist', 'bin', 'tcpclient.js');
const FIRST = Number(process.env.BENCH_FIRST ?? 15);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const MIB = Number(process.env.BENCH_MIB ?? 256);
const dir = mkdtempSync(join(tmpdir(), 'client-bench-'));
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
const procs = [];
const now = () => performance.timeOrigin + performance.now();
const env = { ...process.env, CERTDIR: join(dir, 'no-certdir') };

/** Start server.mjs in `mode`; resolves with { port, lines } once it printed its port. */
function server(mode, ...args) {
  const p = spawn(process.execPath, [join(here, 'server.mjs'), mode, cert, key, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  procs.push(p);
  const lines = [];
  let buf = '';
  const waiters = [];
  p.stdout.on('data', (b) => {
    buf += b;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
  const next = () =>
    lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiters.push(() => r(lines.shift())));
  return next().then((port) => ({ port: Number(port), next }));
}

/** Run argv with stdin a pipe (one line written at once, kept open until exit), stdout to `out`. */
function runClient(argv, out = 'ignore', input = 'x\n') {
  const t0 = now();
  const p = spawn(argv[0], argv.slice(1), { stdio: ['pipe', out, 'ignore'], env });
  p.stdin.on('error', () => {});
  p.stdin.write(input);
  const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
  const exited = new Promise((r) =>
    p.once('exit', (code) => {
      clearTimeout(timer);
      r({ code, ms: now() - t0 });
    }),
  );
  return { t0, p, exited };
}

try {
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
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  const tlsFirst = await server('first');
  const plainFirst = await server('plain-first');
  const bulk = await server('bulk', String(MIB));
  const tlsClients = {
    tcpclient: (port) => [
      process.execPath,
      tcpclient,
      '-n',
      '',
      '-c',
      cert,
      '-m',
      'localhost',
      '127.0.0.1',
      String(port),
    ],
    'openssl s_client': (port) => [
      'openssl',
      's_client',
      '-quiet',
      '-verify_return_error',
      '-CAfile',
      cert,
      '-verify_hostname',
      'localhost',
      '-connect',
      `127.0.0.1:${port}`,
    ],
    socat: (port) => ['socat', '-', `OPENSSL:127.0.0.1:${port},cafile=${cert},commonname=localhost`],
  };
  const plainClients = {
    tcpclient: (port) => [process.execPath, tcpclient, '127.0.0.1', String(port)],
    socat: (port) => ['socat', '-', `TCP:127.0.0.1:${port}`],
  };
  const first = {};
  for (const [label, clients, srv] of [
    ['TLS', tlsClients, tlsFirst],
    ['TCP', plainClients, plainFirst],
  ]) {
    for (let i = 0; i < FIRST + 1; i++) {
      for (const [name, argv] of Object.entries(clients)) {
        const { t0, exited } = runClient(argv(srv.port));
        const arrived = Number(await srv.next());
        const { code } = await exited;
        if (code !== 0) throw new Error(`${name} exited ${code}`);
        if (i === 0) continue; // warm-up: page cache
        ((first[label] ??= {})[name] ??= []).push(arrived - t0);
      }
    }
  }
  // Node.js's own start, for scale: an empty script, from spawn to exit.
  const bare = [];
  for (let i = 0; i < FIRST + 1; i++) {
    const { exited } = runClient([process.execPath, '-e', '0']);
    const { ms } = await exited;
    if (i > 0) bare.push(ms);
  }
  const devnull = openSync('/dev/null', 'w');
  const bulkClients = {
    'tcpclient (client mode)': (port) => tlsClients.tcpclient(port),
    'socat (stdout)': (port) => [
      'socat',
      '-u',
      `OPENSSL:127.0.0.1:${port},cafile=${cert},commonname=localhost`,
      'STDOUT',
    ],
    'tcpclient (prog mode)': (port) => [...tlsClients.tcpclient(port), 'sh', '-c', 'exec cat <&6 >/dev/null'],
    'socat (SYSTEM:cat)': (port) => [
      'socat',
      '-u',
      `OPENSSL:127.0.0.1:${port},cafile=${cert},commonname=localhost`,
      'SYSTEM:cat >/dev/null',
    ],
  };
  const rate = {};
  for (let r = 0; r < RUNS; r++) {
    for (const [name, argv] of Object.entries(bulkClients)) {
      const { exited } = runClient(argv(bulk.port), devnull, '');
      const { code, ms } = await exited;
      if (code !== 0) throw new Error(`${name} exited ${code}`);
      (rate[name] ??= []).push(MIB / (ms / 1000));
    }
  }
  const openssl = execFileSync('openssl', ['version']).toString().trim();
  const socat = execFileSync('socat', ['-V'])
    .toString()
    .match(/socat version (\S+)/)?.[1];
  console.log(
    `${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (${cpus()[0].model}), Node.js ${process.version}, ${openssl}, socat ${socat}`,
  );
  console.log(`exec to first byte, median of ${FIRST} (ms):`);
  for (const [label, byName] of Object.entries(first)) {
    for (const [name, xs] of Object.entries(byName)) {
      const m = median(xs);
      const base = median(byName.tcpclient);
      console.log(
        `  ${label} ${name}: ${m.toFixed(1)}${name === 'tcpclient' ? '' : `  (tcpclient / ${name}: ${(base / m).toFixed(2)})`}`,
      );
    }
  }
  console.log(`  (node -e 0, spawn to exit: ${median(bare).toFixed(1)})`);
  console.log(`bulk, ${MIB} MiB from the server, median of ${RUNS} (MiB/s):`);
  const m = Object.fromEntries(Object.entries(rate).map(([k, xs]) => [k, median(xs)]));
  for (const [name, v] of Object.entries(m)) console.log(`  ${name}: ${v.toFixed(0)}`);
  console.log(
    `  ratio client mode / socat: ${(m['tcpclient (client mode)'] / m['socat (stdout)']).toFixed(2)}`,
  );
  console.log(
    `  ratio prog mode / socat SYSTEM: ${(m['tcpclient (prog mode)'] / m['socat (SYSTEM:cat)']).toFixed(2)}`,
  );
} finally {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

// Full TLS 1.3 handshakes per second: a server built from @ucspi/tls's context against
// `openssl s_server` on the same RSA-2048 certificate, the same Node.js client (BENCH_HANDSHAKES at
// concurrency 8), medians of BENCH_RUNS runs, with the server's CPU per handshake.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuOf, freePort, median, selfSignedCert, waitPort } from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const N = Number(process.env.BENCH_HANDSHAKES ?? 1000);
const dir = mkdtempSync(join(tmpdir(), 'tls-bench-'));
const procs = [];

const { cert, key } = selfSignedCert(dir);
try {
  const servers = {
    '@ucspi/tls (node:tls)': (port) =>
      spawn(process.execPath, [join(here, 'server.mjs'), cert, key, String(port)], { stdio: 'ignore' }),
    'openssl s_server': (port) =>
      spawn(
        'openssl',
        [
          's_server',
          '-quiet',
          '-naccept',
          '100000',
          '-accept',
          `127.0.0.1:${port}`,
          '-cert',
          cert,
          '-key',
          key,
          '-tls1_3',
        ],
        {
          stdio: ['pipe', 'ignore', 'ignore'],
        },
      ),
  };
  const res = {};
  for (const [name, launch] of Object.entries(servers)) {
    const rate = [];
    const cpu = [];
    for (let r = 0; r < RUNS; r++) {
      const port = await freePort();
      const p = launch(port);
      procs.push(p);
      await waitPort(port);
      execFileSync(process.execPath, [join(here, 'client.mjs'), String(port), '20', '4']);
      const c0 = cpuOf(p.pid, false);
      const secs = Number(
        execFileSync(process.execPath, [join(here, 'client.mjs'), String(port), String(N), '8']).toString(),
      );
      rate.push(N / secs);
      cpu.push(((cpuOf(p.pid, false) - c0) / N) * 1000);
      p.kill('SIGKILL');
      await new Promise((r) => p.once('exit', r));
    }
    res[name] = { rate: median(rate), cpu: median(cpu) };
    console.log(
      `${name}: ${res[name].rate.toFixed(0)} handshakes/s, ${res[name].cpu.toFixed(2)} ms server CPU each`,
    );
  }
  const ours = res['@ucspi/tls (node:tls)'];
  const anchor = res['openssl s_server'];
  const section = `## @ucspi/tls

\`node bench/tls/run.mjs\`: full TLS 1.3 handshakes (no resumption) against a server using
\`loadServerTls\`'s options on \`new TLSSocket\` (as sslserver does) and against \`openssl s_server\`, the same
RSA-2048 certificate, the same Node.js client process, ${N} handshakes at concurrency 8, medians of ${RUNS} runs.
Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpus()[0]?.model ?? 'CPU'}), Node.js ${process.version}, ${execFileSync('openssl', ['version']).toString().trim()}.

| server | handshakes/s | server CPU ms per handshake |
| --- | --- | --- |
| @ucspi/tls (node:tls) | ${ours.rate.toFixed(0)} | ${ours.cpu.toFixed(2)} |
| openssl s_server | ${anchor.rate.toFixed(0)} | ${anchor.cpu.toFixed(2)} |
| ratio (ours / openssl) | ${(ours.rate / anchor.rate).toFixed(2)} | ${(ours.cpu / anchor.cpu).toFixed(2)} |

Both servers do the same RSA-2048 signature per handshake in OpenSSL; the client (one Node.js
process) is shared, so on 2 cores the rates are bounded by client and server together.
`;
  if (process.env.BENCH_WRITE !== '0') {
    const md = join(here, '..', '..', 'BENCHMARKS.md');
    let text = readFileSync(md, 'utf8');
    const re = /## @ucspi\/tls\n[\s\S]*?(?=\n## |$)/;
    text = re.test(text)
      ? text.replace(re, section)
      : text.replace('\n## sslserver and tcpserver', `\n${section}\n## sslserver and tcpserver`);
    writeFileSync(md, text);
  }
} finally {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

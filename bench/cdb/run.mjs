// @ucspi/cdb against tinycdb (Debian's tinycdb and libcdb-dev), side by side in one run:
// building a 1,000,000-record cdb, and lookups of existing keys. Medians of BENCH_RUNS runs.
// Needs: cc, /usr/include/cdb.h and libcdb (apt-get install tinycdb libcdb-dev), a built packages/cdb.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cdb, CdbMaker, writeCdbFile } from '../../packages/cdb/dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.BENCH_RECORDS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const LOOKUPS = 1_000_000;
const dir = mkdtempSync(join(tmpdir(), 'cdb-bench-'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = (fn) => {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
};
const timeAsync = async (fn) => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
};

try {
  const bin = join(dir, 'lookup');
  execFileSync('cc', ['-O2', '-o', bin, join(here, 'lookup.c'), '-lcdb']);

  const records = [];
  const input = [];
  for (let i = 0; i < N; i++) {
    const k = `key${i}`;
    const d = `value-${i}-${(i * 2654435761) >>> 0}`;
    records.push([k, d]);
    input.push(`+${k.length},${d.length}:${k}->${d}\n`);
  }
  input.push('\n');
  const inputFile = join(dir, 'input.txt');
  writeFileSync(inputFile, input.join(''));

  // Random existing keys, the same for both.
  let seed = 42;
  const keys = [];
  for (let i = 0; i < LOOKUPS; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    keys.push(`key${seed % N}`);
  }
  const keysFile = join(dir, 'keys.txt');
  writeFileSync(keysFile, `${keys.join('\n')}\n`);
  const keyBufs = keys.map((k) => Buffer.from(k));

  const res = { oursMem: [], oursFile: [], tiny: [], oursLookup: [], tinyLookup: [] };
  for (let r = 0; r < RUNS; r++) {
    res.oursMem.push(
      time(() => {
        const m = new CdbMaker();
        for (const [k, d] of records) m.add(k, d);
        writeFileSync(join(dir, 'mem.cdb'), m.toBuffer());
      }),
    );
    res.oursFile.push(
      await timeAsync(() => writeCdbFile(join(dir, 'ours.cdb'), join(dir, 'ours.tmp'), records)),
    );
    res.tiny.push(
      time(() => {
        const p = spawnSync('sh', ['-c', `cdb -c ${join(dir, 'tiny.cdb')} < ${inputFile}`]);
        if (p.status !== 0) throw new Error(`cdb -c failed: ${p.stderr}`);
      }),
    );
    const db = Cdb.fromBuffer(readFileSync(join(dir, 'tiny.cdb')));
    let found = 0;
    const s = time(() => {
      for (const k of keyBufs) found += db.get(k)?.length ?? 0;
    });
    res.oursLookup.push(LOOKUPS / s);
    const out = execFileSync(bin, [join(dir, 'tiny.cdb'), keysFile, '1'])
      .toString()
      .trim()
      .split(' ');
    res.tinyLookup.push(Number(out[0]) / Number(out[1]));
    if (Number(out[2]) !== found) throw new Error(`lookups disagree: ${out[2]} vs ${found}`);
  }
  if (!readFileSync(join(dir, 'ours.cdb')).equals(readFileSync(join(dir, 'tiny.cdb'))))
    throw new Error('our cdb differs from tinycdb’s for the same records');

  const m = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, median(v)]));
  const fmt = (x, d = 2) => x.toFixed(d);
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node.js ${process.version}; ${N.toLocaleString('en')} records, medians of ${RUNS} runs; files byte-identical.`,
    '',
    '| what | @ucspi/cdb | tinycdb | ratio (ours / tinycdb) |',
    '| --- | --- | --- | --- |',
    `| build, streaming to a file (\`writeCdbFile\` vs \`cdb -c\`) | ${fmt(m.oursFile)} s | ${fmt(m.tiny)} s | ${fmt(m.oursFile / m.tiny)}× the time |`,
    `| build in memory (\`CdbMaker\`, then one write) | ${fmt(m.oursMem)} s | ${fmt(m.tiny)} s | ${fmt(m.oursMem / m.tiny)}× the time |`,
    `| lookups of existing keys, in process (\`get\` vs libcdb \`cdb_find\`) | ${(m.oursLookup / 1e6).toFixed(2)} M/s | ${(m.tinyLookup / 1e6).toFixed(2)} M/s | ${fmt(m.oursLookup / m.tinyLookup)}× the rate |`,
  ];
  console.log(lines.join('\n'));
  if (process.env.BENCH_WRITE !== '0') {
    const md = join(here, '..', '..', 'BENCHMARKS.md');
    let text = '';
    try {
      text = readFileSync(md, 'utf8');
    } catch {
      text = '# Benchmarks\n';
    }
    const section = `## @ucspi/cdb\n\n\`node bench/cdb/run.mjs\` (needs \`cc\` and Debian's tinycdb and libcdb-dev). tinycdb's build is the whole \`cdb -c\` process reading the cdbmake-format input; ours is in-process from an array of records. Lookups: 1,000,000 random existing keys against the same file, ours from a Buffer, tinycdb's through its library from mmap.\n\n${lines.join('\n')}\n`;
    const re = /## @ucspi\/cdb\n[\s\S]*?(?=\n## |$)/;
    text = re.test(text) ? text.replace(re, section) : `${text.trimEnd()}\n\n${section}`;
    writeFileSync(md, text);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// Runs every benchmark in bench/*/run.mjs in turn (each writes its own figures; see BENCHMARKS.md).
// `node bench/run.mjs [NAME...] [--FLAG...]`: only the benches named (directories of bench/), and the
// flags (e.g. --quick) passed on to each of them.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
let failed = 0;
for (const name of readdirSync(here).sort()) {
  const script = join(here, name, 'run.mjs');
  if (!existsSync(script) || (only.length > 0 && !only.includes(name))) continue;
  console.log(`== bench/${name}`);
  const r = spawnSync(process.execPath, [script, ...flags], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;

#!/usr/bin/env node
// Builds @ucspi/exec's native spawner, native/spawn.c -> build/ucspi_exec.node, with the C compiler
// ($CC, default cc) and the Node-API headers that ship with Node.js (<prefix>/include/node). Run at
// install and by `pnpm build`; skipped when the addon is newer than its source.
//
// The addon is optional: when it cannot be built (not Linux, no compiler, no headers) this prints one
// line and exits 0, and @ucspi/exec starts programs with child_process.spawn instead. Under CI
// (CI=true) or with --strict a failed build is an error, so that tests always cover the native path.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(pkg, 'native', 'spawn.c');
const target = join(pkg, 'build', 'ucspi_exec.node');
const strict = process.argv.includes('--strict') || process.env.CI === 'true';

function skip(reason) {
  const line = `@ucspi/exec: native spawner not built (${reason}); programs start through child_process.spawn`;
  if (strict) {
    console.error(`${line}\n@ucspi/exec: fatal: the native spawner is required here (CI or --strict)`);
    process.exit(1);
  }
  console.error(line);
  process.exit(0);
}

if (process.platform !== 'linux') skip(`${process.platform} is not supported`);
if (!existsSync(source)) skip('native/spawn.c is missing');
if (existsSync(target) && statSync(target).mtimeMs >= statSync(source).mtimeMs) process.exit(0);

const includes = [
  process.env.UCSPI_NODE_INCLUDE,
  join(dirname(process.execPath), '..', 'include', 'node'),
].filter(Boolean);
const include = includes.find((dir) => existsSync(join(dir, 'node_api.h')));
if (!include) skip(`no node_api.h in ${includes.join(' or ')}; set UCSPI_NODE_INCLUDE`);

const cc = process.env.CC || 'cc';
const tmp = `${target}.${process.pid}.tmp`;
mkdirSync(dirname(target), { recursive: true });
try {
  execFileSync(
    cc,
    [
      '-O2',
      '-std=gnu11',
      '-Wall',
      '-Wextra',
      '-fPIC',
      '-shared',
      '-fvisibility=hidden',
      `-I${include}`,
      source,
      '-o',
      tmp,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  renameSync(tmp, target);
} catch (err) {
  skip(err.code === 'ENOENT' ? `no C compiler (${cc})` : `${cc} failed`);
}

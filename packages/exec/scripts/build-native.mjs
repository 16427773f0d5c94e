#!/usr/bin/env node
// Builds @ucspi/exec's native spawner from source, native/spawn.c -> build/Release/ucspi_exec.node,
// with the C compiler ($CC, default cc) and the Node-API headers that ship with Node.js
// (<prefix>/include/node). node-gyp-build loads build/Release before the prebuilds in prebuilds/, so a
// source build wins over the shipped binaries.
//
// Run by the repository's `pnpm build` (skipped when the addon is newer than its source). Installing
// the package never runs it: the published package carries prebuilt binaries for linux x64/arm64,
// glibc/musl. A user on another Linux opts in with `node node_modules/@ucspi/exec/scripts/build-native.mjs`.
//
// The addon is optional: when it cannot be built (not Linux, no compiler, no headers) this prints one
// line and exits 0, and @ucspi/exec falls back to child_process.spawn. With UCSPI_REQUIRE_NATIVE=1
// (the project's .ci/run sets it) or --strict a failed build is an error, so that the project's own
// tests always cover the native path. `CI` alone never makes it strict: a dependent's CI must not fail.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(pkg, 'native', 'spawn.c');
const target = join(pkg, 'build', 'Release', 'ucspi_exec.node');
const strict = process.argv.includes('--strict') || process.env.UCSPI_REQUIRE_NATIVE === '1';

function skip(reason) {
  const line = `@ucspi/exec: native spawner not built from source (${reason}); the prebuilt one, if any, is used`;
  if (strict) {
    console.error(
      `${line}\n@ucspi/exec: fatal: a source build is required here (UCSPI_REQUIRE_NATIVE=1 or --strict)`,
    );
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

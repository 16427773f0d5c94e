import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import type { Reporter } from 'vitest/reporters';

type Task = { type: string; result?: { state?: string }; mode?: string; tasks?: Task[] };

/** Prints one plain closing line, `tests: N passed, N failed, N skipped`, that CI logs can be read by. */
const summary: Reporter = {
  onFinished(files = []) {
    const count = { passed: 0, failed: 0, skipped: 0 };
    const walk = (t: Task): void => {
      if (t.tasks) {
        t.tasks.forEach(walk);
        return;
      }
      if (t.type !== 'test') return;
      const state = t.result?.state;
      if (state === 'pass') count.passed++;
      else if (state === 'fail') count.failed++;
      else count.skipped++;
    };
    (files as unknown as Task[]).forEach(walk);
    process.stdout.write(
      `\ntests: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`,
    );
  },
};

// One vitest project per workspace package: unit tests beside the code (src/**/*.test.ts),
// integration tests in test/. Packages import each other through their built dist, so `pnpm test`
// runs `tsc -b` first.
// Paths are taken from this file's folder, not the current directory, so that a package's own
// `pnpm test` (vitest run --project NAME from the package's folder) finds the same projects.
const repo = fileURLToPath(new URL('.', import.meta.url));
const dirs = ['packages', 'apps', 'tooling'].flatMap((top) =>
  readdirSync(join(repo, top), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(repo, top, d.name, 'package.json')))
    .map((d) => join(repo, top, d.name)),
);

export default defineConfig({
  test: {
    projects: dirs.map((dir) => ({
      extends: true,
      test: {
        name: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name as string,
        root: dir,
        include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      },
    })),
    reporters: ['default', summary],
    pool: 'forks',
    // Name lookups of the servers under test go to 127.0.0.1 (nothing, or the dnsmasq a test
    // starts there), never to the machine's resolver; no rewrite file or search domain of the host.
    env: { DNSCACHEIP: '127.0.0.1', DNSREWRITEFILE: '/nonexistent/dnsrewrite', LOCALDOMAIN: '' },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
    passWithNoTests: false,
  },
});

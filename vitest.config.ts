import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// One vitest project per workspace package: unit tests beside the code (src/**/*.test.ts),
// integration tests in test/. Packages import each other through their built dist, so `pnpm test`
// runs `tsc -b` first.
const dirs = ['packages', 'apps', 'tooling'].flatMap((top) =>
  readdirSync(top, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(`${top}/${d.name}/package.json`))
    .map((d) => `${top}/${d.name}`),
);

export default defineConfig({
  test: {
    projects: dirs.map((dir) => ({
      extends: true,
      test: {
        name: JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')).name as string,
        root: dir,
        include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      },
    })),
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
    passWithNoTests: false,
  },
});

import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Find an external program (a real peer or oracle such as `openssl`, `tcprules`, `cdb`) on PATH
 * and in the sbin directories where Debian puts some of them. Returns its path or undefined.
 */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Whether tests that need `name` should run. Locally a missing tool skips those tests (with a
 * notice); under CI (CI=true), where .ci/run installs every tool, a missing tool is an error, so
 * an oracle test can never pass by not running.
 */
export function toolAvailable(name: string): boolean {
  if (findTool(name)) return true;
  if (process.env.CI === 'true') {
    throw new Error(`required test tool "${name}" is not installed (.ci/run should have installed it)`);
  }
  process.stderr.write(`testkit: ${name} not found; skipping the tests that need it\n`);
  return false;
}

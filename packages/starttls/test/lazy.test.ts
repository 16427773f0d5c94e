import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, tempDir } from '@ucspi/testkit';
import { afterAll, expect, it } from 'vitest';

// A tcpclient run must load only the protocol it speaks: the registry imports protocol files on
// demand. A module resolve hook in a child Node.js logs every module the built package loads.

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const dir = tempDir('starttls-lazy-');
afterAll(() => dir.cleanup());

const hook = `import { appendFileSync } from 'node:fs';
let out;
export function initialize(data) { out = data.out; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(out, r.url + '\\n');
  return r;
}`;

async function loaded(use: string): Promise<string[]> {
  const out = join(dir.path, `loaded-${use || 'none'}.txt`);
  const hookFile = join(dir.path, 'hook.mjs');
  writeFileSync(hookFile, hook);
  writeFileSync(out, '');
  const script = `import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
register(pathToFileURL(${JSON.stringify(hookFile)}), { data: { out: ${JSON.stringify(out)} } });
const lib = await import(pathToFileURL(${JSON.stringify(dist)}));
if (${JSON.stringify(use)}) await lib.loadProtocol(${JSON.stringify(use)});`;
  const r = await run(process.execPath, ['--input-type=module', '-e', script]);
  expect(r.stderr.toString()).toBe('');
  expect(r.code).toBe(0);
  return readFileSync(out, 'utf8')
    .split('\n')
    .filter((u) => u.includes('/starttls/dist/'))
    .map((u) => u.replace(/^.*\/starttls\/dist\//, ''));
}

it('importing the package loads no protocol file', async () => {
  const files = await loaded('');
  expect(files).toContain('index.js');
  expect(files.filter((f) => f.startsWith('protocols/'))).toEqual([]);
});

it('using smtp loads smtp.ts (and its helper), no other protocol', async () => {
  const files = await loaded('smtp');
  expect(files.filter((f) => f.startsWith('protocols/')).sort()).toEqual([
    'protocols/_ehlo.js',
    'protocols/smtp.js',
  ]);
});

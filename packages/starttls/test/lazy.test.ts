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

it('NODE_DEBUG=ucspi prints the dialogue on stderr (the library itself never prints otherwise)', async () => {
  const script = `import { createServer, connect } from 'node:net';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
const { startTlsClient } = await import(pathToFileURL(${JSON.stringify(dist)}));
const server = createServer((s) => s.end('554 no service\\r\\n'));
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const socket = connect(server.address().port, '127.0.0.1');
await once(socket, 'connect');
await startTlsClient(socket, 'smtp', async () => { throw new Error('unused'); }).catch((e) => process.stdout.write(e.code));
server.close();`;
  const quiet = await run(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, NODE_DEBUG: '' },
  });
  expect(quiet.stdout.toString()).toBe('UCSPI_ERR_STARTTLS_GREETING');
  expect(quiet.stderr.toString()).toBe('');
  const loud = await run(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, NODE_DEBUG: 'ucspi' },
  });
  expect(loud.stderr.toString()).toMatch(/starttls smtp client < "554 no service"/);
  expect(loud.stderr.toString()).toMatch(/starttls smtp client error UCSPI_ERR_STARTTLS_GREETING/);
});

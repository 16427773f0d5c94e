import { expect, it } from 'vitest';
import { findTool, run } from './index.js';

it('run collects output and the exit code', async () => {
  const r = await run('sh', ['-c', 'cat; echo err >&2; exit 3'], { input: 'hello' });
  expect(r).toMatchObject({ code: 3, signal: null });
  expect(r.stdout.toString()).toBe('hello');
  expect(r.stderr.toString()).toBe('err\n');
});

it('run kills and rejects a process that outlives its time limit', async () => {
  await expect(run('sleep', ['10'], { timeoutMs: 200 })).rejects.toThrow(/timed out after 200 ms/);
});

it('findTool finds sh and not a made-up name', () => {
  expect(findTool('sh')).toMatch(/\/sh$/);
  expect(findTool('no-such-tool-ucspi')).toBeUndefined();
});

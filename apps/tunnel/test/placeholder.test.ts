import { runBin } from '@ucspi/testkit';
import { expect, it } from 'vitest';

it('ucspi-tunnel says it is not implemented and exits 100', async () => {
  const r = await runBin('apps/tunnel', 'ucspi-tunnel', ['127.0.0.1', '443'], { timeoutMs: 10_000 });
  expect(r.code).toBe(100);
  expect(r.stderr.toString()).toBe(
    'ucspi-tunnel: fatal: not implemented yet in this release of @ucspi/tunnel\n',
  );
  expect(r.stdout.length).toBe(0);
});

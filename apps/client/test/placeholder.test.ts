import { runBin } from '@ucspi/testkit';
import { expect, it } from 'vitest';

it('tcpclient says it is not implemented and exits 100', async () => {
  const r = await runBin('apps/client', 'tcpclient', ['127.0.0.1', '443'], { timeoutMs: 10_000 });
  expect(r.code).toBe(100);
  expect(r.stderr.toString()).toBe(
    'tcpclient: fatal: not implemented yet in this release of @ucspi/client\n',
  );
  expect(r.stdout.length).toBe(0);
});

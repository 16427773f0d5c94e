import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '@ucspi/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { servicePort } from './services.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const file = join(tmp.path, 'services');
writeFileSync(
  file,
  [
    '# comment line',
    'smtp\t\t25/tcp\t\tmail',
    'domain\t\t53/udp',
    'domain\t\t53/tcp',
    'https\t\t443/tcp\t\t\t# http protocol over TLS/SSL',
    'broken\t\tnotaport/tcp',
    'huge\t\t70000/tcp',
    '',
  ].join('\n'),
);

describe('servicePort', () => {
  it('reads names and aliases for the protocol asked, numbers as they are', async () => {
    expect(await servicePort('smtp', 'tcp', file)).toBe(25);
    expect(await servicePort('mail', 'tcp', file)).toBe(25);
    expect(await servicePort('https', 'tcp', file)).toBe(443);
    expect(await servicePort('domain', 'udp', file)).toBe(53);
    expect(await servicePort('0', 'tcp', file)).toBe(0);
    expect(await servicePort('8080', 'tcp', file)).toBe(8080);
  });

  it('bad input: unknown, wrong protocol, malformed, out of range, unreadable file', async () => {
    expect(await servicePort('nosuch', 'tcp', file)).toBeUndefined();
    expect(await servicePort('smtp', 'udp', file)).toBeUndefined();
    expect(await servicePort('broken', 'tcp', file)).toBeUndefined();
    expect(await servicePort('huge', 'tcp', file)).toBeUndefined();
    expect(await servicePort('65536', 'tcp', file)).toBeUndefined();
    expect(await servicePort('SMTP', 'tcp', file)).toBeUndefined();
    expect(await servicePort('smtp', 'tcp', join(tmp.path, 'missing'))).toBeUndefined();
  });
});

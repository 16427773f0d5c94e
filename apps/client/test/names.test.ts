// A host name with several addresses: each is tried in turn, as ucspi-tcp's tcpclient does. The
// names come from a dnsmasq the test starts on 127.0.0.2:53 (DNSCACHEIP=127.0.0.2; the server
// tests have theirs on 127.0.0.1), never from the machine's resolver.
import { createServer, type Server } from 'node:net';
import { type Dnsmasq, startDnsmasq, toolAvailable } from '@ucspi/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, tcpclient } from './_helpers.js';

const root = process.getuid?.() === 0;
if (!root && process.env.CI === 'true') throw new Error('the name tests need root (a DNS server on port 53)');

describe.runIf(root && toolAvailable('dnsmasq'))('host names with several addresses', () => {
  let dns: Dnsmasq;
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    // Only 127.0.0.4 listens; 127.0.0.3 refuses on the same port.
    server = createServer((c) => c.end('hello from 127.0.0.4\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.4', resolve));
    port = (server.address() as { port: number }).port;
    dns = await startDnsmasq(
      53,
      [
        '--local=/example.test/',
        '--host-record=refused-first.example.test,127.0.0.3',
        '--host-record=refused-first.example.test,127.0.0.4',
        '--host-record=nobody.example.test,127.0.0.3',
      ],
      '127.0.0.2',
    );
  });
  afterAll(async () => {
    await dns?.stop();
    server?.close();
  });

  it('an address that refuses is skipped for the next one of the same name', async () => {
    const r = await tcpclient(['-H', '-R', '-l', 'me', 'refused-first.example.test', String(port)], {
      env: cleanEnv({ DNSCACHEIP: '127.0.0.2' }),
    });
    // As ucspi-tcp's tcpclient: a warning for the address that refused (when it came first), then on.
    expect(r.stderr.toString()).toMatch(
      /^(tcpclient: unable to connect to 127\.0\.0\.3 port \d+: connection refused\n)?$/,
    );
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('hello from 127.0.0.4\n');
  });

  it('bad input: every address refuses (exit 111, naming the last one), or the name has none (exit 111)', async () => {
    const refused = await tcpclient(['-H', '-R', '-l', 'me', 'nobody.example.test', String(port)], {
      env: cleanEnv({ DNSCACHEIP: '127.0.0.2' }),
    });
    expect(refused.code).toBe(111);
    expect(refused.stderr.toString()).toMatch(
      /unable to connect to 127\.0\.0\.3 port \d+: connection refused/,
    );
    const none = await tcpclient(['-H', '-R', '-l', 'me', 'none.example.test', String(port)], {
      env: cleanEnv({ DNSCACHEIP: '127.0.0.2' }),
    });
    expect(none.code).toBe(111);
    expect(none.stderr.toString()).toMatch(/none\.example\.test/);
  });
});

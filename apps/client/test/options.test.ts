// Bad command lines: the usage and exit 100, before any connection (a bad input for each option
// that takes one).
import { freePort } from '@ucspi/testkit';
import { expect, it } from 'vitest';
import { tcpclient } from './_helpers.js';

const USAGE = /^tcpclient: usage: tcpclient \[ -46hHrRdDqQvz \]/m;

it('without arguments, or without a port, prints the usage and exits 100', async () => {
  for (const args of [[], ['127.0.0.1'], ['-v']]) {
    const r = await tcpclient(args);
    expect(r.code).toBe(100);
    expect(r.stderr.toString()).toMatch(USAGE);
    // The help text documents the evaluation hook.
    expect(r.stderr.toString()).toContain('-E PROG');
    expect(r.stdout.length).toBe(0);
  }
});

it('rejects bad option values with the reason and the usage (exit 100)', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['-x', '127.0.0.1', '1'], /^tcpclient: illegal option -- x$/m],
    [['-T'], /^tcpclient: option requires an argument -- T$/m],
    [['-T', 'soon', '127.0.0.1', '1'], /bad timeout for -T: soon/],
    [['-T', '2+x', '127.0.0.1', '1'], /bad timeout for -T/],
    [['-t', '-1', '127.0.0.1', '1'], /bad number for -t/],
    [['-a', '1s', '127.0.0.1', '1'], /bad number for -a/],
    [['-i', 'localhost', '127.0.0.1', '1'], /-i localhost: not an IP address/],
    [['-p', '70000', '127.0.0.1', '1'], /-p 70000: not a port number/],
    [['-M', 'SSLv3', '-n', '', '127.0.0.1', '1'], /-M SSLv3: protocol no longer supported/],
    [['-M', 'TLSv9', '-n', '', '127.0.0.1', '1'], /-M TLSv9: unknown TLS method/],
    [['-E', '/bin/true', '127.0.0.1', '1'], /-E needs TLS/],
    [['-m', '', '-n', '', '127.0.0.1', '1'], /-m needs a host name/],
  ];
  for (const [args, message] of cases) {
    const r = await tcpclient(args);
    expect(r.code, args.join(' ')).toBe(100);
    expect(r.stderr.toString()).toMatch(message);
    expect(r.stderr.toString()).toMatch(USAGE);
  }
});

it('an unknown STARTTLS protocol is refused before connecting (exit 100)', async () => {
  const r = await tcpclient(['-s', 'gopher', '127.0.0.1', '1']);
  expect(r.code).toBe(100);
  expect(r.stderr.toString()).toBe('tcpclient: fatal: unknown STARTTLS protocol: gopher\n');
});

it('options stop at the first operand: the program gets its own -v', async () => {
  // Nothing listens on a port that was free a moment ago: the connection fails before the program would run, and the -v
  // after the operands was not taken as tcpclient's (no "using un-encrypted connection" line).
  const port = await freePort();
  const r = await tcpclient(['127.0.0.1', String(port), 'prog', '-v']);
  expect(r.code).toBe(111);
  expect(r.stderr.toString()).toBe(
    `tcpclient: unable to connect to 127.0.0.1 port ${port}: connection refused\n`,
  );
});

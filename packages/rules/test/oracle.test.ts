import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, runBin, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, describe, expect, it } from 'vitest';

// Debian's ucspi-tcp is the oracle: the same rules compiled by both tcprules give byte-identical
// cdbs, and both tcprulescheck programs give the same answers on both cdbs.
const PKG = 'packages/rules';

const corpus: Record<string, string> = {
  basic: '# mail relays\n127.0.0.1:allow,RELAYCLIENT=""\n10.0.0.:deny\n:allow\n',
  ranges:
    '127.0-5.:allow,A="1"\n1.2.3.250-300:deny\n100-102.:allow\n172.16.5.10-20:allow,N=/x/\n1.2.3.9-5:deny\n',
  quotes: ':allow,X="a b",Y=/a"b/,Z=||,W=xhix,V=="q"=,A B=:x:\n',
  hosts: '=mail.example.com:allow,SMTP="1"\n=.example.com:deny\n=:allow,ANY="1"\n=.:deny\n',
  users: 'joe@127.0.0.1:allow,WHO="joe"\n@127.0.0.2:deny\njoe@=h.example:allow\n',
  duplicates: '1.2.3.4:deny\n1.2.3.4:allow,LATE="1"\n1.2.3.:allow\n1.2.3.:deny\n',
  oddlines: 'no colon is ignored\n\n  leading:allow\ntrailing:allow \t \n#c:deny\n:deny,E=""',
  empty: '',
};
const bad = [
  'a:allow\r\n',
  'a:Allow\n',
  'a:allow,X\n',
  'a:allow,X="unterminated\n',
  'a:allow,X="y"z\n',
  'x-5:allow\n',
  '4-5-6:allow\n',
  'ok:allow\nthen:bad\n',
];
const queries: Array<Record<string, string>> = [
  { TCPREMOTEIP: '127.0.0.1' },
  { TCPREMOTEIP: '127.0.0.2' },
  { TCPREMOTEIP: '127.3.2.1' },
  { TCPREMOTEIP: '10.0.0.9' },
  { TCPREMOTEIP: '1.2.3.4' },
  { TCPREMOTEIP: '1.2.3.5' },
  { TCPREMOTEIP: '1.2.3.255' },
  { TCPREMOTEIP: '101.1.1.1' },
  { TCPREMOTEIP: '172.16.5.15' },
  { TCPREMOTEIP: '8.8.8.8' },
  {},
  { TCPREMOTEIP: '8.8.8.8', TCPREMOTEHOST: 'mail.example.com' },
  { TCPREMOTEIP: '8.8.8.8', TCPREMOTEHOST: 'www.example.com' },
  { TCPREMOTEIP: '8.8.8.8', TCPREMOTEHOST: '' },
  { TCPREMOTEIP: '8.8.8.8', TCPREMOTEHOST: 'dot.' },
  { TCPREMOTEIP: '127.0.0.1', TCPREMOTEINFO: 'joe' },
  { TCPREMOTEIP: '127.0.0.2', TCPREMOTEINFO: '' },
  { TCPREMOTEIP: '9.9.9.9', TCPREMOTEINFO: 'joe', TCPREMOTEHOST: 'h.example' },
  { TCPREMOTEIP: '::1' },
];

const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

describe.runIf(toolAvailable('tcprules') && toolAvailable('tcprulescheck'))('against ucspi-tcp', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());
  const f = (n: string) => join(tmp.path, n);

  for (const [name, text] of Object.entries(corpus)) {
    it(`compiles "${name}" to the same cdb and answers the same`, async () => {
      const theirs = await run('tcprules', [f(`${name}.real.cdb`), f(`${name}.real.tmp`)], { input: text });
      const ours = await runBin(PKG, 'tcprules', [f(`${name}.ours.cdb`), f(`${name}.ours.tmp`)], {
        input: text,
      });
      expect(ours.code).toBe(theirs.code);
      expect(ours.code).toBe(0);
      expect(readFileSync(f(`${name}.ours.cdb`)).equals(readFileSync(f(`${name}.real.cdb`)))).toBe(true);
      for (const q of queries) {
        for (const cdb of [`${name}.real.cdb`, `${name}.ours.cdb`]) {
          const env = { ...baseEnv, ...q };
          const a = await run('tcprulescheck', [f(cdb)], { env });
          const b = await runBin(PKG, 'tcprulescheck', [f(cdb)], { env });
          expect({ q, out: b.stdout.toString('latin1'), code: b.code }).toEqual({
            q,
            out: a.stdout.toString('latin1'),
            code: a.code,
          });
        }
      }
    });
  }

  it('fails on bad lines like the original, naming the line, and keeps the old cdb', async () => {
    const cdb = f('keep.cdb');
    await runBin(PKG, 'tcprules', [cdb, f('keep.tmp')], { input: corpus.basic });
    const before = readFileSync(cdb);
    for (const text of bad) {
      const theirs = await run('tcprules', [f('x.cdb'), f('x.tmp')], { input: text });
      const ours = await runBin(PKG, 'tcprules', [cdb, f('keep.tmp')], { input: text });
      expect(ours.code).toBe(100);
      expect(theirs.code).toBe(100);
      const lineNo =
        text
          .split('\n')
          .findIndex(
            (l) =>
              `${l}\n` ===
              theirs.stderr.toString('latin1').replace(/^tcprules: fatal: unable to parse this line: /, ''),
          ) + 1;
      expect(ours.stderr.toString('latin1')).toBe(
        `${theirs.stderr.toString('latin1').slice(0, -1)} (line ${lineNo})\n`,
      );
      expect(readFileSync(cdb).equals(before)).toBe(true);
    }
  });

  it('reports usage and system errors with the same words and exit codes', async () => {
    const cases: string[][] = [[], ['only.cdb'], [f('y.cdb'), join(tmp.path, 'no/such/dir/t')]];
    for (const args of cases) {
      const theirs = await run('tcprules', args, { input: corpus.basic });
      const ours = await runBin(PKG, 'tcprules', args, { input: corpus.basic });
      expect([ours.code, ours.stderr.toString()]).toEqual([theirs.code, theirs.stderr.toString()]);
    }
    // A file too short to be a cdb: djb's cdb says error_proto, `protocol error`.
    writeFileSync(f('short.cdb'), 'x');
    for (const args of [[], [f('absent.cdb')], [f('short.cdb')]]) {
      const theirs = await run('tcprulescheck', args, { env: baseEnv });
      const ours = await runBin(PKG, 'tcprulescheck', args, { env: baseEnv });
      expect([ours.code, ours.stderr.toString(), ours.stdout.toString()]).toEqual([
        theirs.code,
        theirs.stderr.toString(),
        theirs.stdout.toString(),
      ]);
    }
  });
});

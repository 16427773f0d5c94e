import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir, toolAvailable } from '@ucspi/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { Cdb, CdbMaker, writeCdbFile } from '../src/index.js';

// tinycdb's cdb(1) as the oracle: its -c input is `+klen,dlen:key->data\n` lines and an empty line.
const records: Array<[Buffer, Buffer]> = [];
for (let i = 0; i < 3000; i++) records.push([Buffer.from(`k${i}`), Buffer.from(`value of ${i}`)]);
records.push([Buffer.from('k5'), Buffer.from('duplicate')]);
records.push([Buffer.from(''), Buffer.from('empty key')]);
records.push([Buffer.from([0, 10, 255, 58]), Buffer.from([0, 0, 10, 45, 62])]);

function cdbmakeInput(recs: Array<[Buffer, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, d] of recs)
    parts.push(Buffer.from(`+${k.length},${d.length}:`), k, Buffer.from('->'), d, Buffer.from('\n'));
  parts.push(Buffer.from('\n'));
  return Buffer.concat(parts);
}

describe.runIf(toolAvailable('cdb'))('interop with tinycdb', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('writes byte-identical files to cdb -c for the same records in the same order', async () => {
    const theirs = join(tmp.path, 'theirs.cdb');
    const r = await run('cdb', ['-c', theirs], { input: cdbmakeInput(records) });
    expect(r.code, r.stderr.toString()).toBe(0);
    const m = new CdbMaker();
    for (const [k, d] of records) m.add(k, d);
    expect(m.toBuffer().equals(readFileSync(theirs))).toBe(true);
  });

  it('reads what cdb -c wrote', async () => {
    const theirs = join(tmp.path, 'theirs2.cdb');
    await run('cdb', ['-c', theirs], { input: cdbmakeInput(records) });
    const db = await Cdb.open(theirs);
    expect(db.getAll('k5').map(String)).toEqual(['value of 5', 'duplicate']);
    expect(db.get(Buffer.from([0, 10, 255, 58]))).toEqual(Buffer.from([0, 0, 10, 45, 62]));
    expect([...db.entries()]).toEqual(records);
  });

  it('cdb -d dumps and cdb -q queries what we wrote', async () => {
    const ours = join(tmp.path, 'ours.cdb');
    await writeCdbFile(ours, join(tmp.path, 'ours.tmp'), records);
    const dump = await run('cdb', ['-d', ours]);
    expect(dump.code).toBe(0);
    expect(dump.stdout.equals(cdbmakeInput(records))).toBe(true);
    const q = await run('cdb', ['-q', ours, 'k2999']);
    expect(q.stdout.toString()).toBe('value of 2999');
    const second = await run('cdb', ['-q', '-n', '2', ours, 'k5']);
    expect(second.stdout.toString()).toBe('duplicate');
    const missing = await run('cdb', ['-q', ours, 'nope']);
    expect(missing.code).toBe(100);
  });
});

describe.runIf(toolAvailable('tcprules'))('interop with ucspi-tcp', () => {
  it('reads a cdb written by the real tcprules', async () => {
    const tmp = tempDir();
    try {
      const cdb = join(tmp.path, 'rules.cdb');
      const r = await run('tcprules', [cdb, join(tmp.path, 'rules.tmp')], {
        input: '10.0.0.:deny\n127.0.0.1:allow,RELAYCLIENT=""\n:allow\n',
      });
      expect(r.code, r.stderr.toString()).toBe(0);
      const db = await Cdb.open(cdb);
      expect(db.get('10.0.0.')).toEqual(Buffer.from('D\0'));
      expect(db.get('127.0.0.1')).toEqual(Buffer.from('+RELAYCLIENT=\0'));
      expect(db.get('')).toEqual(Buffer.alloc(0));
    } finally {
      tmp.cleanup();
    }
  });
});

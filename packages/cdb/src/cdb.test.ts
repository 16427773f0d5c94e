import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '@ucspi/testkit';
import { describe, expect, it } from 'vitest';
import { Cdb, CdbError, CdbErrorCodes, CdbFileWriter, CdbMaker, cdbHash, writeCdbFile } from './index.js';

function sample(n: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < n; i++) out.push([`key${i}`, `data ${i}`]);
  return out;
}

describe('cdbHash', () => {
  it('is djb hash over bytes', () => {
    expect(cdbHash(Buffer.from(''))).toBe(5381);
    // ((5381 << 5) + 5381) ^ 'a' = 177604 ^ 97
    expect(cdbHash(Buffer.from('a'))).toBe((177573 ^ 97) >>> 0);
    expect(cdbHash(Buffer.from('x'.repeat(100)))).toBeLessThan(2 ** 32);
  });
});

describe('CdbMaker and Cdb', () => {
  it('finds first and all records, including empty keys and values, and iterates in order', () => {
    const m = new CdbMaker();
    for (const [k, d] of sample(3000)) m.add(k, d);
    m.add('key7', 'second');
    m.add('', '');
    m.add(Buffer.from([0, 255]), Buffer.from([1, 2, 3]));
    const db = Cdb.fromBuffer(m.toBuffer());
    expect(db.get('key0')?.toString()).toBe('data 0');
    expect(db.get('key2999')?.toString()).toBe('data 2999');
    expect(db.getAll('key7').map(String)).toEqual(['data 7', 'second']);
    expect(db.get('')?.length).toBe(0);
    expect(db.get(Buffer.from([0, 255]))).toEqual(Buffer.from([1, 2, 3]));
    expect(db.get('key3000')).toBeUndefined();
    expect(db.getAll('missing')).toEqual([]);
    const all = [...db.entries()];
    expect(all).toHaveLength(3003);
    expect(all[0]!.map(String)).toEqual(['key0', 'data 0']);
    expect(all[3000]!.map(String)).toEqual(['key7', 'second']);
  });

  it('an empty database is 2048 bytes and finds nothing', () => {
    const buf = new CdbMaker().toBuffer();
    expect(buf.length).toBe(2048);
    expect(Cdb.fromBuffer(buf).get('x')).toBeUndefined();
    expect([...Cdb.fromBuffer(buf).entries()]).toEqual([]);
  });

  it('refuses to pass the size limit before writing a wrong database', () => {
    const m = new CdbMaker({ maxSize: 4096 });
    m.add('k', 'x'.repeat(1000));
    expect(() => m.add('k2', 'x'.repeat(2000))).toThrowError(
      expect.objectContaining({ code: CdbErrorCodes.TOO_LARGE, temporary: false }),
    );
  });
});

describe('corrupt input', () => {
  it('a short buffer is corrupt', () => {
    expect(() => Cdb.fromBuffer(Buffer.alloc(100))).toThrowError(
      expect.objectContaining({ code: CdbErrorCodes.CORRUPT }),
    );
  });

  it('truncations and bit flips never give anything but CdbError, and never hang', () => {
    const m = new CdbMaker();
    const recs = sample(200);
    for (const [k, d] of recs) m.add(k, d);
    const good = m.toBuffer();
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const probe = (buf: Buffer) => {
      try {
        const db = Cdb.fromBuffer(buf);
        for (const [k] of recs.slice(0, 20)) db.getAll(k);
        for (const _ of db.entries());
      } catch (err) {
        expect(err).toBeInstanceOf(CdbError);
        expect((err as CdbError).code).toBe(CdbErrorCodes.CORRUPT);
      }
    };
    for (let i = 0; i < 300; i++) probe(good.subarray(0, rand(good.length)));
    for (let i = 0; i < 1000; i++) {
      const bad = Buffer.from(good);
      for (let j = 0; j < 4; j++) bad[rand(bad.length)] = rand(256);
      probe(bad);
    }
    // A table whose slots are all full of the wrong hash must still end: probing is bounded.
    const loop = Buffer.from(good);
    const h = cdbHash(Buffer.from('nope'));
    const tpos = loop.readUInt32LE((h & 255) * 8);
    const tlen = loop.readUInt32LE((h & 255) * 8 + 4);
    for (let s = 0; s < tlen; s++) {
      loop.writeUInt32LE(h ^ 1, tpos + s * 8);
      loop.writeUInt32LE(2048, tpos + s * 8 + 4);
    }
    expect(Cdb.fromBuffer(loop).get('nope')).toBeUndefined();
  });
});

describe('CdbFileWriter', () => {
  it('streams to a temporary file and renames it into place; the result equals CdbMaker', async () => {
    const tmp = tempDir();
    try {
      const recs = sample(20_000);
      await writeCdbFile(join(tmp.path, 'x.cdb'), join(tmp.path, 'x.tmp'), recs);
      const m = new CdbMaker();
      for (const [k, d] of recs) m.add(k, d);
      expect(readFileSync(join(tmp.path, 'x.cdb')).equals(m.toBuffer())).toBe(true);
      expect((await Cdb.open(join(tmp.path, 'x.cdb'))).get('key19999')?.toString()).toBe('data 19999');
      expect(Cdb.openSync(join(tmp.path, 'x.cdb')).get('key5')?.toString()).toBe('data 5');
    } finally {
      tmp.cleanup();
    }
  });

  it('leaves the existing database untouched until finish, and after an abort', async () => {
    const tmp = tempDir();
    try {
      const final = join(tmp.path, 'rules.cdb');
      await writeCdbFile(final, join(tmp.path, 't'), [['old', '1']]);
      const before = readFileSync(final);
      const w = await CdbFileWriter.create(join(tmp.path, 't'));
      await w.add('new', '2');
      expect(readFileSync(final).equals(before)).toBe(true);
      await w.abort();
      expect(readFileSync(final).equals(before)).toBe(true);
      await expect(
        writeCdbFile(
          final,
          join(tmp.path, 't'),
          (function* () {
            yield ['a', 'b'] as const;
            throw new Error('input failed');
          })(),
        ),
      ).rejects.toThrow('input failed');
      expect(readFileSync(final).equals(before)).toBe(true);
    } finally {
      tmp.cleanup();
    }
  });

  it('reports an uncreatable temporary file, an impossible rename and an unreadable file with the cause', async () => {
    const tmp = tempDir();
    try {
      await expect(CdbFileWriter.create(join(tmp.path, 'no/such/dir/t'))).rejects.toMatchObject({
        code: CdbErrorCodes.CREATE,
        temporary: true,
        cause: expect.objectContaining({ code: 'ENOENT' }),
      });
      const w = await CdbFileWriter.create(join(tmp.path, 't'));
      await expect(w.finish(join(tmp.path, 'missing/dir/x.cdb'))).rejects.toMatchObject({
        code: CdbErrorCodes.RENAME,
      });
      await expect(Cdb.open(join(tmp.path, 'absent.cdb'))).rejects.toMatchObject({
        code: CdbErrorCodes.READ,
        cause: expect.objectContaining({ code: 'ENOENT' }),
      });
    } finally {
      tmp.cleanup();
    }
  });
});

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { CdbError, CdbErrorCodes } from './errors.js';
import { cdbHash, toBytes } from './hash.js';

const HEADER = 2048;

/**
 * A constant database held in memory (djb's format, https://cr.yp.to/cdb/cdb.txt). Every
 * position and length read from the data is checked against its size, and probing visits each
 * slot at most once, so a corrupt or truncated file gives a CdbError, never a wrong answer or a
 * hang.
 */
export class Cdb {
  readonly #buf: Buffer;

  private constructor(buf: Buffer) {
    if (buf.length < HEADER) throw corrupt(`${buf.length} bytes is shorter than the 2048-byte header`);
    this.#buf = buf;
  }

  /** Use `buf` as the database (no copy is made; do not modify it afterwards). */
  static fromBuffer(buf: Uint8Array): Cdb {
    return new Cdb(toBytes(buf));
  }

  /** Read the file at `path` into memory. @throws {CdbError} UCSPI_ERR_CDB_READ (cause: the system error) or _CORRUPT */
  static async open(path: string): Promise<Cdb> {
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (cause) {
      throw new CdbError(CdbErrorCodes.READ, `unable to read ${path}`, { path, cause });
    }
    return new Cdb(buf);
  }

  /** Synchronous {@link Cdb.open}, for tools; servers should use open(). */
  static openSync(path: string): Cdb {
    let buf: Buffer;
    try {
      buf = readFileSync(path);
    } catch (cause) {
      throw new CdbError(CdbErrorCodes.READ, `unable to read ${path}`, { path, cause });
    }
    return new Cdb(buf);
  }

  /** Size of the database in bytes. */
  get size(): number {
    return this.#buf.length;
  }

  /** The data of the first record with this key (cdb_find), or undefined. */
  get(key: Uint8Array | string): Buffer | undefined {
    let found: Buffer | undefined;
    this.#find(toBytes(key), (data) => {
      found = data;
      return false;
    });
    return found;
  }

  /** The data of every record with this key, in insertion order (cdb_findnext). */
  getAll(key: Uint8Array | string): Buffer[] {
    const all: Buffer[] = [];
    this.#find(toBytes(key), (data) => {
      all.push(data);
      return true;
    });
    return all;
  }

  /** Probe the key's table; `onData` returns whether to go on to the next record with this key. */
  #find(key: Buffer, onData: (data: Buffer) => boolean): void {
    const buf = this.#buf;
    const size = buf.length;
    const h = cdbHash(key);
    const tpos = buf.readUInt32LE((h & 255) * 8);
    const tlen = buf.readUInt32LE((h & 255) * 8 + 4);
    if (tlen === 0) return;
    if (tpos < HEADER || tpos + tlen * 8 > size) throw corrupt(`hash table ${h & 255} out of range`);
    const klen = key.length;
    let slot = (h >>> 8) % tlen;
    for (let n = 0; n < tlen; n++) {
      const at = tpos + slot * 8;
      const pos = buf.readUInt32LE(at + 4);
      if (pos === 0) return;
      if (buf.readUInt32LE(at) === h) {
        if (pos < HEADER || pos + 8 > size) throw corrupt(`record at ${pos} out of range`);
        const dlen = buf.readUInt32LE(pos + 4);
        const start = pos + 8;
        if (start + buf.readUInt32LE(pos) + dlen > size) throw corrupt(`record at ${pos} runs past the end`);
        if (buf.readUInt32LE(pos) === klen) {
          let same = true;
          for (let i = 0; i < klen; i++) {
            if (buf[start + i] !== key[i]) {
              same = false;
              break;
            }
          }
          if (same && !onData(buf.subarray(start + klen, start + klen + dlen))) return;
        }
      }
      if (++slot === tlen) slot = 0;
    }
  }

  #record(pos: number): { key: Buffer; data: Buffer; end: number } {
    const buf = this.#buf;
    if (pos < HEADER || pos + 8 > buf.length) throw corrupt(`record at ${pos} out of range`);
    const klen = buf.readUInt32LE(pos);
    const dlen = buf.readUInt32LE(pos + 4);
    const end = pos + 8 + klen + dlen;
    if (end > buf.length) throw corrupt(`record at ${pos} runs past the end`);
    return { key: buf.subarray(pos + 8, pos + 8 + klen), data: buf.subarray(pos + 8 + klen, end), end };
  }

  /** Every record in insertion order, as [key, data]. */
  *entries(): IterableIterator<[Buffer, Buffer]> {
    // Records run from the header to the first hash table (the smallest table position).
    let end = this.#buf.length;
    for (let i = 0; i < 256; i++) end = Math.min(end, this.#buf.readUInt32LE(i * 8));
    if (end < HEADER) throw corrupt('hash table position inside the header');
    let pos = HEADER;
    while (pos < end) {
      const r = this.#record(pos);
      if (r.end > end) throw corrupt(`record at ${pos} runs into the hash tables`);
      yield [r.key, r.data];
      pos = r.end;
    }
  }
}

function corrupt(why: string): CdbError {
  return new CdbError(CdbErrorCodes.CORRUPT, `corrupt cdb: ${why}`);
}

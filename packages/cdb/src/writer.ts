import { type FileHandle, open, rename } from 'node:fs/promises';
import { CdbError, CdbErrorCodes } from './errors.js';
import { cdbHashRange } from './hash.js';

const HEADER = 2048;
const MAX = 0xffffffff;

/** Options of the writers. */
export interface CdbWriterOptions {
  /** Largest database to allow, in bytes; the format's own limit (4 GiB - 1) is the default and the maximum. */
  maxSize?: number;
}

/**
 * The part of djb's cdb_make shared by both writers: positions and hashes of the records so far,
 * and the 256 hash tables built from them exactly as cdb_make builds them, so that the same
 * records in the same order give a byte-identical file.
 */
class Tables {
  #hashes = new Uint32Array(1024);
  #positions = new Uint32Array(1024);
  count = 0;
  pos = HEADER;
  readonly maxSize: number;

  constructor(opts: CdbWriterOptions) {
    this.maxSize = Math.min(opts.maxSize ?? MAX, MAX);
  }

  /** Account for one record of `size` bytes whose key hashes to `hash`. @throws TOO_LARGE */
  add(hash: number, size: number): void {
    // The tables need 16 bytes per record (two slots) on top of the records themselves.
    if (this.pos + size + 16 * (this.count + 1) > this.maxSize) {
      throw new CdbError(
        CdbErrorCodes.TOO_LARGE,
        `cdb would exceed ${this.maxSize} bytes (the format's limit is 4 GiB)`,
      );
    }
    if (this.count === this.#hashes.length) {
      const h = new Uint32Array(this.count * 2);
      h.set(this.#hashes);
      this.#hashes = h;
      const p = new Uint32Array(this.count * 2);
      p.set(this.#positions);
      this.#positions = p;
    }
    this.#hashes[this.count] = hash;
    this.#positions[this.count] = this.pos;
    this.count++;
    this.pos += size;
  }

  /** The 2048-byte header and the hash tables that follow the records. */
  finish(): { header: Buffer; tables: Buffer } {
    const n = this.count;
    const counts = new Uint32Array(256);
    for (let i = 0; i < n; i++) counts[this.#hashes[i]! & 255]!++;
    const start = new Uint32Array(256);
    for (let i = 0, u = 0; i < 256; i++) {
      start[i] = u;
      u += counts[i]!;
    }
    // Records of each bucket in insertion order (cdb_make's split array).
    const split = new Uint32Array(n);
    const fill = start.slice();
    for (let i = 0; i < n; i++) split[fill[this.#hashes[i]! & 255]!++] = i;

    const header = Buffer.alloc(HEADER);
    const tables = Buffer.alloc(16 * n);
    let pos = this.pos;
    let off = 0;
    for (let b = 0; b < 256; b++) {
      const len = counts[b]! * 2;
      header.writeUInt32LE(pos, b * 8);
      header.writeUInt32LE(len, b * 8 + 4);
      for (let k = 0; k < counts[b]!; k++) {
        const r = split[start[b]! + k]!;
        const h = this.#hashes[r]!;
        let where = (h >>> 8) % len;
        while (tables.readUInt32LE(off + where * 8 + 4) !== 0) if (++where === len) where = 0;
        tables.writeUInt32LE(h, off + where * 8);
        tables.writeUInt32LE(this.#positions[r]!, off + where * 8 + 4);
      }
      off += len * 8;
      pos += len * 8;
    }
    return { header, tables };
  }
}

/** A growable byte buffer that records are written into directly (no per-record allocation). */
class Sink {
  buf: Buffer;
  len = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Write one record (klen, dlen, key, data) and return the key's hash. */
  record(key: Uint8Array | string, data: Uint8Array | string): { hash: number; size: number } {
    const klen = typeof key === 'string' ? Buffer.byteLength(key) : key.length;
    const dlen = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    const size = 8 + klen + dlen;
    if (this.len + size > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + size));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    const b = this.buf;
    const at = this.len;
    b.writeUInt32LE(klen, at);
    b.writeUInt32LE(dlen, at + 4);
    if (typeof key === 'string') b.write(key, at + 8, 'utf8');
    else b.set(key, at + 8);
    if (typeof data === 'string') b.write(data, at + 8 + klen, 'utf8');
    else b.set(data, at + 8 + klen);
    const hash = cdbHashRange(b, at + 8, at + 8 + klen);
    this.len += size;
    return { hash, size };
  }
}

/** Write a record and account for it; a record over the size limit is taken back out. */
function addRecord(sink: Sink, tables: Tables, key: Uint8Array | string, data: Uint8Array | string): void {
  const before = sink.len;
  const { hash, size } = sink.record(key, data);
  try {
    tables.add(hash, size);
  } catch (err) {
    sink.len = before;
    throw err;
  }
}

/** Builds a cdb in memory. */
export class CdbMaker {
  readonly #tables: Tables;
  readonly #sink = new Sink(1 << 16);

  constructor(opts: CdbWriterOptions = {}) {
    this.#tables = new Tables(opts);
  }

  /** Add a record; duplicates are kept (readers return the first). @throws {CdbError} UCSPI_ERR_CDB_TOO_LARGE */
  add(key: Uint8Array | string, data: Uint8Array | string): void {
    addRecord(this.#sink, this.#tables, key, data);
  }

  /** The finished database. */
  toBuffer(): Buffer {
    const { header, tables } = this.#tables.finish();
    return Buffer.concat([header, this.#sink.buf.subarray(0, this.#sink.len), tables]);
  }
}

/**
 * Streams a cdb into a temporary file and renames it into place, as tcprules does: a reader of
 * the final path sees the old database or the new one, never a half-written one.
 */
export class CdbFileWriter {
  readonly #fh: FileHandle;
  readonly #tmpPath: string;
  readonly #tables: Tables;
  readonly #sink = new Sink(1 << 16);
  #closed = false;

  private constructor(fh: FileHandle, tmpPath: string, opts: CdbWriterOptions) {
    this.#fh = fh;
    this.#tmpPath = tmpPath;
    this.#tables = new Tables(opts);
  }

  /** Create (or truncate) the temporary file. @throws {CdbError} UCSPI_ERR_CDB_CREATE with the system error as cause */
  static async create(tmpPath: string, opts: CdbWriterOptions = {}): Promise<CdbFileWriter> {
    let fh: FileHandle;
    try {
      fh = await open(tmpPath, 'w', 0o644);
    } catch (cause) {
      throw new CdbError(CdbErrorCodes.CREATE, `unable to create ${tmpPath}`, { path: tmpPath, cause });
    }
    const w = new CdbFileWriter(fh, tmpPath, opts);
    w.#sink.buf.fill(0, 0, HEADER); // the header, rewritten at finish
    w.#sink.len = HEADER;
    return w;
  }

  /** Add a record; await each call before the next. @throws {CdbError} UCSPI_ERR_CDB_TOO_LARGE, UCSPI_ERR_CDB_WRITE */
  async add(key: Uint8Array | string, data: Uint8Array | string): Promise<void> {
    addRecord(this.#sink, this.#tables, key, data);
    if (this.#sink.len >= 1 << 16) await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#sink.len === 0) return;
    const { buf, len } = this.#sink;
    this.#sink.len = 0;
    await this.#io(() => this.#fh.write(buf, 0, len));
  }

  async #io<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (cause) {
      throw new CdbError(CdbErrorCodes.WRITE, `unable to write ${this.#tmpPath}`, {
        path: this.#tmpPath,
        cause,
      });
    }
  }

  /**
   * Write the hash tables and the header, fsync, close, and rename the temporary file to
   * `finalPath`. @throws {CdbError} UCSPI_ERR_CDB_WRITE, UCSPI_ERR_CDB_RENAME (the temporary file is left behind)
   */
  async finish(finalPath: string): Promise<void> {
    const { header, tables } = this.#tables.finish();
    await this.#flush();
    await this.#io(() => this.#fh.write(tables));
    await this.#io(() => this.#fh.write(header, 0, HEADER, 0));
    await this.#io(() => this.#fh.sync());
    this.#closed = true;
    await this.#io(() => this.#fh.close());
    try {
      await rename(this.#tmpPath, finalPath);
    } catch (cause) {
      throw new CdbError(CdbErrorCodes.RENAME, `unable to move ${this.#tmpPath} to ${finalPath}`, {
        path: finalPath,
        cause,
      });
    }
  }

  /** Close the file without finishing; the temporary file stays as it is (tcprules leaves it too). */
  async abort(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fh.close().catch(() => undefined);
  }
}

/** Write `records` to `finalPath` through `tmpPath` (create, add each, finish; abort on error). */
export async function writeCdbFile(
  finalPath: string,
  tmpPath: string,
  records:
    | Iterable<readonly [Uint8Array | string, Uint8Array | string]>
    | AsyncIterable<readonly [Uint8Array | string, Uint8Array | string]>,
  opts: CdbWriterOptions = {},
): Promise<void> {
  const w = await CdbFileWriter.create(tmpPath, opts);
  try {
    for await (const [k, d] of records) await w.add(k, d);
    await w.finish(finalPath);
  } catch (err) {
    await w.abort();
    throw err;
  }
}

/** djb's cdb hash: h = 5381; h = ((h << 5) + h) ^ c, over the key's bytes, 32-bit unsigned. */
export function cdbHash(key: Uint8Array): number {
  return cdbHashRange(key, 0, key.length);
}

/** {@link cdbHash} of `bytes[start, end)`, for a key already in a buffer (the writer's records). */
export function cdbHashRange(bytes: Uint8Array, start: number, end: number): number {
  let h = 5381;
  for (let i = start; i < end; i++) h = (((h << 5) + h) ^ bytes[i]!) >>> 0;
  return h;
}

/** Keys and data may be given as strings (UTF-8) or bytes. */
export function toBytes(b: Uint8Array | string): Buffer {
  return typeof b === 'string'
    ? Buffer.from(b, 'utf8')
    : Buffer.isBuffer(b)
      ? b
      : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

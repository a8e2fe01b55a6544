/**
 * MurmurHash3 (x86, 32-bit) over bytes, and the byte form of a primary key it hashes: an Int64 pk as
 * its 8 little-endian bytes, a VarChar pk as its UTF-8 bytes. Used by the pk bloom filter.
 */

function rotl32(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** murmur3_x86_32 of `bytes[start, end)` with `seed`; an unsigned 32-bit integer. */
export function murmur3(bytes: Uint8Array, seed = 0, start = 0, end = bytes.length): number {
  let h = seed >>> 0;
  const len = end - start;
  const blocks = start + (len & ~3);
  let i = start;
  for (; i < blocks; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, C1);
    k = rotl32(k, 15);
    k = Math.imul(k, C2);
    h ^= k;
    h = rotl32(h, 13);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = len & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= bytes[i + 2]! << 16;
    if (tail >= 2) k ^= bytes[i + 1]! << 8;
    k ^= bytes[i]!;
    k = Math.imul(k, C1);
    k = rotl32(k, 15);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= len;
  return fmix32(h);
}

const scratch = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratch.buffer);
const encoder = new TextEncoder();

/** The bytes a pk is hashed as (a shared scratch buffer for Int64: use it before the next call). */
export function pkBytes(pk: bigint | string): Uint8Array {
  if (typeof pk === "bigint") {
    scratch.setBigInt64(0, pk, true);
    return scratchBytes;
  }
  return encoder.encode(pk);
}

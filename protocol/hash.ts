/**
 * Primary key → shard, as Milvus routes rows: murmur3 (x86, 32-bit, seed 0) of the key's bytes (an
 * Int64 as 8 little-endian bytes, a VarChar as UTF-8), masked to 31 bits, modulo the shard count.
 */
const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

export function murmur3(bytes: Uint8Array, seed = 0): number {
  let h = seed >>> 0;
  const n = bytes.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = n & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= bytes[blocks + 2]! << 16;
    if (rest >= 2) k ^= bytes[blocks + 1]! << 8;
    k ^= bytes[blocks]!;
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const scratch = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratch.buffer);
const utf8 = new TextEncoder();

/** The bytes a pk is hashed as (for Int64 a shared scratch buffer: use it before the next call). */
export function pkBytes(pk: bigint | string): Uint8Array {
  if (typeof pk === "bigint") {
    scratch.setBigInt64(0, pk, true);
    return scratchBytes;
  }
  return utf8.encode(pk);
}

export function hashInt64Pk(pk: bigint): number {
  return murmur3(pkBytes(pk)) & 0x7fffffff;
}

export function hashVarCharPk(pk: string): number {
  return murmur3(pkBytes(pk)) & 0x7fffffff;
}

export function shardOfPk(pk: bigint | string, shardsNum: number): number {
  const h = typeof pk === "bigint" ? hashInt64Pk(pk) : hashVarCharPk(pk);
  return h % shardsNum;
}

/**
 * A compact bloom filter of a segment's primary keys: `m` bits, `k` probes by double hashing
 * (Kirsch–Mitzenmacher: probe i = h1 + i·h2 mod m, h1 and h2 two murmur3 hashes of the key's bytes).
 * Sized for a false-positive rate `p` at `n` keys: m = ⌈−n·ln p / ln²2⌉, k = round(m/n · ln 2).
 * A querynode asks it whether a delete may hit the segment; "no" is certain.
 */
import { VbError } from "../../protocol/errors.ts";
import { murmur3, pkBytes } from "./murmur3.ts";

export const DEFAULT_BLOOM_FP_RATE = 0.001;
const MAX_BITS = 2 ** 31;

export interface BloomFilterData {
  /** number of bits */
  m: number;
  /** probes per key */
  k: number;
  bits: Uint8Array;
}

export class BloomFilter {
  readonly m: number;
  readonly k: number;
  readonly bits: Uint8Array;

  private constructor(m: number, k: number, bits: Uint8Array) {
    this.m = m;
    this.k = k;
    this.bits = bits;
  }

  /** A filter sized for `n` keys at false-positive rate `p` (at least 64 bits, 1 probe). */
  static forCapacity(n: number, p = DEFAULT_BLOOM_FP_RATE): BloomFilter {
    if (!(p > 0 && p < 1)) throw VbError.invalid(`bloom filter false-positive rate must be in (0, 1), got ${p}`);
    const keys = Math.max(1, Math.ceil(n));
    const m = Math.min(MAX_BITS, Math.max(64, Math.ceil((-keys * Math.log(p)) / (Math.LN2 * Math.LN2))));
    const k = Math.max(1, Math.min(30, Math.round((m / keys) * Math.LN2)));
    return new BloomFilter(m, k, new Uint8Array(Math.ceil(m / 8)));
  }

  static from(data: BloomFilterData): BloomFilter {
    const { m, k, bits } = data;
    if (!Number.isSafeInteger(m) || m < 1 || m > MAX_BITS) throw VbError.invalid(`bloom filter: bad bit count ${String(m)}`);
    if (!Number.isSafeInteger(k) || k < 1 || k > 64) throw VbError.invalid(`bloom filter: bad probe count ${String(k)}`);
    if (!(bits instanceof Uint8Array) || bits.length !== Math.ceil(m / 8)) {
      throw VbError.invalid(`bloom filter: ${m} bits need ${Math.ceil(m / 8)} bytes`);
    }
    return new BloomFilter(m, k, bits);
  }

  add(pk: bigint | string): void {
    const bytes = pkBytes(pk);
    const h1 = murmur3(bytes, 0);
    const h2 = murmur3(bytes, h1) | 1;
    for (let i = 0; i < this.k; i++) {
      const bit = (h1 + Math.imul(i, h2)) >>> 0;
      const idx = bit % this.m;
      this.bits[idx >>> 3]! |= 1 << (idx & 7);
    }
  }

  /** false: the key is certainly absent; true: it may be present. */
  mayContain(pk: bigint | string): boolean {
    const bytes = pkBytes(pk);
    const h1 = murmur3(bytes, 0);
    const h2 = murmur3(bytes, h1) | 1;
    for (let i = 0; i < this.k; i++) {
      const idx = ((h1 + Math.imul(i, h2)) >>> 0) % this.m;
      if ((this.bits[idx >>> 3]! & (1 << (idx & 7))) === 0) return false;
    }
    return true;
  }

  toData(): BloomFilterData {
    return { m: this.m, k: this.k, bits: this.bits };
  }
}

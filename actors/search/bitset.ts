/**
 * Row filters: one byte a row, non-zero = the row passes (what a compiled filter expression and the
 * delete bitmap produce). Searches take either the filter or, when few rows pass, the list of passing
 * offsets (`passingRows`), which lets the kernel visit only those rows.
 */
import { VbError } from "../../protocol/errors.ts";

/**
 * How many rows pass. Four bytes a step without a branch per row: a filter from a random predicate
 * would make a per-byte branch mispredict half the time (≈ 350 µs for 100k rows against ≈ 30 µs).
 */
export function countPassing(filter: Uint8Array): number {
  let count = 0;
  const n = filter.length;
  let i = 0;
  if ((filter.byteOffset & 3) === 0 && n >= 4) {
    const words = new Uint32Array(filter.buffer, filter.byteOffset, n >>> 2);
    for (let w = 0; w < words.length; w++) {
      const x = words[w]!;
      // the high bit of each byte of t is set when that byte of x is non-zero
      const t = (((x & 0x7f7f7f7f) + 0x7f7f7f7f) | x) & 0x80808080;
      count += Math.imul(t >>> 7, 0x01010101) >>> 24;
    }
    i = words.length << 2;
  }
  for (; i < n; i++) if (filter[i] !== 0) count++;
  return count;
}

/** The offsets of the passing rows, increasing: the `rowIds` of a search. */
export function passingRows(filter: Uint8Array): Int32Array {
  const out = new Int32Array(countPassing(filter));
  let m = 0;
  const n = filter.length;
  let i = 0;
  if ((filter.byteOffset & 3) === 0 && n >= 4) {
    const words = new Uint32Array(filter.buffer, filter.byteOffset, n >>> 2);
    for (let w = 0; w < words.length; w++) {
      if (words[w] === 0) continue;
      for (let o = w << 2, e = o + 4; o < e; o++) if (filter[o] !== 0) out[m++] = o;
    }
    i = words.length << 2;
  }
  for (; i < n; i++) if (filter[i] !== 0) out[m++] = i;
  return out;
}

/** The rows that pass both filters (1 = both pass, 0 = otherwise), as a new filter. */
export function andFilters(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) throw VbError.invalid(`filter: cannot AND filters of ${a.length} and ${b.length} rows`);
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] !== 0 && b[i] !== 0 ? 1 : 0;
  return out;
}

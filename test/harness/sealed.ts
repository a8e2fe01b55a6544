/**
 * Sealed segments written straight to an object store, as a datanode would flush them: tests of the
 * query plane load them into querynodes without running the write path (large segments in seconds).
 */
import { ALL_FIELDS, encodeInsertLog } from "../../actors/storage/insert_log.ts";
import { insertLogKey } from "../../actors/storage/layout.ts";
import type { SegmentInfo } from "../../protocol/meta.ts";
import type { CollectionSchema, Column } from "../../protocol/schema.ts";
import type { ObjectStore } from "../../runtime/object_store.ts";

/** xorshift32: reproducible numbers in [0, 1). */
export function xorshift(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/**
 * n × dim embedding-like vectors: points of a `latentDim`-dimensional space mapped into `dim`
 * dimensions by one fixed random projection (the same for every seed, so rows and queries made with
 * different seeds live in the same space), plus a little noise. Real embeddings have such a low
 * intrinsic dimension; HNSW reaches its usual recall on them (uniform noise in many dimensions is a
 * worst case no real collection looks like).
 */
export function embeddingVectors(n: number, dim: number, seed: number, latentDim = 8): Float32Array {
  const pr = xorshift(0x5eed);
  const proj = Float32Array.from({ length: latentDim * dim }, () => pr() * 2 - 1);
  const r = xorshift(seed);
  const z = new Float32Array(latentDim);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < latentDim; j++) z[j] = r() * 2 - 1;
    for (let d = 0; d < dim; d++) {
      let s = 0;
      for (let j = 0; j < latentDim; j++) s += z[j]! * proj[j * dim + d]!;
      out[i * dim + d] = s + (r() - 0.5) * 0.02;
    }
  }
  return out;
}

export interface WrittenSegment {
  info: SegmentInfo;
  /** the columns as written, in schema order */
  columns: Column[];
  positions: BigInt64Array;
}

/**
 * Writes one Flushed L1 segment of `schema` holding `columns` (schema order) and returns its record.
 * Row i has position `startPosition + i`.
 */
export async function writeSealedSegment(
  store: ObjectStore,
  schema: CollectionSchema,
  ids: { collectionId: bigint; partitionId: bigint; segmentId: bigint; vchannel: string },
  numRows: number,
  columns: Column[],
  startPosition = 1n,
): Promise<WrittenSegment> {
  const positions = BigInt64Array.from({ length: numRows }, (_, i) => startPosition + BigInt(i));
  const bytes = encodeInsertLog(ids, schema, { numRows, columns, positions, timestamps: positions.slice() });
  const key = insertLogKey(ids);
  await store.put(key, bytes);
  const info: SegmentInfo = {
    ...ids,
    level: "L1",
    state: "Flushed",
    numRows,
    startPosition,
    endPosition: startPosition + BigInt(Math.max(0, numRows - 1)),
    binlogs: [{ fieldId: ALL_FIELDS, key, rows: numRows, bytes: bytes.byteLength }],
    deltalogs: [],
    statslogs: [],
    memorySize: 0,
    createdAt: 0,
    updatedAt: 0,
  };
  return { info, columns, positions };
}

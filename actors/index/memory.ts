/**
 * What a loaded index costs in memory, before it is built or loaded: querycoord places segments by it.
 * The figure counts the index alone; the segment's raw vectors (n × dim × 4, needed for the exact
 * scores) are counted by the segment.
 *
 * usearch (2.25) keeps, per row: its key (8 B) and level (2 B); a level-0 neighbour list of 2·M slots
 * of 4 B plus a 4 B count; on average 1/(M−1) upper levels of M slots; the row itself in the index's
 * scalar type (f32 4 B, f16 2 B, i8 1 B a value). Loading reserves per-slot tables (node and vector
 * pointers, the key lookup) for the next power of two of rows. IVF_FLAT keeps the centroids, their
 * norms, the list offsets and one 4 B row id a row.
 */
import { VbError } from "../../protocol/errors.ts";
import { type HnswParams, type IndexType, type IvfParams, isHnswType, validateIndexParams } from "./index_params.ts";

/**
 * Bytes a slot of usearch's tables takes after a load, beyond the serialized graph: on 100k × 128
 * (M 16) the RSS grew by 77.5 MB at load for a 66.0 MB graph, ≈ 87 B a slot of the 131,072 reserved,
 * of which part is allocator slack that varies.
 */
const USEARCH_SLOT_BYTES = 64;

/** What a loaded usearch index holds: its serialized graph plus the per-slot tables a load reserves. */
export function usearchLoadedBytes(graphBytes: number, rows: number): number {
  return graphBytes + USEARCH_SLOT_BYTES * slotsFor(rows);
}

function slotsFor(rows: number): number {
  return rows === 0 ? 0 : 2 ** Math.ceil(Math.log2(rows));
}

export function estimateIndexMemory(indexType: IndexType, n: number, dim: number, params: Record<string, unknown> = {}): number {
  if (!Number.isInteger(n) || n < 0) throw VbError.invalid(`rows: must be a non-negative integer, got ${n}`);
  const spec = validateIndexParams(indexType, "L2", params, "FloatVector", dim);
  if (spec.indexType === "FLAT") return 0;
  if (spec.indexType === "IVF_FLAT") {
    const lists = Math.min((spec.params as IvfParams).nlist, n);
    return lists * dim * 4 + lists * 8 + (lists + 1) * 4 + n * 4;
  }
  if (!isHnswType(spec.indexType)) return 0;
  const { M } = spec.params as HnswParams;
  const scalar = spec.indexType === "HNSW_SQ8" ? 1 : spec.indexType === "HNSW_FP16" ? 2 : 4;
  const node = 8 + 2 + (4 + 2 * M * 4) + (4 + M * 4) / Math.max(1, M - 1);
  return Math.ceil(usearchLoadedBytes(n * (node + dim * scalar), n));
}

/**
 * `buildIndex`: a segment's vectors in, the index artifact out (artifact.ts). Row ids in the index are
 * the segment's row offsets 0..n-1. The parameters are checked here (1100 naming the one at fault),
 * so a build task can hand over what the user asked for.
 */
import { VbError } from "../../protocol/errors.ts";
import { checkShape } from "../search/metric.ts";
import { buildFlat } from "./flat_index.ts";
import { buildHnsw } from "./hnsw_index.ts";
import { type HnswParams, type IvfParams, validateIndexParams } from "./index_params.ts";
import { buildIvfFlat } from "./ivf_flat_index.ts";

export interface BuildIndexParams {
  /** n × dim, row major */
  vectors: Float32Array;
  dim: number;
  metric: unknown;
  indexType: unknown;
  /** the index type's build parameters (M, efConstruction; nlist), numbers or decimal strings */
  params?: Record<string, unknown>;
}

export async function buildIndex(p: BuildIndexParams): Promise<Uint8Array> {
  const spec = validateIndexParams(p.indexType, p.metric, p.params, "FloatVector", p.dim);
  if (!(p.vectors instanceof Float32Array)) throw VbError.invalid("vectors: must be a Float32Array");
  checkShape(p.vectors, p.dim, "vectors");
  const rows = p.vectors.length / p.dim;
  switch (spec.indexType) {
    case "FLAT":
      return buildFlat(spec, p.dim, rows);
    case "IVF_FLAT":
      return buildIvfFlat(spec as typeof spec & { params: IvfParams }, p.vectors, p.dim);
    default:
      return buildHnsw(spec as typeof spec & { params: HnswParams }, p.vectors, p.dim);
  }
}

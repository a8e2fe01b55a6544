/**
 * The vector index layer: index types and params as Milvus names them (FLAT, HNSW, HNSW_SQ8,
 * HNSW_FP16, IVF_FLAT, AUTOINDEX; metrics L2, IP, COSINE), building a segment's index into a
 * self-describing artifact, loading it, and searching it with a row filter at any selectivity, with
 * the scores of the exact kernel. HNSW runs on usearch; FLAT and the exact paths on actors/search.
 */
export {
  AUTOINDEX_PARAMS,
  DEFAULT_METRIC,
  DEFAULT_NPROBE,
  defaultEf,
  INDEX_TYPES,
  isHnswType,
  MAX_EF,
  parseIndexType,
  resolveSearchKnobs,
  validateIndexParams,
  type HnswIndexType,
  type HnswParams,
  type IndexSpec,
  type IndexType,
  type IvfParams,
  type ResolvedKnobs,
  type SearchKnobs,
} from "./index_params.ts";
export { buildIndex, type BuildIndexParams } from "./build.ts";
export { loadIndex } from "./load.ts";
export type { IndexSearchParams, LoadedIndex, LoadOptions, SearchStats } from "./loaded_index.ts";
export {
  DEFAULT_FILTER_POLICY,
  INDEX_ONLY_POLICY,
  planFilteredSearch,
  planListScan,
  type FilterPlan,
  type FilterPolicy,
} from "./filter_policy.ts";
export { estimateIndexMemory } from "./memory.ts";
export { decodeArtifact, ARTIFACT_FORMAT, type ArtifactHeader } from "./artifact.ts";

/**
 * `loadIndex`: an index artifact in, a searchable index out. The artifact says what it is; a damaged
 * or foreign one is refused with 1100 naming `bytes`. The result keeps no reference to `bytes`.
 */
import { VbError } from "../../protocol/errors.ts";
import { decodeArtifact } from "./artifact.ts";
import { DEFAULT_FILTER_POLICY, type FilterPolicy } from "./filter_policy.ts";
import { LoadedFlatIndex } from "./flat_index.ts";
import { LoadedHnswIndex } from "./hnsw_index.ts";
import { isHnswType, validateIndexParams } from "./index_params.ts";
import { LoadedIvfFlatIndex } from "./ivf_flat_index.ts";
import type { LoadedIndex, LoadOptions } from "./loaded_index.ts";

export function loadIndex(bytes: Uint8Array, options: LoadOptions = {}): LoadedIndex {
  const artifact = decodeArtifact(bytes);
  const h = artifact.header;
  let spec;
  try {
    // AUTOINDEX takes no params from a user, but its artifact records the HNSW params it was built with
    const checkAs = h.indexType === "AUTOINDEX" ? "HNSW" : h.indexType;
    spec = { ...validateIndexParams(checkAs, h.metric, h.params, "FloatVector", h.dim), indexType: h.indexType };
  } catch (err) {
    throw VbError.invalid(`bytes: index artifact header is not a valid index (${(err as Error).message})`, err);
  }
  const policy: FilterPolicy = { ...DEFAULT_FILTER_POLICY, ...options.filterPolicy };
  if (spec.indexType === "FLAT") return new LoadedFlatIndex(h);
  if (spec.indexType === "IVF_FLAT") return new LoadedIvfFlatIndex(artifact, policy);
  if (isHnswType(spec.indexType)) return new LoadedHnswIndex(artifact, policy);
  throw VbError.invalid(`bytes: index type ${h.indexType} cannot be loaded`);
}

/**
 * Vector index types and their parameters, named as Milvus names them, and the checks a CreateIndex
 * request and a search request must pass.
 *
 * | type        | build params (range, default)                     | search params (default)    | engine                     |
 * |-------------|---------------------------------------------------|----------------------------|----------------------------|
 * | `FLAT`      | none                                              | none                       | exact scan (`searchFlat`)  |
 * | `HNSW`      | `M` 2..2048 (16), `efConstruction` 8..65535 (128) | `ef` k..32768 (max(k, 64)) | usearch, f32               |
 * | `HNSW_SQ8`  | as HNSW                                           | `ef` (max(k, 128))         | usearch, i8 codes + refine |
 * | `HNSW_FP16` | as HNSW                                           | as HNSW                    | usearch, f16 + refine      |
 * | `IVF_FLAT`  | `nlist` 1..65536 (128)                            | `nprobe` 1..nlist (8)      | k-means + inverted lists   |
 * | `AUTOINDEX` | none (HNSW, M 16, efConstruction 128)             | `ef` (max(2k, 64))         | as HNSW                    |
 *
 * Parameter values may be numbers or decimal strings (Milvus carries index params as strings). The
 * metric defaults to COSINE, as in Milvus 2.4+. Every failure is a 1100 naming the parameter.
 */
import { VbError } from "../../protocol/errors.ts";
import { type DataTypeName, MAX_DIM } from "../../protocol/schema.ts";
import { METRICS, type Metric } from "../search/metric.ts";

export const INDEX_TYPES = ["FLAT", "HNSW", "HNSW_SQ8", "HNSW_FP16", "IVF_FLAT", "AUTOINDEX"] as const;
export type IndexType = (typeof INDEX_TYPES)[number];

/** The types that run on a usearch HNSW graph. */
export type HnswIndexType = "HNSW" | "HNSW_SQ8" | "HNSW_FP16" | "AUTOINDEX";

export interface HnswParams {
  M: number;
  efConstruction: number;
}

export interface IvfParams {
  nlist: number;
}

/** A checked index definition: what a build takes and what an artifact's header records. */
export type IndexSpec =
  | { indexType: "FLAT"; metric: Metric; params: Record<string, never> }
  | { indexType: HnswIndexType; metric: Metric; params: HnswParams }
  | { indexType: "IVF_FLAT"; metric: Metric; params: IvfParams };

/** Search-time knobs, as a request may give them. */
export interface SearchKnobs {
  ef?: number | string;
  nprobe?: number | string;
}

/** The knobs a search runs with, after defaults. */
export interface ResolvedKnobs {
  ef: number;
  nprobe: number;
}

export const HNSW_M_RANGE = [2, 2048] as const;
export const HNSW_EF_CONSTRUCTION_RANGE = [8, 65535] as const;
export const IVF_NLIST_RANGE = [1, 65536] as const;
export const MAX_EF = 32768;
/** AUTOINDEX builds HNSW with these. */
export const AUTOINDEX_PARAMS: Readonly<HnswParams> = { M: 16, efConstruction: 128 };
/** `nprobe` when a search gives none (Milvus/knowhere's default). */
export const DEFAULT_NPROBE = 8;
export const DEFAULT_METRIC: Metric = "COSINE";

/**
 * `ef` when a search gives none: 64 (usearch's default) for HNSW and HNSW_FP16, 128 for HNSW_SQ8 (whose
 * candidates are refined on the raw vectors, and i8 ranks them more coarsely), never below k;
 * AUTOINDEX grows with k (2k, at least 64).
 */
export function defaultEf(indexType: IndexType, k: number): number {
  if (indexType === "AUTOINDEX") return Math.min(MAX_EF, Math.max(64, 2 * k));
  return Math.min(MAX_EF, Math.max(indexType === "HNSW_SQ8" ? 128 : 64, k));
}

export function isHnswType(t: IndexType): t is HnswIndexType {
  return t === "HNSW" || t === "HNSW_SQ8" || t === "HNSW_FP16" || t === "AUTOINDEX";
}

/** An index type name from a request (any case), or 1100 naming `index_type`. */
export function parseIndexType(value: unknown): IndexType {
  const name = typeof value === "string" ? value.toUpperCase() : undefined;
  const found = INDEX_TYPES.find((t) => t === name);
  if (found === undefined) {
    throw VbError.invalid(`index_type: unknown index type ${JSON.stringify(value)}; use one of ${INDEX_TYPES.join(", ")}`);
  }
  return found;
}

/**
 * Checks an index definition for a field and fills in defaults: the type, the metric (COSINE when
 * absent) and the type's params. `nlist` larger than the segment's rows is accepted (the build uses at
 * most one list a row). 1100 naming the parameter on any fault.
 */
export function validateIndexParams(
  indexType: unknown,
  metric: unknown,
  params: unknown,
  fieldType: DataTypeName,
  dim: number,
): IndexSpec {
  if (fieldType !== "FloatVector") {
    if (metric !== undefined && metric !== null && metric !== "") {
      throw VbError.invalid(`metric_type: a metric applies to vector fields only, the field is ${fieldType}`);
    }
    throw VbError.invalid(
      `index_type: ${JSON.stringify(indexType)} indexes vectors, the field is ${fieldType}; vector indexes need a FloatVector field`,
    );
  }
  if (!Number.isInteger(dim) || dim < 1 || dim > MAX_DIM) {
    throw VbError.invalid(`dim: must be an integer in 1..${MAX_DIM}, got ${dim}`);
  }
  const type = parseIndexType(indexType);
  const m = parseMetricName(metric);
  const given = paramRecord(params);
  switch (type) {
    case "FLAT":
      rejectUnknown(type, given, []);
      return { indexType: type, metric: m, params: {} };
    case "AUTOINDEX": {
      // AUTOINDEX chooses its own build parameters; what DescribeIndex shows of them may be given back
      // (a script that copies an index definition), any other value is refused
      rejectUnknown(type, given, ["M", "efConstruction"]);
      for (const k of ["M", "efConstruction"] as const) {
        if (given[k] !== undefined && Number(given[k]) !== AUTOINDEX_PARAMS[k]) {
          throw VbError.invalid(
            `${k}: AUTOINDEX builds with M=${AUTOINDEX_PARAMS.M}, efConstruction=${AUTOINDEX_PARAMS.efConstruction}; got ${k}=${JSON.stringify(given[k])}: use index type HNSW to choose them`,
          );
        }
      }
      return { indexType: type, metric: m, params: { ...AUTOINDEX_PARAMS } };
    }
    case "HNSW":
    case "HNSW_SQ8":
    case "HNSW_FP16": {
      rejectUnknown(type, given, ["M", "efConstruction"]);
      const M = intParam("M", given["M"], HNSW_M_RANGE[0], HNSW_M_RANGE[1], AUTOINDEX_PARAMS.M);
      const efConstruction = intParam(
        "efConstruction",
        given["efConstruction"],
        HNSW_EF_CONSTRUCTION_RANGE[0],
        HNSW_EF_CONSTRUCTION_RANGE[1],
        AUTOINDEX_PARAMS.efConstruction,
      );
      return { indexType: type, metric: m, params: { M, efConstruction } };
    }
    case "IVF_FLAT": {
      rejectUnknown(type, given, ["nlist"]);
      const nlist = intParam("nlist", given["nlist"], IVF_NLIST_RANGE[0], IVF_NLIST_RANGE[1], 128);
      return { indexType: type, metric: m, params: { nlist } };
    }
  }
}

/**
 * The knobs a search on an index of `spec` runs with: `ef` (HNSW types) in k..32768, default from
 * `defaultEf`; `nprobe` (IVF_FLAT) in 1..nlist, default 8 (at most nlist). Knobs of another index type
 * are ignored, as Milvus ignores them. 1100 naming the knob on a bad value.
 */
export function resolveSearchKnobs(spec: IndexSpec, k: number, knobs: SearchKnobs | undefined): ResolvedKnobs {
  if (!Number.isInteger(k) || k < 1) throw VbError.invalid(`k: must be a positive integer, got ${k}`);
  let ef = 0;
  let nprobe = 0;
  if (isHnswType(spec.indexType)) {
    if (k > MAX_EF) throw VbError.invalid(`k: at most ${MAX_EF} on ${spec.indexType}, got ${k}`);
    ef = intParam("ef", knobs?.ef, 1, MAX_EF, defaultEf(spec.indexType, k));
    if (ef < k) throw VbError.invalid(`ef: must be at least k (${k}), got ${ef}`);
  } else if (spec.indexType === "IVF_FLAT") {
    const nlist = (spec.params as IvfParams).nlist;
    nprobe = intParam("nprobe", knobs?.nprobe, 1, nlist, Math.min(DEFAULT_NPROBE, nlist));
  }
  return { ef, nprobe };
}

function parseMetricName(value: unknown): Metric {
  if (value === undefined || value === null || value === "") return DEFAULT_METRIC;
  const name = typeof value === "string" ? value.toUpperCase() : undefined;
  const found = METRICS.find((m) => m === name);
  if (found === undefined) {
    throw VbError.invalid(`metric_type: unknown metric ${JSON.stringify(value)}; use one of ${METRICS.join(", ")}`);
  }
  return found;
}

function paramRecord(params: unknown): Record<string, unknown> {
  if (params === undefined || params === null) return {};
  if (typeof params !== "object" || Array.isArray(params)) {
    throw VbError.invalid(`params: must be an object of index parameters, got ${JSON.stringify(params)}`);
  }
  return params as Record<string, unknown>;
}

function rejectUnknown(type: IndexType, given: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(given)) {
    if (given[key] === undefined || known.includes(key)) continue;
    const takes = known.length === 0 ? "takes no parameters" : `takes ${known.join(", ")}`;
    throw VbError.invalid(`${key}: not a parameter of ${type}, which ${takes}`);
  }
}

/** An integer parameter in [lo, hi] from a number or a decimal string; `fallback` when absent. */
function intParam(name: string, value: unknown, lo: number, hi: number, fallback: number): number {
  if (value === undefined || value === null || value === "") return fallback;
  const v = typeof value === "string" && /^\s*[+-]?\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
    throw VbError.invalid(`${name}: must be an integer in ${lo}..${hi}, got ${JSON.stringify(value)}`);
  }
  return v;
}

/**
 * The usearch HNSW graph (usearch 2.25, its prebuilt N-API binding; 2.26 needs Node 22), behind the
 * few calls the index layer makes:
 *
 * - build: rows are added in chunks on every core, with a turn of the event loop between chunks so a
 *   long build does not starve the actor's heartbeats; keys are the row offsets 0..n-1.
 * - bytes: usearch saves and loads only through files, so both go through a private temp directory
 *   that is removed at once.
 * - search: `search(queries, wanted, threads)`; usearch searches with expansion max(expansion_search,
 *   wanted), and `expansion_search` is fixed when the index object is constructed. The index is opened
 *   with expansion_search 1, so asking for `max(k, ef)` hits is exactly an `ef` search, whatever the
 *   ef, without reopening anything. A batch of queries runs on every core.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { Index, MetricKind, ScalarKind } from "usearch";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { EngineMetric, Quantization } from "./vector_codec.ts";

export interface EngineConfig {
  dim: number;
  metric: EngineMetric;
  quantization: Quantization;
  /** HNSW M (usearch's connectivity) */
  M: number;
  /** efConstruction (usearch's expansion_add) */
  efConstruction: number;
}

/** One query's candidates, best first by the engine's ranking. */
export type Candidates = Int32Array;

/** Floats added per chunk of a build: 512 rows of 128 dims, ≈ 70 ms on two cores at M 16, efConstruction 128. */
const BUILD_CHUNK_FLOATS = 1 << 16;

export const THREADS = Math.max(1, availableParallelism());

function makeIndex(c: EngineConfig): Index {
  return new Index({
    dimensions: c.dim,
    metric: c.metric === "l2sq" ? MetricKind.L2sq : MetricKind.IP,
    quantization: c.quantization === "i8" ? ScalarKind.I8 : c.quantization === "f16" ? ScalarKind.F16 : ScalarKind.F32,
    connectivity: c.M,
    expansion_add: c.efConstruction,
    expansion_search: 1,
    multi: false,
  });
}

/**
 * Builds the graph over `n` encoded rows (`rowsAt(start, end)` encodes rows start..end-1) and returns
 * usearch's serialized index.
 */
export async function buildEngine(
  c: EngineConfig,
  n: number,
  rowsAt: (start: number, end: number) => Float32Array | Int8Array,
): Promise<Uint8Array> {
  const index = makeIndex(c);
  const chunk = Math.max(256, Math.floor(BUILD_CHUNK_FLOATS / c.dim));
  for (let start = 0; start < n; start += chunk) {
    const end = Math.min(n, start + chunk);
    const keys = new BigUint64Array(end - start);
    for (let i = 0; i < keys.length; i++) keys[i] = BigInt(start + i);
    try {
      index.add(keys, rowsAt(start, end), THREADS);
    } catch (err) {
      throw new VbError(ErrorCode.Unexpected, `usearch: adding rows ${start}..${end - 1} failed: ${(err as Error).message}`, { cause: err });
    }
    if (end < n) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return withTempFile((path) => {
    index.save(path);
    return readFileSync(path);
  });
}

/** A loaded usearch graph. */
export class Engine {
  private index: Index | undefined;

  private constructor(
    index: Index,
    readonly size: number,
  ) {
    this.index = index;
  }

  /** Opens usearch's serialized index (a copy lives in memory; the temp file is removed). */
  static open(c: EngineConfig, bytes: Uint8Array): Engine {
    const index = makeIndex(c);
    withTempFile((path) => {
      writeFileSync(path, bytes);
      try {
        index.load(path);
      } catch (err) {
        throw VbError.invalid(`bytes: usearch could not load the index: ${(err as Error).message}`, err);
      }
    });
    if (index.dimensions() !== c.dim) throw VbError.invalid(`bytes: usearch index has ${index.dimensions()} dimensions, the header says ${c.dim}`);
    return new Engine(index, index.size());
  }

  /**
   * The best `wanted` rows for each of `nq` encoded queries, by the engine's ranking. One query runs on
   * the calling thread; a batch on every core.
   */
  search(queries: Float32Array | Int8Array, nq: number, wanted: number): Candidates[] {
    const index = this.index;
    if (index === undefined) throw new VbError(ErrorCode.IndexNotFound, "index: closed; load it again");
    const w = Math.min(wanted, this.size);
    if (nq === 0) return [];
    if (w < 1) return Array.from({ length: nq }, () => new Int32Array(0));
    const res = index.search(queries, w, nq > 1 ? THREADS : 1) as unknown as {
      keys: BigUint64Array;
      counts?: BigUint64Array;
    };
    // keys are row offsets (< 2^31): read the low half of each u64 instead of converting BigInts
    const low = new Uint32Array(res.keys.buffer, res.keys.byteOffset, res.keys.length * 2);
    const out: Candidates[] = [];
    for (let q = 0; q < nq; q++) {
      const count = res.counts === undefined ? res.keys.length : Number(res.counts[q]!);
      const base = res.counts === undefined ? 0 : q * w;
      const rows = new Int32Array(count);
      for (let i = 0; i < count; i++) rows[i] = low[2 * (base + i)]!;
      out.push(rows);
    }
    return out;
  }

  get closed(): boolean {
    return this.index === undefined;
  }

  close(): void {
    this.index = undefined;
  }
}

function withTempFile<T>(fn: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "vb-index-"));
  try {
    return fn(join(dir, "graph.usearch"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

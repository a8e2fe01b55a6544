/**
 * How a filtered search on an index keeps its recall at every selectivity (DESIGN §8 measured the
 * regimes on usearch, whose JS binding has no search-time filter). Two ways to answer:
 *
 * - exact: score only the passing rows with the FLAT kernel. Exact by construction; costs one row
 *   scored a passing row.
 * - over-fetch (HNSW types): ask the graph for `fetch = max(k × overfetchMargin, ef) / ratio`
 *   candidates, so that about max(2k, ef) of them pass (`ef` counts passing candidates, as in hnswlib's
 *   and knowhere's filtered search), drop the rows the filter rejects, and when fewer than k pass for a
 *   query, ask again with four times as many; past `maxFetch`, or at every row, that query goes exact.
 *
 * The choice is a cost comparison, in rows scored exactly: exact costs `passing`; the graph costs
 * `graphSearchCost + graphFetchCost × fetch`, and is never asked for more than `maxFetch` candidates
 * (past ≈ 1–2k usearch slows down per candidate). So the exact path wins when few rows pass, and the
 * share of rows where it stops winning falls as segments grow. Measured on 100k × 128 (2 cores, L2,
 * ef 64, one query a call, bench/vector_index.ts): at 10% passing the graph answers 1,795 queries/s
 * and the exact path 746; at 5%, 712 and 1,318; the crossing is near 7%, where the model puts it. On
 * 1M rows the same model sends 5% to the graph (fetch 1,280 against 50k rows to score) and 1% exact.
 * IVF_FLAT applies the filter while it scans lists and scores only the passing rows, which never
 * costs more than the exact path, so it goes exact only when at most `exactMaxRows` rows pass; it
 * probes lists, nearest centroid first, until both `nprobe` lists and `listScanPassingPerHit × k`
 * passing rows were scanned. The k-th passing neighbour of a query lies around its (k / ratio)-th
 * neighbour overall, so a rare filter needs lists reaching much farther out than nprobe; scoring a
 * few hundred passing rows is cheap next to what covering that far takes in lists.
 */
export interface FilterPolicy {
  /** exact search when at most this many rows pass (any index type) */
  exactMaxRows: number;
  /** a graph search's own cost, in rows scored exactly */
  graphSearchCost: number;
  /** the cost of each candidate fetched from the graph, in rows scored exactly */
  graphFetchCost: number;
  /** hits wanted per hit asked for: fetch = max(k × margin, ef) / ratio */
  overfetchMargin: number;
  /** the most candidates asked of the graph (raised to 4·k for a large k); beyond it, exact */
  maxFetch: number;
  /** IVF_FLAT: probe lists until at least this many passing rows a hit asked for were scanned */
  listScanPassingPerHit: number;
}

export const DEFAULT_FILTER_POLICY: Readonly<FilterPolicy> = {
  exactMaxRows: 2048,
  graphSearchCost: 1000,
  graphFetchCost: 5,
  overfetchMargin: 2,
  maxFetch: 2048,
  listScanPassingPerHit: 32,
};

/** A policy that always takes the index path when a filter passes any row (tests and benchmarks). */
export const INDEX_ONLY_POLICY: Readonly<FilterPolicy> = {
  exactMaxRows: 0,
  graphSearchCost: 0,
  graphFetchCost: 0,
  overfetchMargin: 2,
  maxFetch: Number.MAX_SAFE_INTEGER,
  listScanPassingPerHit: 32,
};

export type FilterPlan =
  | { kind: "all" }
  | { kind: "none" }
  | { kind: "exact" }
  | { kind: "index"; fetch: number; maxFetch: number };

/**
 * The plan for a graph search of k hits with `ef` over `n` rows, of which `passing` pass the filter
 * (`passing === n`: no filter).
 */
export function planFilteredSearch(policy: FilterPolicy, n: number, passing: number, k: number, ef: number): FilterPlan {
  if (passing >= n) return { kind: "all" };
  if (passing === 0) return { kind: "none" };
  if (passing <= Math.max(k, policy.exactMaxRows)) return { kind: "exact" };
  const ratio = passing / n;
  const maxFetch = Math.max(policy.maxFetch, 4 * k);
  const fetch = Math.ceil(Math.max(k * policy.overfetchMargin, ef) / ratio);
  // asking the graph for every row costs more than scoring the passing ones, and still misses the
  // rows the graph cannot reach
  if (fetch > maxFetch || fetch >= n) return { kind: "exact" };
  if (passing <= policy.graphSearchCost + policy.graphFetchCost * fetch) return { kind: "exact" };
  return { kind: "index", fetch, maxFetch };
}

/** The plan for an IVF scan: exact only when very few rows pass (the scan applies the filter itself). */
export function planListScan(policy: FilterPolicy, n: number, passing: number, k: number): FilterPlan {
  if (passing >= n) return { kind: "all" };
  if (passing === 0) return { kind: "none" };
  if (passing <= Math.max(k, policy.exactMaxRows)) return { kind: "exact" };
  return { kind: "index", fetch: 0, maxFetch: 0 };
}

/** The next fetch after a try that found too few passing rows, or 0 when the query should go exact. */
export function nextFetch(fetch: number, maxFetch: number, n: number): number {
  const next = Math.min(maxFetch, fetch * 4);
  return fetch >= maxFetch || next >= n ? 0 : next;
}

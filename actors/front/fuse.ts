/**
 * Hybrid search's fusion, shared by the gRPC and REST doors: the hits of several searches (one per
 * vector field) are scored by a ranker (RRF or weighted) and merged per query.
 */
import type { SearchHits } from "../../protocol/messages/proxy.ts";

/** Milvus's score normalization for the weighted ranker: every metric onto [0, 1], larger is better. */
export function normalizedScore(score: number, metric: string): number {
  switch (metric) {
    case "L2":
      return 1 - (2 * Math.atan(score)) / Math.PI;
    case "IP":
      return 0.5 + Math.atan(score) / Math.PI;
    default:
      return (1 + score) / 2;
  }
}

/**
 * Fuses per query: each hit adds `rank(search, position, score)` to its id's score; best first (ties by
 * id), skip `offset`, keep `limit`; an id's entity comes from the first search that returned it.
 */
export function fuseHits(
  searches: readonly (readonly SearchHits[])[],
  nq: number,
  rank: (search: number, position: number, score: number) => number,
  offset: number,
  limit: number,
): SearchHits[] {
  const fused: SearchHits[] = [];
  for (let q = 0; q < nq; q++) {
    const score = new Map<string, number>();
    const entity = new Map<string, { id: bigint | string; e: Record<string, unknown> }>();
    searches.forEach((hits, i) => {
      const h = hits[q]!;
      for (let r = 0; r < h.ids.length; r++) {
        const id = h.ids[r]!;
        const key = String(id);
        score.set(key, (score.get(key) ?? 0) + rank(i, r, h.scores[r]!));
        if (!entity.has(key)) entity.set(key, { id, e: h.entities[r] ?? {} });
      }
    });
    const order = [...score.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(offset, offset + limit);
    const ids = order.map(([k]) => entity.get(k)!.id);
    fused.push({
      ids: (typeof ids[0] === "bigint" ? BigInt64Array.from(ids as bigint[]) : (ids as string[])) as SearchHits["ids"],
      scores: Float32Array.from(order.map(([, v]) => v)),
      entities: order.map(([k]) => entity.get(k)!.e),
    });
  }
  return fused;
}

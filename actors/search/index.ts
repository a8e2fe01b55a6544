/**
 * The search math of the query plane, pure and synchronous: metrics, exact top-k search over a
 * segment's vectors, row filters, and the reduction of segment and shard results. Shared by segments,
 * delegators and the proxy.
 */
export * from "./metric.ts";
export * from "./range.ts";
export * from "./bitset.ts";
export * from "./flat.ts";
export * from "./reduce.ts";
export { TopKHeap } from "./topk_heap.ts";

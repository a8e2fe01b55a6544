/**
 * Binlogs: how sealed segments live in the object store (insert logs, delta logs, stats logs), shared by
 * the datanode that writes them and the querynodes that read them.
 */
export * from "./layout.ts";
export * from "./insert_log.ts";
export * from "./delta_log.ts";
export * from "./stats_log.ts";
export * from "./bloom_filter.ts";
export * from "./columns.ts";
export { arrowTypeOf, encodeColumn, decodeColumn } from "./arrow_codec.ts";
export { murmur3 } from "./murmur3.ts";

/**
 * The made-up catalog of the querycoord-sim bench: collections, their shards and sealed segments, all
 * computed from their index (nothing stored), so that the datacoord peer serves a million segments
 * without holding them and the driver knows what the target is.
 */
import type { CollectionInfo, SegmentInfo, VChannelInfo } from "../protocol/meta.ts";

export interface Catalog {
  collections: number;
  /** sealed segments of each collection */
  perCollection: number[];
  shards: number;
}

export function catalogOf(segments: number, collections: number, shards: number): Catalog {
  const base = Math.floor(segments / collections);
  const perCollection = Array.from({ length: collections }, (_, i) => base + (i < segments - base * collections ? 1 : 0));
  return { collections, perCollection, shards };
}

export const collectionIdOf = (c: number): bigint => BigInt(1_000 + c);
const partitionIdOf = (c: number): bigint => collectionIdOf(c) * 10n;
const segmentBase = (c: number): bigint => BigInt(c + 1) * 100_000_000n;

export function vchannelsOf(cat: Catalog, c: number): VChannelInfo[] {
  return Array.from({ length: cat.shards }, (_, shard) => ({ name: `${collectionIdOf(c)}v${shard}`, shard, pchannel: shard % 4 }));
}

/** Which collection an id is, and the index of a segment id in it. */
export function collectionIndex(collectionId: bigint): number {
  return Number(collectionId) - 1_000;
}

export function segmentIndex(c: number, segmentId: bigint): number {
  return Number(segmentId - segmentBase(c));
}

/** Rows spread between 5,000 and 15,000, deterministically. */
export function simSegment(cat: Catalog, c: number, i: number): SegmentInfo {
  const numRows = 5_000 + ((i * 7_919) % 10_000);
  return {
    segmentId: segmentBase(c) + BigInt(i),
    collectionId: collectionIdOf(c),
    partitionId: partitionIdOf(c),
    vchannel: `${collectionIdOf(c)}v${i % cat.shards}`,
    level: "L1",
    state: "Flushed",
    numRows,
    startPosition: BigInt(i),
    endPosition: BigInt(i),
    binlogs: [],
    deltalogs: [],
    statslogs: [],
    memorySize: numRows * 64,
    createdAt: 0,
    updatedAt: 0,
  };
}

export function simCollection(cat: Catalog, c: number): CollectionInfo {
  return {
    collectionId: collectionIdOf(c),
    dbName: "default",
    name: `sim${c}`,
    schema: {
      name: `sim${c}`,
      fields: [
        { name: "id", type: "Int64", isPrimaryKey: true },
        { name: "v", type: "FloatVector", dim: 8 },
      ],
    },
    shardsNum: cat.shards,
    vchannels: vchannelsOf(cat, c),
    partitions: [{ partitionId: partitionIdOf(c), name: "_default", createdTs: 0n }],
    aliases: [],
    consistencyLevel: "Bounded",
    properties: {},
    createdTs: 0n,
    state: "Created",
  };
}

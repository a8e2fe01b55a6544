/** Branded ids: a number that means one thing cannot be passed where another is expected. */

declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

export type CollectionId = Brand<bigint, "CollectionId">;
export type PartitionId = Brand<bigint, "PartitionId">;
export type SegmentId = Brand<bigint, "SegmentId">;
export type FieldId = Brand<bigint, "FieldId">;
export type ReplicaId = Brand<bigint, "ReplicaId">;
export type NodeId = Brand<string, "NodeId">;
/** A hybrid timestamp from the TSO: physical milliseconds << 18 | logical counter. */
export type Timestamp = Brand<bigint, "Timestamp">;
/** A JetStream stream sequence: the position of a message in its DML channel. */
export type Position = Brand<bigint, "Position">;

export const LOGICAL_BITS = 18n;
export const LOGICAL_MASK = (1n << LOGICAL_BITS) - 1n;

export function composeTs(physicalMs: number, logical: number): Timestamp {
  return ((BigInt(physicalMs) << LOGICAL_BITS) | BigInt(logical)) as Timestamp;
}

export function parseTs(ts: Timestamp | bigint): { physicalMs: number; logical: number } {
  return { physicalMs: Number(ts >> LOGICAL_BITS), logical: Number(ts & LOGICAL_MASK) };
}

export const asCollectionId = (v: bigint | number) => BigInt(v) as CollectionId;
export const asPartitionId = (v: bigint | number) => BigInt(v) as PartitionId;
export const asSegmentId = (v: bigint | number) => BigInt(v) as SegmentId;
export const asFieldId = (v: bigint | number) => BigInt(v) as FieldId;
export const asReplicaId = (v: bigint | number) => BigInt(v) as ReplicaId;
export const asTimestamp = (v: bigint | number) => BigInt(v) as Timestamp;
export const asPosition = (v: bigint | number) => BigInt(v) as Position;
export const asNodeId = (v: string) => v as NodeId;

const NODE_ID_RE = /^[A-Za-z0-9_-]+$/;
/** Node ids go into subjects, so they may not hold dots, spaces or wildcards. */
export function isValidNodeId(v: string): boolean {
  return NODE_ID_RE.test(v);
}

/**
 * What querycoord keeps in KV (the role etcd plays for Milvus's QueryCoord). Values are msgpack
 * (protocol/codec.ts). Targets are not only a cache of datacoord: the *current* target says what
 * delegators serve, so a restarted querycoord must not forget it before the next one is loaded.
 *
 * - `qc_collections`  `<collectionId>`                  → CollectionLoad (load type, partitions, replica number, status, schema)
 * - `qc_replicas`     `<collectionId>.<replicaId>`      → Replica (its querynodes)
 * - `qc_targets`      `<collectionId>.target`           → PersistedTarget (version, partitions, channels and seek positions, segment ids)
 *                     `<collectionId>.page.<version>.<i>` → PersistedTargetPage: the current target's segments `s` with
 *                                                         `s mod count = i` (L1 and L0), as of the target version that changed it
 *                     `<collectionId>.seg.<segmentId>`  → SegmentInfo, one key per segment (the older layout, still read)
 * - `qc_resource_groups` `<name>`                      → ResourceGroupRecord (config: requests, limits, transfer_from/to; its querynodes)
 */
export const BUCKET = {
  collections: "qc_collections",
  replicas: "qc_replicas",
  targets: "qc_targets",
  resourceGroups: "qc_resource_groups",
} as const;

export const collectionKey = (collectionId: bigint): string => `${collectionId}`;
export const replicaKey = (collectionId: bigint, replicaId: bigint): string => `${collectionId}.${replicaId}`;
export const targetKey = (collectionId: bigint): string => `${collectionId}.target`;
export const targetSegmentKey = (collectionId: bigint, segmentId: bigint): string => `${collectionId}.seg.${segmentId}`;
export const targetPageKey = (collectionId: bigint, version: number, index: number): string => `${collectionId}.page.${version}.${index}`;
/** every key of one collection in a bucket whose keys start with the collection id */
export const collectionPrefix = (collectionId: bigint): string => `${collectionId}`;
export const resourceGroupKey = (name: string): string => name;

/**
 * Index meta (Milvus's IndexCoord meta, folded into datacoord): the indexes defined on collections and
 * every segment's build of each, in memory and in two KV buckets:
 *
 *   indexes          `<collectionId>/<indexId>`              → IndexInfo
 *   segment_indexes  `<collectionId>/<segmentId>/<indexId>`  → BuildRecord (a SegmentIndex + retry state)
 *
 * A build's state machine: Unissued → InProgress → Finished, or → Failed (retried: back to InProgress
 * when `retryAt` comes; for good when it has none). A record changes in memory only after KV took it,
 * so what datacoord answers is what a restarted datacoord loads. One datacoord writes these buckets.
 */
import type { IndexInfo, SegmentIndex } from "../../protocol/messages/indexes.ts";
import type { KvMeta } from "../../runtime/kv_meta.ts";

export const INDEXES_BUCKET = "indexes";
export const SEGMENT_INDEXES_BUCKET = "segment_indexes";

/** A segment's build of an index, with what datacoord keeps to retry it. */
export interface BuildRecord extends SegmentIndex {
  /** builds the datanode reported as failed */
  attempts: number;
  /** builds lost with their datanode (its heartbeat stopped) */
  lost: number;
  /** a Failed build is given out again at this time (ms since the epoch); absent when it failed for good */
  retryAt?: number;
  /** when it was last given to a datanode (ms since the epoch, datacoord's clock) */
  assignedAt?: number;
}

export function indexKey(i: { collectionId: bigint; indexId: bigint }): string {
  return `${i.collectionId}/${i.indexId}`;
}

export function buildKey(b: { collectionId: bigint; segmentId: bigint; indexId: bigint }): string {
  return `${b.collectionId}/${b.segmentId}/${b.indexId}`;
}

/** The object prefix of every artifact of one segment's index (all its builds). */
export function segmentIndexPrefix(b: { collectionId: bigint; partitionId: bigint; segmentId: bigint; indexId: bigint }): string {
  return `index_files/${b.collectionId}/${b.partitionId}/${b.segmentId}/${b.indexId}/`;
}

/** The object prefix of every index artifact of a collection. */
export function collectionIndexPrefix(collectionId: bigint): string {
  return `index_files/${collectionId}/`;
}

/** The index id in an artifact's key (`index_files/<coll>/<part>/<seg>/<indexId>/<buildId>/...`). */
export function indexIdOfKey(key: string): bigint | undefined {
  const parts = key.split("/");
  if (parts[0] !== "index_files" || parts.length < 6) return undefined;
  try {
    return BigInt(parts[4]!);
  } catch {
    return undefined;
  }
}

export class IndexMeta {
  private readonly indexes = new Map<bigint, IndexInfo>();
  private readonly builds = new Map<string, BuildRecord>();
  private readonly byBuildId = new Map<bigint, string>();

  private constructor(
    private readonly indexKv: KvMeta,
    private readonly buildKv: KvMeta,
  ) {}

  static async open(indexKv: KvMeta, buildKv: KvMeta): Promise<IndexMeta> {
    const meta = new IndexMeta(indexKv, buildKv);
    const [ie, be] = await Promise.all([
      indexKv.records<IndexInfo>((v) => typeof (v as IndexInfo).indexId === "bigint"),
      buildKv.records<BuildRecord>((v) => typeof (v as BuildRecord).buildId === "bigint"),
    ]);
    for (const { value: i } of ie.values()) meta.indexes.set(i.indexId, i);
    for (const { value: b } of be.values()) meta.indexBuild({ ...b, attempts: b.attempts ?? 0, lost: b.lost ?? 0 });
    return meta;
  }

  private indexBuild(b: BuildRecord): void {
    const key = buildKey(b);
    this.builds.set(key, b);
    this.byBuildId.set(b.buildId, key);
  }

  // ---- indexes ----

  index(indexId: bigint): IndexInfo | undefined {
    return this.indexes.get(indexId);
  }

  /** The collection's live indexes, oldest first. */
  indexesOf(collectionId: bigint): IndexInfo[] {
    return [...this.indexes.values()]
      .filter((i) => i.collectionId === collectionId)
      .sort((a, b) => (a.indexId < b.indexId ? -1 : a.indexId > b.indexId ? 1 : 0));
  }

  allIndexes(): IterableIterator<IndexInfo> {
    return this.indexes.values();
  }

  async saveIndex(i: IndexInfo): Promise<void> {
    await this.indexKv.putValue(indexKey(i), i);
    this.indexes.set(i.indexId, i);
  }

  async removeIndex(i: IndexInfo): Promise<void> {
    await this.indexKv.delete(indexKey(i));
    this.indexes.delete(i.indexId);
  }

  // ---- builds ----

  build(segmentId: bigint, index: { collectionId: bigint; indexId: bigint }): BuildRecord | undefined {
    return this.builds.get(buildKey({ collectionId: index.collectionId, segmentId, indexId: index.indexId }));
  }

  buildById(buildId: bigint): BuildRecord | undefined {
    const key = this.byBuildId.get(buildId);
    return key === undefined ? undefined : this.builds.get(key);
  }

  allBuilds(): IterableIterator<BuildRecord> {
    return this.builds.values();
  }

  buildsOfIndex(indexId: bigint): BuildRecord[] {
    return [...this.builds.values()].filter((b) => b.indexId === indexId);
  }

  /** Stores a new or changed build record (KV first, then memory). */
  async saveBuild(b: BuildRecord): Promise<void> {
    await this.buildKv.putValue(buildKey(b), b);
    this.indexBuild(b);
  }

  /** Deletes a build record's key (the garbage collector, off the mailbox). */
  deleteBuildKey(b: BuildRecord): Promise<void> {
    return this.buildKv.delete(buildKey(b));
  }

  /** Forgets a build record in memory after the garbage collector deleted its key. */
  forgetBuild(b: BuildRecord): void {
    const key = buildKey(b);
    if (this.builds.get(key)?.buildId !== b.buildId) return;
    this.builds.delete(key);
    this.byBuildId.delete(b.buildId);
  }
}

/**
 * Vector indexes (Milvus's IndexCoord, folded into datacoord as in Milvus 2.3+): an index is defined
 * on a vector field of a collection; datacoord schedules a build on a datanode for every Flushed L1
 * segment; the artifact goes to `index_files/`; querycoord's IndexChecker makes querynodes load it for
 * segments they hold; searches use it (growing rows stay exact).
 */
import type { SegmentInfo } from "../meta.ts";
import type { CollectionSchema } from "../schema.ts";

export type IndexTypeName = "FLAT" | "HNSW" | "HNSW_SQ8" | "HNSW_FP16" | "IVF_FLAT" | "AUTOINDEX";
export type IndexMetric = "L2" | "IP" | "COSINE";

export interface IndexInfo {
  indexId: bigint;
  collectionId: bigint;
  fieldId: number;
  fieldName: string;
  indexName: string;
  indexType: IndexTypeName;
  metricType: IndexMetric;
  /** normalized build params (M, efConstruction, nlist ...) */
  params: Record<string, unknown>;
  createdTs: bigint;
}

export type SegmentIndexState = "Unissued" | "InProgress" | "Finished" | "Failed";

/** One segment's build of one index. */
export interface SegmentIndex {
  segmentId: bigint;
  collectionId: bigint;
  partitionId: bigint;
  indexId: bigint;
  buildId: bigint;
  state: SegmentIndexState;
  failReason?: string;
  /** object key of the artifact, once Finished */
  fileKey?: string;
  serializedSize?: number;
  /** bytes the loaded index takes (what querycoord's placement accounts for) */
  memorySize?: number;
  numRows: number;
  /** datanode that builds it */
  nodeId?: string;
}

/** What a querynode needs to load one segment's index. */
export interface IndexLoadInfo {
  segmentId: bigint;
  fieldId: number;
  indexId: bigint;
  buildId: bigint;
  fileKey: string;
  indexType: IndexTypeName;
  metricType: IndexMetric;
  memorySize: number;
}

export interface IndexProgress {
  indexName: string;
  indexId: bigint;
  fieldName: string;
  indexType: IndexTypeName;
  metricType: IndexMetric;
  params: Record<string, unknown>;
  /** rows of Flushed L1 segments */
  totalRows: number;
  /** rows whose segment's build Finished */
  indexedRows: number;
  pendingBuilds: number;
  failedBuilds: { segmentId: bigint; reason: string }[];
  state: "InProgress" | "Finished" | "Failed";
}

/** datacoord verbs (merged into DatacoordApi). */
export type DatacoordIndexApi = {
  CreateIndex: [
    { collectionId: bigint; fieldName: string; indexName?: string; indexType: string; metricType: string; params?: Record<string, unknown> },
    IndexInfo,
  ];
  DescribeIndex: [{ collectionId: bigint; indexName?: string }, { indexes: IndexProgress[] }];
  DropIndex: [{ collectionId: bigint; indexName?: string }, null];
  /** Finished builds of the collection's live indexes, for querycoord (segments given or all) */
  GetIndexInfos: [{ collectionId: bigint; segmentIds?: bigint[] }, { indexes: IndexInfo[]; builds: IndexLoadInfo[] }];
  /** the datanode reports a build */
  IndexBuilt: [
    { buildId: bigint; nodeId: string; ok: boolean; fileKey?: string; serializedSize?: number; memorySize?: number; failReason?: string },
    null,
  ];
};

/** datanode verbs (merged into DatanodeApi). */
export type DatanodeIndexApi = {
  /** build off the mailbox; report with datacoord.IndexBuilt */
  BuildIndex: [
    {
      buildId: bigint;
      collectionId: bigint;
      segment: SegmentInfo;
      schema: CollectionSchema;
      index: IndexInfo;
      /** object key to write the artifact to */
      fileKey: string;
    },
    null,
  ];
};

/** querynode verbs (merged into QuerynodeApi). */
export type QuerynodeIndexApi = {
  LoadIndex: [{ collectionId: bigint; infos: IndexLoadInfo[] }, null];
  ReleaseIndex: [{ collectionId: bigint; segmentId: bigint; indexId: bigint }, null];
};

/** Published on the events stream by datacoord. */
export type IndexEvent =
  | { kind: "index.created"; index: IndexInfo }
  | { kind: "index.dropped"; collectionId: bigint; indexId: bigint }
  | { kind: "segment.indexed"; collectionId: bigint; segmentId: bigint; indexId: bigint };

/** Object key of a segment's index artifact (Milvus's layout). */
export function indexFileKey(collectionId: bigint, partitionId: bigint, segmentId: bigint, indexId: bigint, buildId: bigint): string {
  return `index_files/${collectionId}/${partitionId}/${segmentId}/${indexId}/${buildId}/index.bin`;
}

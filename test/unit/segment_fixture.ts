/** datacoord's record of a segment for unit tests: a Growing L1 segment of collection 1 on "1v0", changed by `over`. */
import type { SegmentInfo } from "../../protocol/meta.ts";

export function segmentInfo(segmentId: bigint, over: Partial<SegmentInfo> = {}): SegmentInfo {
  return {
    segmentId,
    collectionId: 1n,
    partitionId: 10n,
    vchannel: "1v0",
    level: "L1",
    state: "Growing",
    numRows: 0,
    startPosition: 1n,
    binlogs: [],
    deltalogs: [],
    statslogs: [],
    memorySize: 0,
    createdAt: 0,
    updatedAt: 0,
    ...over,
  };
}

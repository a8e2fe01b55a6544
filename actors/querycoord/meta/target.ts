/** Building targets from datacoord's recovery info, and comparing them. Pure functions. */
import { Interner } from "../interner.ts";
import type { SegmentInfo, SegmentLoadInfo, VChannelInfo } from "../../../protocol/meta.ts";
import type { RecoveryInfo } from "../../../protocol/messages/datacoord.ts";
import type { ChannelTarget, CollectionTarget } from "./types.ts";

/**
 * The target a recovery info describes for a load: Flushed L1 segments of the loaded partitions, the L0
 * segments of the collection's channels, and every vchannel with its seek position (a vchannel datacoord
 * does not mention yet, e.g. of an empty collection, is consumed from its start).
 */
/** No logs: one array for every segment without any (never changed in place). */
const NO_BINLOGS: SegmentInfo["binlogs"] = [];
const NO_STATSLOGS: string[] = [];

/**
 * What a target keeps of a Flushed segment (SegmentLoadInfo: not datacoord's times or end timestamp),
 * every field in the object itself, in one shape for every segment, and one empty array for every empty
 * log list. A record decoded from a message holds its fields in a store of its own besides: for a
 * million segments, this is about 100 MB less.
 */
export function targetSegment(s: SegmentLoadInfo, level: SegmentInfo["level"] = s.level === "L0" ? "L0" : "L1"): SegmentLoadInfo {
  const binlogs = s.binlogs?.length === 0 ? NO_BINLOGS : s.binlogs;
  const deltalogs = s.deltalogs?.length === 0 ? NO_BINLOGS : s.deltalogs;
  const statslogs = s.statslogs?.length === 0 ? NO_STATSLOGS : s.statslogs;
  if (s.endPosition === undefined) {
    return { segmentId: s.segmentId, collectionId: s.collectionId, partitionId: s.partitionId, vchannel: s.vchannel, level, state: "Flushed", numRows: s.numRows, startPosition: s.startPosition, binlogs, deltalogs, statslogs, memorySize: s.memorySize };
  }
  return {
    segmentId: s.segmentId,
    collectionId: s.collectionId,
    partitionId: s.partitionId,
    vchannel: s.vchannel,
    level,
    state: "Flushed",
    numRows: s.numRows,
    startPosition: s.startPosition,
    endPosition: s.endPosition,
    binlogs,
    deltalogs,
    statslogs,
    memorySize: s.memorySize,
  };
}

export function targetFromRecovery(
  info: RecoveryInfo,
  load: { collectionId: bigint; partitionIds: bigint[]; vchannels: VChannelInfo[] },
  version: number,
): CollectionTarget {
  const channels = new Map<string, ChannelTarget>();
  for (const v of load.vchannels) {
    channels.set(v.name, { vchannel: v.name, pchannel: v.pchannel, seekPosition: 0n, checkpointTs: 0n });
  }
  for (const c of info.channels) {
    channels.set(c.vchannel, { vchannel: c.vchannel, pchannel: c.pchannel, seekPosition: c.seekPosition, checkpointTs: c.checkpointTs });
  }
  const parts = new Set(load.partitionIds);
  const segments = new Map<bigint, SegmentLoadInfo>();
  const l0Segments = new Map<bigint, SegmentLoadInfo>();
  // what the segments of a collection repeat is held once (a million segments: a million copies fewer of each)
  const partitions = new Interner<bigint>();
  for (const s of info.segments) {
    const channel = channels.get(s.vchannel);
    if (s.state !== "Flushed" || s.collectionId !== load.collectionId || !channel) continue;
    const l0 = s.level === "L0";
    if (!l0 && parts.size > 0 && !parts.has(s.partitionId)) continue;
    // (the target's own record takes the values held once; the decoded one is left as it came)
    const t = targetSegment(s, l0 ? "L0" : "L1");
    t.collectionId = load.collectionId;
    t.vchannel = channel.vchannel;
    t.partitionId = partitions.of(s.partitionId);
    (l0 ? l0Segments : segments).set(t.segmentId, t);
  }
  return { collectionId: load.collectionId, version, partitionIds: [...load.partitionIds], channels, segments, l0Segments };
}

function sameKeys<K>(a: ReadonlyMap<K, unknown>, b: ReadonlyMap<K, unknown>): boolean {
  if (a.size !== b.size) return false;
  for (const k of a.keys()) if (!b.has(k)) return false;
  return true;
}

/** true when both targets hold the same segments, channels and partitions (versions and seek positions aside). */
export function sameTargetContent(a: CollectionTarget | undefined, b: CollectionTarget | undefined): boolean {
  if (!a || !b) return a === b;
  if (!sameKeys(a.segments, b.segments) || !sameKeys(a.l0Segments, b.l0Segments) || !sameKeys(a.channels, b.channels)) return false;
  const pa = new Set(a.partitionIds);
  return a.partitionIds.length === b.partitionIds.length && b.partitionIds.every((p) => pa.has(p));
}

/** The L0 segments of one vchannel in a target. */
export function l0Of(target: CollectionTarget | undefined, vchannel: string): SegmentLoadInfo[] {
  if (!target) return [];
  return [...target.l0Segments.values()].filter((s) => s.vchannel === vchannel);
}

/** A copy of the target without the segments of these partitions. */
export function withoutPartitions(t: CollectionTarget, partitionIds: bigint[], version: number): CollectionTarget {
  const drop = new Set(partitionIds);
  const segments = new Map([...t.segments].filter(([, s]) => !drop.has(s.partitionId)));
  return { ...t, version, partitionIds: t.partitionIds.filter((p) => !drop.has(p)), segments, l0Segments: new Map(t.l0Segments), channels: new Map(t.channels) };
}

/** Building targets from datacoord's recovery info, and comparing them. Pure functions. */
import { Interner } from "../interner.ts";
import type { SegmentInfo, VChannelInfo } from "../../../protocol/meta.ts";
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
  const segments = new Map<bigint, SegmentInfo>();
  const l0Segments = new Map<bigint, SegmentInfo>();
  // what the segments of a collection repeat is held once (a million segments: a million copies fewer of each)
  const partitions = new Interner<bigint>();
  for (const s of info.segments) {
    const channel = channels.get(s.vchannel);
    if (s.state !== "Flushed" || s.collectionId !== load.collectionId || !channel) continue;
    if (s.level === "L0") l0Segments.set(s.segmentId, s);
    else if (parts.size === 0 || parts.has(s.partitionId)) segments.set(s.segmentId, s);
    else continue;
    s.collectionId = load.collectionId;
    s.vchannel = channel.vchannel;
    s.state = "Flushed";
    s.level = s.level === "L0" ? "L0" : "L1";
    s.partitionId = partitions.of(s.partitionId);
    if (s.binlogs?.length === 0) s.binlogs = NO_BINLOGS;
    if (s.deltalogs?.length === 0) s.deltalogs = NO_BINLOGS;
    if (s.statslogs?.length === 0) s.statslogs = NO_STATSLOGS;
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
export function l0Of(target: CollectionTarget | undefined, vchannel: string): SegmentInfo[] {
  if (!target) return [];
  return [...target.l0Segments.values()].filter((s) => s.vchannel === vchannel);
}

/** A copy of the target without the segments of these partitions. */
export function withoutPartitions(t: CollectionTarget, partitionIds: bigint[], version: number): CollectionTarget {
  const drop = new Set(partitionIds);
  const segments = new Map([...t.segments].filter(([, s]) => !drop.has(s.partitionId)));
  return { ...t, version, partitionIds: t.partitionIds.filter((p) => !drop.has(p)), segments, l0Segments: new Map(t.l0Segments), channels: new Map(t.channels) };
}

/**
 * The checkpoint of a vchannel: the position at or before which every message is in a Flushed segment
 * (or, for a delete, in a Flushed L0 delta log). It is the position just before the oldest thing still
 * buffered (an unflushed segment's start, the first unflushed delete), or the consumed position when
 * nothing is buffered. A datanode that restarts replays from it.
 */

export interface Pending {
  /** position of the first message whose data is still unflushed */
  start: bigint;
  /** time of the message just before `start` (the checkpoint's time if it is the oldest) */
  tsBefore: bigint;
}

export interface Checkpoint {
  position: bigint;
  ts: bigint;
}

export function computeCheckpoint(pending: Iterable<Pending>, consumed: Checkpoint): Checkpoint {
  let oldest: Pending | undefined;
  for (const p of pending) if (oldest === undefined || p.start < oldest.start) oldest = p;
  if (oldest === undefined || oldest.start > consumed.position) return { position: consumed.position, ts: consumed.ts };
  return { position: oldest.start - 1n, ts: oldest.tsBefore };
}

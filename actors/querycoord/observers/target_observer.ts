/**
 * TargetObserver (Milvus's observers/target_observer.go).
 *
 * Refresh: the next target is pulled from datacoord's recovery info when a load starts, when datacoord
 * announces a flushed or dropped segment of a loaded collection, and every `targetRefreshMs` anyway. One
 * fetch per collection at a time; a request that comes during a fetch makes another one follow it.
 *
 * Promotion (the handoff): next → current only when every replica that has an alive querynode has a
 * serviceable delegator for every vchannel of the next target and a copy of every one of its sealed
 * segments. Then the LeaderChecker tells each delegator the new version with its sealed segments, and
 * the delegator drops the growing rows the new sealed segments hold: no row is missing or counted twice
 * at any moment, since until then it serves the old version whole.
 */
import type { RecoveryInfo } from "../../../protocol/messages/datacoord.ts";
import type { DistSnapshot } from "../dist/dist_snapshot.ts";
import type { CollectionTarget, Replica } from "../meta/types.ts";
import { aliveNodesOf } from "../checkers/types.ts";
import { replicaCoverage } from "./collection_observer.ts";

export interface Readiness {
  ready: boolean;
  /** what promotion waits on, for logs */
  waiting: string[];
}

export function promotionReadiness(replicas: readonly Replica[], next: CollectionTarget, dist: DistSnapshot): Readiness {
  const waiting: string[] = [];
  let ready = 0;
  let notReady = 0;
  for (const r of replicas) {
    if (aliveNodesOf(r, dist).length === 0) {
      waiting.push(`replica ${r.replicaId} has no alive querynode`);
      continue;
    }
    const members = new Set(r.nodes);
    let ok = true;
    for (const v of next.channels.keys()) {
      const d = dist.delegatorsFor(next.collectionId, v, r.replicaId).find((x) => members.has(x.nodeId) && x.serviceable);
      if (!d) {
        ok = false;
        waiting.push(`replica ${r.replicaId}: no serviceable delegator for ${v}`);
      }
    }
    const { loaded, missing } = replicaCoverage(next, r, dist, 5);
    if (loaded < next.segments.size) {
      ok = false;
      for (const s of missing) waiting.push(`replica ${r.replicaId}: segment ${s} not loaded`);
      if (next.segments.size - loaded > missing.length) waiting.push(`replica ${r.replicaId}: ${next.segments.size - loaded - missing.length} more segments not loaded`);
    }
    if (ok) ready++;
    else notReady++;
  }
  return { ready: ready > 0 && notReady === 0, waiting };
}

/** Segments asked for per page of recovery info (datacoord also keeps each page under the payload limit). */
export const RECOVERY_PAGE_SEGMENTS = 4_096;

/**
 * A collection's recovery info, page after page (a million segments do not fit one message): the
 * segments of every page, and the channels of the first one — the oldest checkpoints, so that nothing
 * flushed while the pages were read is missing from both the segments and the channel consumed after
 * the seek position. A datacoord that does not page answers everything at once, without `more`.
 */
export async function fetchRecoveryInfo(
  ask: (body: { collectionId: bigint; partitionIds: bigint[]; limit: number; afterSegmentId?: bigint; unlessRevision?: string }) => Promise<RecoveryInfo>,
  collectionId: bigint,
  partitionIds: bigint[],
  /** the revision of the segments last read whole: datacoord answers `unchanged` while they still are */
  unlessRevision?: string,
): Promise<RecoveryInfo> {
  const first = await ask({ collectionId, partitionIds, limit: RECOVERY_PAGE_SEGMENTS, ...(unlessRevision === undefined ? {} : { unlessRevision }) });
  if (first.unchanged === true && unlessRevision !== undefined && first.revision === unlessRevision) {
    return { collectionId: first.collectionId, channels: first.channels, segments: [], revision: first.revision, unchanged: true };
  }
  const segments = [...first.segments];
  let page = first;
  while (page.more && page.segments.length > 0) {
    page = await ask({ collectionId, partitionIds, limit: RECOVERY_PAGE_SEGMENTS, afterSegmentId: page.segments[page.segments.length - 1]!.segmentId });
    for (const s of page.segments) segments.push(s);
  }
  // (the first page's revision: a change while the pages were read makes the next ask read them all again)
  return { collectionId: first.collectionId, channels: first.channels, segments, ...(first.revision === undefined ? {} : { revision: first.revision }) };
}

interface FetchState {
  inflight: boolean;
  /** asked again while a fetch was in flight */
  again: boolean;
  lastStarted: number;
  failure?: string;
  retryAt: number;
  /** how many segments the last answer held */
  size: number;
}

/**
 * Segments per refresh interval: a larger collection is refreshed less often (a flush event asks for a
 * refresh at once anyway), so that re-reading a million segments every few seconds does not become the
 * coordinator's main work. An interval at most 30 times the configured one.
 */
const SEGMENTS_PER_INTERVAL = 10_000;

/** Bookkeeping of the fetches of next targets (the fetch itself is the actor's). */
export class TargetRefreshes {
  private readonly state = new Map<bigint, FetchState>();

  constructor(private readonly params: { refreshMs: number; retryMs: number }) {}

  /** Asks for a fetch soon. */
  request(collectionId: bigint): void {
    const s = this.of(collectionId);
    if (s.inflight) s.again = true;
    else s.lastStarted = 0;
  }

  /** The collections whose fetch should start now; marks them in flight. */
  due(collectionIds: readonly bigint[], now: number): bigint[] {
    const out: bigint[] = [];
    for (const id of collectionIds) {
      const s = this.of(id);
      if (s.inflight || now < s.retryAt) continue;
      const every = this.params.refreshMs * Math.min(30, Math.max(1, Math.ceil(s.size / SEGMENTS_PER_INTERVAL)));
      if (s.lastStarted === 0 || now - s.lastStarted >= every) {
        s.inflight = true;
        s.again = false;
        s.lastStarted = now;
        out.push(id);
      }
    }
    return out;
  }

  finished(collectionId: bigint, failure: string | undefined, now: number, size?: number): void {
    const s = this.state.get(collectionId);
    if (!s) return;
    if (size !== undefined) s.size = size;
    s.inflight = false;
    s.failure = failure;
    s.retryAt = failure ? now + this.params.retryMs : 0;
    if (failure || s.again) s.lastStarted = 0;
  }

  failure(collectionId: bigint): string | undefined {
    return this.state.get(collectionId)?.failure;
  }

  forget(collectionId: bigint): void {
    this.state.delete(collectionId);
  }

  private of(collectionId: bigint): FetchState {
    let s = this.state.get(collectionId);
    if (!s) this.state.set(collectionId, (s = { inflight: false, again: false, lastStarted: 0, retryAt: 0, size: 0 }));
    return s;
  }
}

/**
 * CollectionObserver (Milvus's observers/collection_observer.go): load progress and state.
 *
 * Progress is the loaded share of the target across replicas: each replica's serviceable delegators
 * and loaded sealed segments of the current target (of the next one while nothing is current yet, i.e.
 * during the first load), counting only a target made for every partition of the load. A load becomes
 * Loaded when such a current target exists and every replica has, on its alive querynodes, a serviceable
 * delegator per vchannel — watched with the load's partitions — that serves the current version, and a
 * copy of every sealed segment. Loaded is for good (until a release, or a LoadPartitions that widens
 * the load).
 */
import { ChangeMemo, type DistSnapshot } from "../dist/dist_snapshot.ts";
import type { TargetPair } from "../meta/target_manager.ts";
import type { CollectionTarget, Replica } from "../meta/types.ts";
import { aliveNodesOf, idOf, targetOrder } from "../checkers/types.ts";

interface Coverage {
  /** 1 where the segment has a copy on one of the replica's nodes */
  loaded: Uint8Array;
  count: number;
}
const coverageMemo = new ChangeMemo<Coverage>();

/**
 * How many of the target's segments have a copy on one of the replica's nodes, and the first few that
 * have none. Kept per snapshot and brought up to date from its change log: a round during a load of a
 * million segments looks at the segments that changed, not at every one.
 */
export function replicaCoverage(t: CollectionTarget, r: Replica, dist: DistSnapshot, missingWanted = 0): { loaded: number; missing: bigint[] } {
  const { ids, pos } = targetOrder(t);
  const members = new Set(r.nodes);
  const has = (id: bigint) => dist.copies(t.collectionId, id).some((c) => members.has(c.nodeId));
  const c = coverageMemo.get(
    dist,
    t.collectionId,
    `${t.collectionId}/${r.replicaId}`,
    `${idOf(t)}`,
    () => {
      const loaded = Uint8Array.from(ids, (id) => (has(id) ? 1 : 0));
      return { loaded, count: loaded.reduce((n, x) => n + x, 0) };
    },
    (cov, changed) => {
      for (const id of changed) {
        const i = pos.get(id);
        if (i === undefined) continue;
        const now = has(id) ? 1 : 0;
        cov.count += now - cov.loaded[i]!;
        cov.loaded[i] = now;
      }
    },
    r.nodes,
  );
  const missing: bigint[] = [];
  if (missingWanted > 0 && c.count < ids.length) {
    for (let i = 0; i < ids.length && missing.length < missingWanted; i++) if (c.loaded[i] === 0) missing.push(ids[i]!);
  }
  return { loaded: c.count, missing };
}

export interface LoadProgress {
  /** 0–100; 100 only when loaded */
  progress: number;
  loaded: boolean;
  /** (segment, replica) pairs loaded, and asked for */
  loadedSegments: number;
  targetSegments: number;
}

export function loadProgress(
  replicas: readonly Replica[],
  pair: TargetPair | undefined,
  dist: DistSnapshot,
  /** the partitions the load asks for: a target made for fewer (before a LoadPartitions widened it) does not count */
  partitionIds: readonly bigint[] = [],
  /** a delegator watched with other partitions than the load's, about to be watched again */
  stale: (address: string) => boolean = () => false,
): LoadProgress {
  const covers = (t: CollectionTarget | undefined) => t !== undefined && partitionIds.every((p) => t.partitionIds.includes(p));
  const t = covers(pair?.current) ? pair!.current : covers(pair?.next) ? pair!.next : undefined;
  if (!t || replicas.length === 0) return { progress: 0, loaded: false, loadedSegments: 0, targetSegments: 0 };
  let done = 0;
  let loadedSegments = 0;
  let complete = t === pair?.current;
  for (const r of replicas) {
    const members = new Set(r.nodes);
    if (aliveNodesOf(r, dist).length === 0) complete = false;
    for (const v of t.channels.keys()) {
      const d = dist.delegatorsFor(t.collectionId, v, r.replicaId).find((x) => members.has(x.nodeId) && x.serviceable);
      if (d) done++;
      if (!d || d.targetVersion !== t.version || stale(d.address)) complete = false;
    }
    const { loaded } = replicaCoverage(t, r, dist);
    done += loaded;
    loadedSegments += loaded;
    if (loaded < t.segments.size) complete = false;
  }
  const total = replicas.length * (t.channels.size + t.segments.size);
  const targetSegments = replicas.length * t.segments.size;
  if (complete) return { progress: 100, loaded: true, loadedSegments, targetSegments };
  return { progress: total === 0 ? 0 : Math.min(99, Math.floor((100 * done) / total)), loaded: false, loadedSegments, targetSegments };
}

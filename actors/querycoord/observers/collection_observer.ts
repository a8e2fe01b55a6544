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
import type { DistSnapshot } from "../dist/dist_snapshot.ts";
import type { TargetPair } from "../meta/target_manager.ts";
import type { CollectionTarget, Replica } from "../meta/types.ts";
import { aliveNodesOf } from "../checkers/types.ts";

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
    for (const s of t.segments.keys()) {
      if (dist.copies(t.collectionId, s).some((c) => members.has(c.nodeId))) {
        done++;
        loadedSegments++;
      } else {
        complete = false;
      }
    }
  }
  const total = replicas.length * (t.channels.size + t.segments.size);
  const targetSegments = replicas.length * t.segments.size;
  if (complete) return { progress: 100, loaded: true, loadedSegments, targetSegments };
  return { progress: total === 0 ? 0 : Math.min(99, Math.floor((100 * done) / total)), loaded: false, loadedSegments, targetSegments };
}

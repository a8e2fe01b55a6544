/**
 * IndexChecker (Milvus's checkers/index_checker.go): every loaded copy of a segment, on a querynode of
 * one of its collection's replicas, has the Finished builds of the collection's live vector indexes
 * loaded, and no index that is no longer live (dropped). What is live and built is what datacoord's
 * GetIndexInfos last said (refreshed on `index.*` and `segment.indexed` events and periodically); a
 * collection it has not answered for yet is left alone.
 *
 * Missing → LoadIndex on the copy's node; dead → ReleaseIndex. Both rank below segment loads: an index
 * makes searches faster, a segment makes them complete. A copy whose index does not load (the node
 * refused it, or the task failed) is reported as an `index` blocker — it does not hold the load back:
 * the segment is searched exactly meanwhile.
 */
import type { SegmentCopy } from "../dist/dist_snapshot.ts";
import { indexKey, Priority, type TaskSpec } from "../task/task.ts";
import { addBlocker, byBigint, emptyResult, replicasByCollection, type CheckInput, type CheckResult } from "./types.ts";

export function checkIndexes(input: CheckInput): CheckResult {
  const out = emptyResult();
  if (!input.indexes) return out;
  const reps = replicasByCollection(input.replicas);
  for (const coll of input.collections) {
    const known = input.indexes.get(coll.collectionId);
    if (!known) continue;
    const live = new Map(known.indexes.map((i) => [i.indexId, i]));
    const replicaOf = new Map<string, bigint>();
    for (const r of reps.get(coll.collectionId) ?? []) for (const n of r.nodes) replicaOf.set(n, r.replicaId);
    // only the segments with an index to load or to release, in id order (most have neither)
    const segments: [bigint, SegmentCopy[]][] = [];
    for (const e of input.dist.segmentsOf(coll.collectionId)) {
      const builds = known.builds.get(e[0]);
      if (e[1].some((c) => c.indexIds.length > 0 || (builds !== undefined && builds.length > 0))) segments.push(e);
    }
    segments.sort(([a], [b]) => byBigint(a, b));
    for (const [segmentId, copies] of segments) {
      const builds = known.builds.get(segmentId) ?? [];
      for (const c of [...copies].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1))) {
        const replicaId = replicaOf.get(c.nodeId);
        if (replicaId === undefined) continue; // a copy outside the replicas: the SegmentChecker releases it
        const have = new Set(c.indexIds);
        for (const b of builds) {
          if (have.has(b.indexId)) continue;
          const key = indexKey(c.nodeId, segmentId, b.indexId);
          const why = input.failures.get(key)?.reason ?? input.dist.indexLoadFailure(c.nodeId, segmentId, b.indexId);
          if (why) {
            const name = live.get(b.indexId)?.indexName ?? "";
            addBlocker(out, coll.collectionId, {
              kind: "index",
              subject: `${segmentId}`,
              reason: `index "${name}" (${b.indexId}, ${b.indexType}) does not load on node ${c.nodeId}: ${why}; searches of the segment stay exact`,
            });
          }
          if (input.dist.indexLoading(c.nodeId, segmentId, b.indexId)) continue;
          const task: TaskSpec = {
            key,
            priority: Priority.Low,
            action: { kind: "LoadIndex", nodeId: c.nodeId, collectionId: coll.collectionId, replicaId, segmentId, indexId: b.indexId, info: b },
          };
          out.tasks.push(task);
        }
        for (const indexId of [...have].sort(byBigint)) {
          if (live.has(indexId)) continue;
          out.tasks.push({
            key: indexKey(c.nodeId, segmentId, indexId),
            priority: Priority.Low,
            action: { kind: "ReleaseIndex", nodeId: c.nodeId, collectionId: coll.collectionId, replicaId, segmentId, indexId },
          });
        }
      }
    }
  }
  return out;
}

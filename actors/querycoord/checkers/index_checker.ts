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
import type { IndexInfo, IndexLoadInfo } from "../../../protocol/messages/indexes.ts";
import { ChangeMemo, type SegmentCopy } from "../dist/dist_snapshot.ts";
import { indexKey, Priority, type TaskSpec } from "../task/task.ts";
import { addBlocker, byBigint, changedBuilds, emptyResult, inShare, replicasByCollection, type CheckInput, type CheckResult, type CollectionIndexes } from "./types.ts";

/**
 * Per snapshot and collection, the segments with a copy (in a replica) that misses a Finished build
 * of a live index or holds an index no longer live: kept up to date from the snapshot's change log
 * (a copy whose indexes change is logged) and from the builds that changed between two answers of
 * datacoord's (a refresh every few seconds that says the same changes nothing) and, when the replicas'
 * nodes change, from what the nodes that came or left hold; looked for afresh when the live indexes
 * changed. Once loaded, a million segments with their indexes cost a round nothing here.
 */
const needsMemo = new ChangeMemo<{ needs: Set<bigint>; builds: CollectionIndexes["builds"] }>();

function needsWork(
  copies: readonly SegmentCopy[],
  builds: readonly IndexLoadInfo[] | undefined,
  live: ReadonlyMap<bigint, IndexInfo>,
  replicaOf: ReadonlyMap<string, bigint>,
): boolean {
  for (const c of copies) {
    if (!replicaOf.has(c.nodeId)) continue;
    for (const b of builds ?? []) if (!c.indexIds.includes(b.indexId)) return true;
    for (const id of c.indexIds) if (!live.has(id)) return true;
  }
  return false;
}

export function checkIndexes(input: CheckInput): CheckResult {
  const out = emptyResult();
  if (!input.indexes) return out;
  const reps = replicasByCollection(input.replicas);
  for (const coll of input.collections) {
    if (!inShare(input, coll.collectionId)) continue;
    const known = input.indexes.get(coll.collectionId);
    if (!known) continue;
    const live = new Map(known.indexes.map((i) => [i.indexId, i]));
    const replicaOf = new Map<string, bigint>();
    const replicas = reps.get(coll.collectionId) ?? [];
    for (const r of replicas) for (const n of r.nodes) replicaOf.set(n, r.replicaId);
    // only the segments with an index to load or to release, in id order (most have neither)
    const inDist = input.dist.segmentsOf(coll.collectionId);
    const look = (needs: Set<bigint>, ids: Iterable<bigint>) => {
      for (const id of ids) {
        const copies = inDist.get(id);
        if (copies && needsWork(copies, known.builds.get(id), live, replicaOf)) needs.add(id);
        else needs.delete(id);
      }
      return needs;
    };
    const { needs } = needsMemo.get(
      input.dist,
      coll.collectionId,
      `${coll.collectionId}`,
      known.indexes.map((i) => i.indexId).join(","),
      () => ({ needs: look(new Set(), inDist.keys()), builds: known.builds }),
      (m, changed) => {
        look(m.needs, changed);
        if (m.builds !== known.builds) look(m.needs, changedBuilds(m.builds, known.builds));
        m.builds = known.builds;
      },
      // (which replica a node serves does not matter here, only that it serves one)
      [...replicaOf.keys()].sort(),
    );
    const segments: [bigint, SegmentCopy[]][] = [];
    for (const id of needs) {
      const copies = inDist.get(id);
      if (copies) segments.push([id, copies]);
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

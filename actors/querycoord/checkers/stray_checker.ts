/**
 * What querynodes still hold of collections that are not loaded (released, dropped, or released while
 * querycoord was down): each such node is told to release the whole collection.
 */
import { Priority, strayCollectionKey } from "../task/task.ts";
import { emptyResult, type CheckInput, type CheckResult } from "./types.ts";

export function checkReleased(input: CheckInput): CheckResult {
  const out = emptyResult();
  const loaded = new Set(input.collections.map((c) => c.collectionId));
  for (const collectionId of input.dist.collectionIds()) {
    if (loaded.has(collectionId)) continue;
    for (const nodeId of [...input.dist.nodes.keys()].sort()) {
      if (!input.dist.holdsCollection(nodeId, collectionId)) continue;
      out.tasks.push({
        key: strayCollectionKey(nodeId, collectionId),
        priority: Priority.Normal,
        action: { kind: "ReleaseCollection", nodeId, collectionId },
      });
    }
  }
  return out;
}

/**
 * Which querynodes form which replica (Milvus's ReplicaManager.Spawn + ReplicaObserver): a replica's
 * nodes come from its resource group, and every node of a group is in one replica of every collection
 * loaded there. Pure functions.
 */
import type { Replica } from "../meta/types.ts";

/**
 * Splits the alive nodes into `replicaNumber` groups of (almost) equal size, least loaded nodes
 * first so that each group gets a share of the light ones. `null` when there are fewer nodes than
 * replicas.
 */
export function splitNodes(nodesByLoad: readonly string[], replicaNumber: number): string[][] | null {
  if (replicaNumber < 1 || nodesByLoad.length < replicaNumber) return null;
  const groups: string[][] = Array.from({ length: replicaNumber }, () => []);
  nodesByLoad.forEach((n, i) => groups[i % replicaNumber]!.push(n));
  return groups.map((g) => g.sort());
}

/**
 * With no resource groups (replicas without one, every alive node in one group): brings one
 * collection's replicas in line with the alive querynodes: a node that is down leaves its replica; an alive node in no replica of the collection joins the one with the fewest nodes (lowest
 * id first); a replica with no node that can take work borrows one (below). Returns the replicas that
 * changed (new objects).
 */
export function rebalanceReplicaNodes(
  replicas: readonly Replica[],
  alive: ReadonlySet<string>,
  /** the replica a node's distribution says it serves, if any: it goes back there */
  hint: (nodeId: string) => bigint | undefined = () => undefined,
  /** nodes draining before they stop: they stay where they are, and join no replica */
  stopping: ReadonlySet<string> = new Set(),
): Replica[] {
  const members = [...alive].filter((n) => !stopping.has(n));
  const view = { alive, stopping, hint, groupOf: (n: string) => (alive.has(n) && !stopping.has(n) ? "" : undefined), groupNodes: () => members, holds: () => false };
  return recoverReplicaNodes(replicas, view, "").changed;
}

/** What `recoverReplicaNodes` needs to know of the querynodes. */
export interface ReplicaNodeView {
  alive: ReadonlySet<string>;
  /** nodes draining before they stop: they stay where they are, and join no replica */
  stopping: ReadonlySet<string>;
  /** the resource group a node is in (alive, not stopping nodes only) */
  groupOf: (nodeId: string) => string | undefined;
  /** the nodes of a resource group */
  groupNodes: (group: string) => readonly string[];
  /** the replica a node's distribution says it serves, if any: it goes back there when its group allows */
  hint?: (nodeId: string) => bigint | undefined;
  /** whether the node still holds something (a segment, a delegator) of the collection */
  holds: (nodeId: string) => boolean;
}

/**
 * One collection's replicas with resource groups (Milvus's ReplicaManager.RecoverNodesInCollection): a
 * replica's nodes come from its group only. A node that is down leaves its replica; a node that left the
 * replica's group (transferred, or the replica was) stays while it still holds some of the collection and
 * is returned in `leaving` (it serves until its work is elsewhere, then goes); a node of the group in no
 * replica of the collection joins the group's replica with the fewest nodes; a replica with no node that
 * can take work borrows one from a replica of the same group. With every replica and node in the default
 * group this is `rebalanceReplicaNodes`. Returns the replicas that changed (new objects).
 */
export function recoverReplicaNodes(replicas: readonly Replica[], view: ReplicaNodeView, defaultGroup: string): { changed: Replica[]; leaving: Set<string> } {
  const groupOfReplica = (r: Replica) => r.resourceGroup ?? defaultGroup;
  const next = replicas.map((r) => ({
    ...r,
    nodes: r.nodes.filter((n) => view.alive.has(n) && (view.stopping.has(n) || view.groupOf(n) === groupOfReplica(r) || view.holds(n))),
  }));
  const used = new Set(next.flatMap((r) => r.nodes));
  const groups = [...new Set(next.map(groupOfReplica))].sort();
  for (const g of groups) {
    const mine = next.filter((r) => groupOfReplica(r) === g);
    for (const n of [...view.groupNodes(g)].filter((x) => !used.has(x) && view.alive.has(x) && !view.stopping.has(x)).sort()) {
      const h = view.hint?.(n);
      const target =
        mine.find((r) => r.replicaId === h) ?? [...mine].sort((a, b) => a.nodes.length - b.nodes.length || (a.replicaId < b.replicaId ? -1 : 1))[0]!;
      target.nodes = [...target.nodes, n].sort();
      used.add(n);
    }
    // a replica with no node that can take work borrows one from the group's replica with the most
    const settled = (r: Replica) => r.nodes.filter((n) => !view.stopping.has(n) && view.groupOf(n) === g).sort();
    for (const r of mine) {
      if (settled(r).length > 0) continue;
      const donor = mine
        .filter((o) => o !== r)
        .map((o) => ({ o, s: settled(o) }))
        .filter((x) => x.s.length >= 2)
        .sort((a, b) => b.s.length - a.s.length || (a.o.replicaId < b.o.replicaId ? -1 : 1))[0];
      if (!donor) continue;
      const n = donor.s[donor.s.length - 1]!;
      donor.o.nodes = donor.o.nodes.filter((x) => x !== n);
      r.nodes = [...r.nodes, n].sort();
    }
  }
  const leaving = new Set<string>();
  for (const r of next) for (const n of r.nodes) if (!view.stopping.has(n) && view.groupOf(n) !== groupOfReplica(r)) leaving.add(n);
  const key = (nodes: readonly string[]) => [...nodes].sort().join(",");
  return { changed: next.filter((r, i) => key(r.nodes) !== key(replicas[i]!.nodes)), leaving };
}

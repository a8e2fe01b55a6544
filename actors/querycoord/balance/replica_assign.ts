/**
 * Which querynodes form which replica (Milvus's ReplicaManager.Spawn + ReplicaObserver, with one
 * resource group: every alive querynode is in one replica of every loaded collection). Pure functions.
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
 * Brings one collection's replicas in line with the alive querynodes: a node that is down leaves its
 * replica; an alive node in no replica of the collection joins the one with the fewest nodes (lowest
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
  const next = replicas.map((r) => ({ ...r, nodes: r.nodes.filter((n) => alive.has(n)) }));
  const assigned = new Set(next.flatMap((r) => r.nodes));
  const free = [...alive].filter((n) => !assigned.has(n) && !stopping.has(n)).sort();
  for (const n of free) {
    if (next.length === 0) break;
    const h = hint(n);
    const target =
      next.find((r) => r.replicaId === h) ??
      [...next].sort((a, b) => a.nodes.length - b.nodes.length || (a.replicaId < b.replicaId ? -1 : 1))[0]!;
    target.nodes = [...target.nodes, n].sort();
  }
  // A replica left with no node that can take work (its nodes died or are draining) takes one from the
  // replica with the most such nodes, when that one keeps at least one: the replica is served again
  // (a draining node's work then has somewhere to go) instead of waiting for a node to join.
  for (const r of next) {
    if (r.nodes.some((n) => !stopping.has(n))) continue;
    const donor = next
      .filter((o) => o !== r)
      .map((o) => ({ o, settled: o.nodes.filter((n) => !stopping.has(n)).sort() }))
      .filter((x) => x.settled.length >= 2)
      .sort((a, b) => b.settled.length - a.settled.length || (a.o.replicaId < b.o.replicaId ? -1 : 1))[0];
    if (!donor) continue;
    const n = donor.settled[donor.settled.length - 1]!;
    donor.o.nodes = donor.o.nodes.filter((x) => x !== n);
    r.nodes = [...r.nodes, n].sort();
  }
  const key = (nodes: readonly string[]) => [...nodes].sort().join(",");
  return next.filter((r, i) => key(r.nodes) !== key(replicas[i]!.nodes));
}

/**
 * Milvus's resource group messages (`rgpb.ResourceGroupConfig` in, `milvuspb.ResourceGroup` out) as both
 * doors carry them: the gRPC door decoded from protobuf, the REST door from JSON, with the same
 * snake_case names. Node filters are not kept: Vectorbus's querynodes carry no labels.
 */
import type { ResourceGroupConfig, ResourceGroupInfo } from "../../protocol/messages/querycoord.ts";

type Fields = Record<string, unknown>;

/** A querynode id (`qn1`, `standalone-qn2`) as the int64 Milvus shows: its trailing digits, else a hash. */
export function nodeNumber(id: string): string {
  const m = /(\d+)$/.exec(id);
  if (m) return m[1]!;
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619) >>> 0;
  return String(h & 0x7fffffff);
}

/** rgpb.ResourceGroupConfig → the native config (node counts and transfers; an absent count is 0). */
export function rgConfigOf(c: Fields): ResourceGroupConfig {
  const num = (x: unknown) => Number(((x ?? {}) as Fields).node_num ?? 0);
  const transfers = (l: unknown) => ((l ?? []) as Fields[]).map((t) => ({ resourceGroup: String(t.resource_group ?? "") }));
  return {
    requests: { nodeNum: num(c.requests) },
    limits: { nodeNum: num(c.limits) },
    transferFrom: transfers(c.transfer_from),
    transferTo: transfers(c.transfer_to),
  };
}

/**
 * The native description → milvuspb.ResourceGroup. `int64` writes a node's number: a decimal string for
 * protobuf's int64, a JSON number for REST (as Milvus's handler marshals it).
 */
export function resourceGroupOf(g: ResourceGroupInfo, int64: (decimal: string) => string | number): Fields {
  const byName = (l: { collectionName: string; count: number }[]) => Object.fromEntries(l.map((x) => [x.collectionName, x.count]));
  return {
    name: g.name,
    capacity: g.capacity,
    num_available_node: g.numAvailableNode,
    num_loaded_replica: byName(g.numLoadedReplica),
    num_outgoing_node: byName(g.numOutgoingNode),
    num_incoming_node: byName(g.numIncomingNode),
    config: {
      requests: { node_num: g.config.requests.nodeNum },
      limits: { node_num: g.config.limits.nodeNum },
      transfer_from: (g.config.transferFrom ?? []).map((t) => ({ resource_group: t.resourceGroup })),
      transfer_to: (g.config.transferTo ?? []).map((t) => ({ resource_group: t.resourceGroup })),
    },
    nodes: g.nodes.map((n) => ({ node_id: int64(nodeNumber(n)), address: n, hostname: n })),
  };
}

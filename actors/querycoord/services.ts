/**
 * The read side of querycoord's API (Milvus's querycoordv2/services.go): load state and progress,
 * shard leaders, replicas, segments, status. Answers come from the state of the last reconcile round;
 * none waits on a peer.
 */
import { channelMoveKey, DEFAULT_BALANCE_OPTIONS, nodeScores } from "./balance/score_balancer.ts";
import { collectionLabel, collectionNotLoaded, ErrorCode, VbError } from "../../protocol/errors.ts";
import type { SegmentLoadInfo } from "../../protocol/meta.ts";
import type { LoadState, QuerycoordApi, ReplicaInfo, ShardLeader } from "../../protocol/messages/querycoord.ts";
import type { QuerycoordCore } from "./core.ts";
import { targetChannels } from "./checkers/types.ts";
import type { CollectionLoad } from "./meta/types.ts";
import { DEFAULT_RESOURCE_GROUP } from "./meta/resource_manager.ts";
import { resourceGroupEvents, resourceGroupsStatus } from "./rg_services.ts";

type Res<V extends keyof QuerycoordApi> = QuerycoordApi[V][1];

/** querycoord keeps no name for a collection it has not loaded: the proxy puts the name in. */
function notLoaded(collectionId: bigint): VbError {
  return collectionNotLoaded(collectionId);
}

/** GetLoadingProgress never goes back for one load: the highest value reported so far. */
export function progressOf(core: QuerycoordCore, c: CollectionLoad): number {
  if (c.status === "Loaded") return 100;
  return Math.max(c.progress, core.progress.get(c.collectionId)?.progress ?? 0, 0);
}

export function getLoadState(core: QuerycoordCore, collectionId: bigint, partitionIds?: bigint[]): Res<"GetLoadState"> {
  const c = core.meta.collection(collectionId);
  if (!c) return { state: "NotLoad", progress: 0 };
  if (partitionIds && partitionIds.length > 0) {
    if (!partitionIds.every((p) => c.partitionIds.includes(p))) return { state: "NotLoad", progress: 0 };
    if (partitionIds.every((p) => c.loadedPartitionIds.includes(p))) return { state: "Loaded", progress: 100 };
    return { state: "Loading", progress: progressOf(core, c) };
  }
  return { state: c.status, progress: progressOf(core, c) };
}

export function getLoadingProgress(core: QuerycoordCore, collectionId: bigint): Res<"GetLoadingProgress"> {
  const c = core.meta.collection(collectionId);
  if (!c) throw notLoaded(collectionId);
  const p = core.progress.get(collectionId);
  const progress = progressOf(core, c);
  return {
    progress,
    state: c.status,
    loadedSegments: p?.loadedSegments ?? 0,
    targetSegments: p?.targetSegments ?? 0,
    blockers: core.blockers.get(collectionId) ?? [],
  };
}

export function showCollections(core: QuerycoordCore): Res<"ShowCollections"> {
  return {
    collections: core.meta.allCollections().map((c) => ({
      collectionId: c.collectionId,
      inMemoryPercentage: progressOf(core, c),
      replicaNumber: c.replicaNumber,
      loadedPartitions: [...c.loadedPartitionIds],
    })),
  };
}

/** Every delegator of the replica on its alive querynodes (serviceable or not). */
function leadersOf(core: QuerycoordCore, collectionId: bigint, replicaId: bigint, nodes: readonly string[], readable = false): ShardLeader[] {
  const members = new Set(nodes);
  return core.snapshot
    .delegatorsOf(collectionId)
    .filter((d) => d.replicaId === replicaId && members.has(d.nodeId))
    // a leader reads only once querycoord has synced its sealed view (targetVersion > 0): before that
    // it would answer without the flushed segments (after a restart, for one)
    .map((d) => ({ vchannel: d.vchannel, replicaId, nodeId: d.nodeId, address: d.address, serviceable: d.serviceable && (!readable || d.targetVersion > 0) }))
    .sort((a, b) => (a.vchannel < b.vchannel ? -1 : a.vchannel > b.vchannel ? 1 : 0));
}

export function getShardLeaders(core: QuerycoordCore, collectionId: bigint): Res<"GetShardLeaders"> {
  const c = core.meta.collection(collectionId);
  if (!c) throw notLoaded(collectionId);
  const pair = core.targets.get(collectionId);
  const channels = targetChannels(pair);
  const names = channels.length > 0 ? channels : c.vchannels.map((v) => v.name).sort();
  const leaders = core.meta
    .replicasOf(collectionId)
    .flatMap((r) => leadersOf(core, collectionId, r.replicaId, r.nodes, true))
    .filter((l) => l.serviceable);
  const shards = names.map((vchannel) => {
    const here = leaders.filter((l) => l.vchannel === vchannel);
    // a channel moving between nodes (balance): once the new delegator serves the version the old one
    // does, reads go to it alone, so that readers have switched before the old one is unwatched
    const all = here.filter((l) => {
      const m = core.channelMoves.get(channelMoveKey(l.replicaId, vchannel));
      if (!m || l.nodeId !== m.from || !here.some((x) => x.replicaId === l.replicaId && x.nodeId === m.to)) return true;
      const to = core.snapshot.delegatorOn(m.to, collectionId, vchannel, l.replicaId);
      const from = core.snapshot.delegatorOn(m.from, collectionId, vchannel, l.replicaId);
      return !to || to.targetVersion < (from?.targetVersion ?? 0);
    });
    // leaders on draining nodes only while the shard has no other
    const settled = all.filter((l) => !core.snapshot.isStopping(l.nodeId));
    return { vchannel, leaders: settled.length > 0 ? settled : all };
  });
  const missing = shards.filter((s) => s.leaders.length === 0).map((s) => s.vchannel);
  if (missing.length > 0) {
    if (c.status === "Loading") {
      throw new VbError(
        ErrorCode.CollectionNotFullyLoaded,
        `collection ${collectionLabel(collectionId, c.name)} is not fully loaded (103, ${progressOf(core, c)}%): no serviceable shard leader yet for ${missing.join(", ")}`,
      );
    }
    throw new VbError(
      ErrorCode.ChannelNotAvailable,
      `collection ${collectionLabel(collectionId, c.name)}: no serviceable shard leader for ${missing.join(", ")} (503); querycoord is placing it again, retry`,
      { retriable: true },
    );
  }
  return { shards };
}

export function getReplicas(core: QuerycoordCore, collectionId: bigint): Res<"GetReplicas"> {
  if (!core.meta.collection(collectionId)) throw notLoaded(collectionId);
  return { replicas: replicaInfos(core, collectionId) };
}

function replicaInfos(core: QuerycoordCore, collectionId: bigint): ReplicaInfo[] {
  return core.meta.replicasOf(collectionId).map((r) => ({
    replicaId: r.replicaId,
    collectionId,
    resourceGroup: r.resourceGroup ?? DEFAULT_RESOURCE_GROUP,
    nodes: [...r.nodes],
    shardLeaders: leadersOf(core, collectionId, r.replicaId, r.nodes),
  }));
}

export function getSegmentInfo(core: QuerycoordCore, collectionId: bigint): Res<"GetSegmentInfo"> {
  if (!core.meta.collection(collectionId)) throw notLoaded(collectionId);
  const pair = core.targets.get(collectionId);
  const segs = new Map<bigint, SegmentLoadInfo>([...(pair.current?.segments ?? []), ...(pair.next?.segments ?? [])]);
  return {
    segments: [...segs.values()]
      .sort((a, b) => (a.segmentId < b.segmentId ? -1 : 1))
      .map((s) => ({ ...s, nodeIds: core.snapshot.copies(collectionId, s.segmentId).map((c) => c.nodeId).sort() })),
  };
}

export function getStatus(core: QuerycoordCore): Res<"GetStatus"> {
  const snap = core.snapshot;
  const pulse = core.dist.pulseStats();
  const scores = nodeScores([...snap.nodes.keys()], { dist: snap, pending: new Map() }, DEFAULT_BALANCE_OPTIONS.delegatorOverheadRows);
  return {
    nodes: core.dist.statuses().map((n) => {
      const s = scores.get(n.nodeId);
      return s && n.alive ? { ...n, score: Math.round(s.score) } : n;
    }),
    moves: [...core.moves.values()].map((m) => ({
      collectionId: m.collectionId,
      replicaId: m.replicaId,
      segmentId: m.segmentId,
      rows: m.rows,
      from: m.from,
      to: m.to,
      startedAt: m.at,
    })),
    channelMoves: [...core.channelMoves.values()].map((m) => ({
      collectionId: m.collectionId,
      replicaId: m.replicaId,
      vchannel: m.vchannel,
      from: m.from,
      to: m.to,
      startedAt: m.at,
    })),
    resourceGroups: resourceGroupsStatus(core),
    feed: { lagMs: Math.round(core.dist.lagMs), pulse: pulse.running, pulseLagMs: Math.round(pulse.lagMs) },
    resourceGroupEvents: resourceGroupEvents(core),
    collections: core.meta.allCollections().map((c) => ({
      collectionId: c.collectionId,
      state: c.status as LoadState,
      progress: progressOf(core, c),
      replicas: replicaInfos(core, c.collectionId),
      blockers: core.blockers.get(c.collectionId) ?? [],
    })),
  };
}

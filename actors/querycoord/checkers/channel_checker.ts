/**
 * ChannelChecker (Milvus's checkers/channel_checker.go): every replica has exactly one delegator per
 * vchannel of the collection's target, on one of its own alive querynodes. Missing → watch it on the
 * replica's node with the fewest delegators; extra, stray (a node outside the replica, a replica or
 * channel the collection no longer has) → unwatch it. A delegator on a stopping node (draining
 * before it exits) is replaced first: a new one is watched on another node of the replica, and the old
 * one is unwatched once the new one is serviceable, so the shard never goes without a leader. A
 * channel balance move (`input.channelMoves`) goes the same way: watched on its target node, and the
 * old delegator unwatched once the new one is serviceable at the current target's version.
 */
import { nodeLoads, pickChannelNode, addLoad, type NodeLoad } from "../balance/node_load.ts";
import { channelMoveKey } from "../balance/score_balancer.ts";
import type { DelegatorView } from "../dist/dist_snapshot.ts";
import { channelKey, Priority, type TaskSpec } from "../task/task.ts";
import type { CollectionLoad, Replica } from "../meta/types.ts";
import {
  addBlocker,
  aliveNodesOf,
  emptyResult,
  placementNodesOf,
  partitionKey,
  replicasByCollection,
  targetChannels,
  type CheckInput,
  type CheckResult,
} from "./types.ts";

function unsub(d: DelegatorView): TaskSpec {
  return {
    key: channelKey(d.replicaId, d.vchannel),
    priority: Priority.High,
    action: { kind: "UnsubChannel", nodeId: d.nodeId, collectionId: d.collectionId, replicaId: d.replicaId, vchannel: d.vchannel },
  };
}

/** The delegator to keep of several: serviceable first, then the furthest along, then by node id. */
function best(ds: DelegatorView[]): DelegatorView {
  return [...ds].sort(
    (a, b) =>
      Number(b.serviceable) - Number(a.serviceable) ||
      (b.tSafe > a.tSafe ? 1 : b.tSafe < a.tSafe ? -1 : 0) ||
      (a.nodeId < b.nodeId ? -1 : 1),
  )[0]!;
}

function stalePartitions(input: CheckInput, coll: CollectionLoad, d: DelegatorView): boolean {
  const was = input.watched?.get(d.address);
  return was !== undefined && was !== partitionKey(coll);
}

export function checkChannels(input: CheckInput): CheckResult {
  const out = emptyResult();
  const reps = replicasByCollection(input.replicas);
  const aliveTotal = input.dist.nodes.size;
  for (const coll of input.collections) {
    const pair = input.targets.get(coll.collectionId);
    if (!pair?.current && !pair?.next) continue;
    const channels = targetChannels(pair);
    const channelSet = new Set(channels);
    const replicas = reps.get(coll.collectionId) ?? [];
    const replicaIds = new Set(replicas.map((r) => r.replicaId));
    const dels = input.dist.delegatorsOf(coll.collectionId);
    const keys = new Set<string>();
    const emit = (t: TaskSpec) => {
      if (keys.has(t.key)) return;
      keys.add(t.key);
      out.tasks.push(t);
    };
    /** every other replica serves `v` (so one replica at a time is watched again) */
    const othersServe = (all: readonly Replica[], replicaId: bigint, v: string) =>
      all.every(
        (o) =>
          o.replicaId === replicaId ||
          dels.some((d) => d.replicaId === o.replicaId && d.vchannel === v && d.serviceable && o.nodes.includes(d.nodeId)),
      );
    const rewatching = new Set<string>();

    for (const d of dels) {
      if (!replicaIds.has(d.replicaId) || !channelSet.has(d.vchannel)) emit(unsub(d));
    }
    for (const r of replicas) {
      const alive = aliveNodesOf(r, input.dist);
      if (alive.length === 0) {
        addBlocker(out, coll.collectionId, {
          kind: "replica",
          subject: `${r.replicaId}`,
          reason: `needs a node, ${coll.replicaNumber} replicas asked for but ${aliveTotal} querynode${aliveTotal === 1 ? "" : "s"} alive`,
        });
      }
      const members = new Set(r.nodes);
      const placement = placementNodesOf(r, input.dist);
      // (what the nodes hold, looked up only when a channel is to be placed: most rounds place none)
      let loadsOf: NodeLoad[] | undefined;
      const loads = () => (loadsOf ??= nodeLoads(placement, input.dist, input.pending));
      const stopping = (d: DelegatorView) => input.dist.isStopping(d.nodeId);
      /** watches `v` on the replica's least loaded node that can take work (another than a failed one's) */
      const watch = (v: string, key: string) => {
        const failure = input.failures.get(key);
        if (failure) addBlocker(out, coll.collectionId, { kind: "channel", subject: v, reason: failure.reason });
        const node = pickChannelNode(loads(), failure ? new Set([failure.nodeId]) : undefined)!;
        addLoad(node, { channels: 1 });
        emit({
          key,
          priority: Priority.High,
          action: { kind: "WatchChannel", nodeId: node.nodeId, collectionId: coll.collectionId, replicaId: r.replicaId, vchannel: v },
        });
      };
      for (const v of channels) {
        const key = channelKey(r.replicaId, v);
        const ds = dels.filter((d) => d.replicaId === r.replicaId && d.vchannel === v);
        const outside = ds.filter((d) => !members.has(d.nodeId));
        if (outside.length > 0) {
          emit(unsub(outside[0]!));
          continue;
        }
        const settled = ds.filter((d) => !stopping(d));
        const move = input.channelMoves?.get(channelMoveKey(r.replicaId, v));
        if (move && settled.length === ds.length) {
          const onFrom = ds.find((d) => d.nodeId === move.from);
          const onTo = ds.find((d) => d.nodeId === move.to);
          if (onFrom && !onTo && ds.length === 1 && placement.includes(move.to) && !input.failures.has(key)) {
            const to = loads().find((l) => l.nodeId === move.to);
            if (to) addLoad(to, { channels: 1 });
            emit({
              key,
              priority: Priority.High,
              action: { kind: "WatchChannel", nodeId: move.to, collectionId: coll.collectionId, replicaId: r.replicaId, vchannel: v },
            });
            continue;
          }
          if (onFrom && onTo && ds.length === 2) {
            // the shard's new leader serves the current version before the old one goes
            if (onTo.serviceable && pair.current !== undefined && onTo.targetVersion === pair.current.version) emit(unsub(onFrom));
            continue;
          }
        }
        if (ds.length > 0 && settled.length === 0 && placement.length > 0) {
          // only on stopping nodes: watch its replacement first (the stopping one serves meanwhile)
          watch(v, key);
          continue;
        }
        if (ds.length > 1 && settled.length > 0 && settled.length < ds.length) {
          // a replacement exists: the stopping one goes once the replacement serves
          const keep = best(settled);
          if (keep.serviceable && keep.targetVersion > 0) emit(unsub(ds.find(stopping)!));
          continue;
        }
        if (ds.length === 0) {
          if (placement.length === 0) {
            const failure = input.failures.get(key);
            if (failure) addBlocker(out, coll.collectionId, { kind: "channel", subject: v, reason: failure.reason });
            addBlocker(out, coll.collectionId, {
              kind: "channel",
              subject: v,
              reason: alive.length === 0 ? `no alive querynode in replica ${r.replicaId}` : `every querynode of replica ${r.replicaId} is stopping`,
            });
            continue;
          }
          watch(v, key);
        } else if (ds.length > 1) {
          const keep = best(ds);
          emit(unsub(ds.find((d) => d !== keep)!));
        } else if (stalePartitions(input, coll, ds[0]!) && !rewatching.has(v) && othersServe(replicas, r.replicaId, v)) {
          // watched with the partitions of an earlier load: watch it again with today's
          rewatching.add(v);
          emit(unsub(ds[0]!));
        }
      }
    }
  }
  return out;
}

/**
 * Manual LoadBalance (Milvus's querycoordv2 services.LoadBalance): move sealed segments off a source
 * querynode to other nodes of the same replica. No destination: every other node of the replica that can
 * take work; no segments: every sealed segment of the current target the source holds for the replica. A
 * request that would break a replica is refused whole, with the reason: a source that is down or in no
 * replica of the collection, a destination outside the source's replica (or its resource group), down
 * or stopping, a segment the source does not hold, one already moving, or a shard without a serviceable
 * delegator in the replica (the move switches the delegator's view before the source releases).
 *
 * The moves are the BalanceChecker's: the SegmentChecker loads each on its target, the LeaderChecker
 * points the view at it, then the copy on the source is released. `planManualBalance` is pure.
 */
import { collectionLabel, collectionNotLoaded, ErrorCode, VbError } from "../../../protocol/errors.ts";
import type { ManualMove, QuerycoordApi } from "../../../protocol/messages/querycoord.ts";
import { type CheckInput } from "../checkers/types.ts";
import type { QuerycoordCore } from "../core.ts";
import type { Replica } from "../meta/types.ts";
import { DEFAULT_BALANCE_OPTIONS, moveKey, nodeScores, type SegmentMove } from "./score_balancer.ts";

export interface ManualBalanceRequest {
  collectionId?: bigint;
  sourceNode: string;
  dstNodes?: string[];
  segmentIds?: bigint[];
}

export interface ManualBalanceInput extends Pick<CheckInput, "collections" | "replicas" | "targets" | "dist" | "pending"> {
  /** moves in flight (balance or manual), by `moveKey` */
  moves: ReadonlyMap<string, SegmentMove>;
  /** the resource group a node is in (alive, not stopping nodes), and each replica's group */
  groupOf: (nodeId: string) => string | undefined;
  groupOfReplica: (r: Replica) => string;
}

const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function planManualBalance(input: ManualBalanceInput, req: ManualBalanceRequest): SegmentMove[] {
  const { dist } = input;
  const src = req.sourceNode;
  if (!dist.isAlive(src)) {
    throw new VbError(ErrorCode.NodeOffline, `LoadBalance: source node ${src} is not up (902): vbus status lists the querynodes`);
  }
  const dsts = req.dstNodes ? [...new Set(req.dstNodes)] : undefined;
  if (dsts?.includes(src)) throw VbError.invalid(`LoadBalance: node ${src} is both the source and a destination (1100)`);
  for (const d of dsts ?? []) {
    if (!dist.isAlive(d)) throw new VbError(ErrorCode.NodeOffline, `LoadBalance: destination node ${d} is not up (902)`);
    if (dist.isStopping(d)) throw new VbError(ErrorCode.NodeNotAvailable, `LoadBalance: destination node ${d} is stopping (905): it takes no new segments`);
  }
  const collections =
    req.collectionId !== undefined
      ? [input.collections.find((c) => c.collectionId === req.collectionId) ?? throwNotLoaded(req.collectionId)]
      : input.collections.filter((c) => input.replicas.some((r) => r.collectionId === c.collectionId && r.nodes.includes(src)));
  if (collections.length === 0) {
    throw new VbError(ErrorCode.NodeNotFound, `LoadBalance: node ${src} serves no replica of a loaded collection (901): nothing to move`);
  }
  const scores = nodeScores([...dist.nodes.keys()], input, DEFAULT_BALANCE_OPTIONS.delegatorOverheadRows);
  const planned: SegmentMove[] = [];
  for (const c of [...collections].sort((a, b) => (a.collectionId < b.collectionId ? -1 : 1))) {
    const label = collectionLabel(c.collectionId, c.name);
    if (c.status !== "Loaded") {
      throw new VbError(ErrorCode.CollectionNotFullyLoaded, `LoadBalance: collection ${label} is still loading (103): balance it once it is loaded`);
    }
    const replica = input.replicas.find((r) => r.collectionId === c.collectionId && r.nodes.includes(src));
    if (!replica) throw new VbError(ErrorCode.NodeNotFound, `LoadBalance: node ${src} is in no replica of collection ${label} (901)`);
    const group = input.groupOfReplica(replica);
    const members = new Set(replica.nodes);
    // nodes of the replica that can take work: alive, not stopping, in the replica's group
    const takers = replica.nodes.filter((n) => n !== src && dist.isAlive(n) && !dist.isStopping(n) && input.groupOf(n) === group).sort(byId);
    let targets: string[];
    if (dsts) {
      for (const d of dsts) {
        if (!members.has(d)) {
          throw VbError.invalid(
            `LoadBalance: destination node ${d} is not in replica ${replica.replicaId} of collection ${label}, the source's (1100): its nodes are ${replica.nodes.join(", ")}`,
          );
        }
        if (!takers.includes(d)) {
          throw new VbError(ErrorCode.NodeNotAvailable, `LoadBalance: destination node ${d} is leaving resource group "${group}" of replica ${replica.replicaId} (905)`);
        }
      }
      targets = [...dsts].sort(byId);
    } else {
      targets = takers;
    }
    if (targets.length === 0) {
      throw new VbError(ErrorCode.NodeLack, `LoadBalance: replica ${replica.replicaId} of collection ${label} has no other node that can take segments from ${src} (903)`);
    }
    const current = input.targets.get(c.collectionId)?.current;
    if (!current) throw new VbError(ErrorCode.CollectionNotFullyLoaded, `LoadBalance: collection ${label} has no current target yet (103)`);
    const inDist = dist.segmentsOf(c.collectionId);
    const onSrc = (id: bigint) => (inDist.get(id) ?? []).some((x) => x.nodeId === src);
    let ids: bigint[];
    if (req.segmentIds && req.segmentIds.length > 0) {
      ids = [...new Set(req.segmentIds)];
      for (const id of ids) {
        if (!current.segments.has(id)) {
          throw new VbError(ErrorCode.SegmentNotFound, `LoadBalance: segment ${id} is not a sealed segment of collection ${label} (600)`);
        }
        if (!onSrc(id)) throw new VbError(ErrorCode.SegmentNotFound, `LoadBalance: node ${src} does not hold segment ${id} of collection ${label} (600)`);
      }
    } else {
      ids = [...current.segments.keys()].filter(onSrc);
    }
    const serviceable = new Set(
      dist.delegatorsOf(c.collectionId).filter((d) => d.replicaId === replica.replicaId && d.serviceable && members.has(d.nodeId)).map((d) => d.vchannel),
    );
    for (const id of ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
      const s = current.segments.get(id)!;
      if (input.moves.has(moveKey(replica.replicaId, id))) {
        throw VbError.invalid(`LoadBalance: segment ${id} of collection ${label} is already moving (1100): wait for it (vbus status)`);
      }
      if (!serviceable.has(s.vchannel)) {
        throw new VbError(
          ErrorCode.ChannelNotAvailable,
          `LoadBalance: shard ${s.vchannel} of collection ${label} has no serviceable delegator in replica ${replica.replicaId} (503): moving segment ${id} would leave it unserved; retry once it serves`,
          { retriable: true },
        );
      }
      const copies = (inDist.get(id) ?? []).filter((x) => members.has(x.nodeId));
      if (copies.length > 1) continue; // a second copy is on its way (a move, a handoff): nothing to add
      // the destination with the lowest score, counting what this request already sends there
      const to = [...targets].sort((a, b) => (scores.get(a)?.score ?? 0) - (scores.get(b)?.score ?? 0) || byId(a, b))[0]!;
      const sc = scores.get(to);
      if (sc) sc.score += s.numRows / sc.weight;
      planned.push({ collectionId: c.collectionId, replicaId: replica.replicaId, segmentId: id, vchannel: s.vchannel, from: src, to, rows: s.numRows });
    }
  }
  return planned;
}

function throwNotLoaded(collectionId: bigint): never {
  throw collectionNotLoaded(collectionId);
}

type Res = QuerycoordApi["LoadBalance"][1];

/**
 * Plans the moves, hands them to the checkers (`core.moves`), and answers with them: at once, or with
 * `wait` once each is done or given up (by `deadline`, the rest answer "planned").
 */
export function loadBalance(core: QuerycoordCore, req: ManualBalanceRequest, wait: boolean, deadline: number): Promise<Res> {
  const groupOfReplica = (r: Replica) => r.resourceGroup ?? "__default_resource_group";
  const moves = planManualBalance(
    {
      collections: core.meta.allCollections(),
      replicas: core.meta.allReplicas(),
      targets: new Map(core.meta.allCollections().map((c) => [c.collectionId, core.targets.get(c.collectionId)])),
      dist: core.snapshot,
      pending: core.scheduler.pendingLoads(),
      moves: core.moves,
      groupOf: (n) => core.rgs.groupOf(n),
      groupOfReplica,
    },
    req,
  );
  const now = Date.now();
  const out: ManualMove[] = moves.map((m) => ({
    collectionId: m.collectionId,
    collectionName: core.meta.collection(m.collectionId)?.name ?? `${m.collectionId}`,
    replicaId: m.replicaId,
    segmentId: m.segmentId,
    from: m.from,
    to: m.to,
    rows: m.rows,
    state: "planned",
  }));
  const settled: Promise<void>[] = [];
  moves.forEach((m, i) => {
    const key = moveKey(m.replicaId, m.segmentId);
    core.moves.set(key, { ...m, at: now });
    core.log.info({ collection: m.collectionId, replica: m.replicaId, segment: m.segmentId, rows: m.rows, from: m.from, to: m.to }, "LoadBalance: moving a segment");
    if (!wait) return;
    settled.push(
      new Promise<void>((resolve) => {
        let list = core.moveWaiters.get(key);
        if (!list) core.moveWaiters.set(key, (list = []));
        list.push((why) => {
          out[i] = { ...out[i]!, state: why === "" ? "moved" : "failed", ...(why === "" ? {} : { reason: why }) };
          resolve();
        });
      }),
    );
  });
  core.kick();
  if (!wait || settled.length === 0) return Promise.resolve({ moves: out });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now() - 500))));
  return Promise.race([Promise.all(settled).then(() => undefined), timeout]).then(() => {
    clearTimeout(timer);
    return { moves: out.map((m) => ({ ...m })) };
  });
}

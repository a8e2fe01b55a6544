/**
 * The peers of the querycoord-sim bench, each kind in processes of its own, driven by the bench over
 * IPC (`{ id, cmd, ... }` in, `{ id, ok, ... }` out):
 *
 * - `catalog`: rootcoord and datacoord as far as querycoord asks them (DescribeCollection, AllocId,
 *   GetRecoveryInfo in pages, GetIndexInfos) for the made-up catalog of `querycoord_sim_catalog.ts`.
 * - `nodes`: simulated querynodes, light actors at their real addresses that obey WatchDmChannels,
 *   UnsubDmChannel, LoadSegments, ReleaseSegments, ReleaseCollection and (their delegators)
 *   SyncDistribution at once, and publish their heartbeat and distribution on the real feed the way a
 *   querynode does (`DistEncoder`: whole, or a base and deltas for a large node), every heartbeat
 *   interval and soon after a change. `kill` stops nodes at once (their addresses stop answering, their
 *   heartbeats stop), `start` adds nodes.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Distribution } from "../actors/delegator/distribution.ts";
import { createClusterEnv, type ClusterEnv } from "../actors/env.ts";
import { DistEncoder } from "../actors/querynode/dist_publisher.ts";
import { asNodeId, type CollectionId, type ReplicaId } from "../protocol/ids.ts";
import type { LoadSegmentsReq, QueryNodeDist, SealedEntry, ViewDelta, WatchChannelReq } from "../protocol/messages/querynode.ts";
import { ErrorCode, VbError } from "../protocol/errors.ts";
import { Actor, type Message } from "../runtime/actor.ts";
import { Feed } from "../runtime/feed.ts";
import { ActorHost } from "../runtime/host.ts";
import { FsObjectStore } from "../runtime/object_store_fs.ts";
import { connectNats } from "../runtime/transport.ts";
import { catalogOf, collectionIndex, segmentIndex, simCollection, simSegment, vchannelsOf, type Catalog } from "./querycoord_sim_catalog.ts";

interface Command {
  id: number;
  cmd: string;
  [k: string]: unknown;
}

type DistSegment = QueryNodeDist["segments"][number];
type DistDelegator = QueryNodeDist["delegators"][number];

/** rootcoord's answers for the catalog */
class CatalogRootcoord extends Actor {
  private nextId = 1_000_000n;
  constructor(private readonly cat: Catalog) {
    super();
  }
  receive(msg: Message): unknown {
    const b = msg.body as Record<string, unknown>;
    switch (msg.type) {
      case "rootcoord.DescribeCollection":
        return simCollection(this.cat, collectionIndex(BigInt(b.collectionId as bigint)));
      case "rootcoord.AllocId": {
        const count = Number(b.count ?? 1);
        const start = this.nextId;
        this.nextId += BigInt(count);
        return { start, count };
      }
    }
    throw VbError.invalid(`the sim's rootcoord does not answer ${msg.type}`);
  }
}

/**
 * datacoord's answers for the catalog: recovery info page by page (the catalog never changes: one
 * revision of its segments, and "unchanged" to an ask that names it), no indexes
 */
const CATALOG_REVISION = "sim.1";
class CatalogDatacoord extends Actor {
  constructor(private readonly cat: Catalog) {
    super();
  }
  receive(msg: Message): unknown {
    const b = msg.body as Record<string, unknown>;
    switch (msg.type) {
      case "datacoord.GetRecoveryInfo": {
        const c = collectionIndex(BigInt(b.collectionId as bigint));
        const channels = vchannelsOf(this.cat, c).map((v) => ({ vchannel: v.name, pchannel: v.pchannel, seekPosition: 0n, checkpointTs: 0n }));
        if (b.unlessRevision === CATALOG_REVISION && b.afterSegmentId === undefined) {
          return { collectionId: BigInt(b.collectionId as bigint), channels, segments: [], revision: CATALOG_REVISION, unchanged: true };
        }
        const total = this.cat.perCollection[c] ?? 0;
        const from = b.afterSegmentId === undefined ? 0 : segmentIndex(c, BigInt(b.afterSegmentId as bigint)) + 1;
        const limit = Math.min(Number(b.limit ?? total), 4_096);
        const to = Math.min(total, from + limit);
        const segments = [];
        for (let i = from; i < to; i++) segments.push(simSegment(this.cat, c, i));
        return {
          collectionId: BigInt(b.collectionId as bigint),
          channels,
          segments,
          revision: CATALOG_REVISION,
          ...(to < total ? { more: true } : {}),
        };
      }
      case "datacoord.GetIndexInfos":
        return { indexes: [], builds: [] };
    }
    throw VbError.invalid(`the sim's datacoord does not answer ${msg.type}`);
  }
}

interface NodeState {
  nodeId: string;
  segments: Map<bigint, DistSegment>;
  /** the replica each segment was loaded for */
  replicaOf: Map<bigint, bigint>;
  /** the segments as a list, while unchanged */
  list: DistSegment[] | undefined;
  delegators: Map<string, DistDelegator>;
  rows: number;
  memoryBytes: number;
  /** the segments changed since the last publish */
  segmentsChanged: boolean;
  /** something changed: publish soon */
  dirty: boolean;
  nextBeatAt: number;
  inFlight: boolean;
  encoder: DistEncoder;
  alive: boolean;
}

/** LoadSegments requests this process's nodes were sent, and the segments they asked for */
const loads = { requests: 0, segments: 0 };

class SimDelegator extends Actor {
  /** its sealed view, versioned and named as a delegator's is (a delta applies only to the view it names) */
  private readonly dist = new Distribution();
  constructor(
    private readonly node: NodeState,
    private readonly view: DistDelegator,
  ) {
    super();
  }
  receive(msg: Message): unknown {
    if (msg.type === "delegator.SyncDistribution") {
      const b = msg.body as { targetVersion: number; sealed?: SealedEntry[]; delta?: ViewDelta };
      let sealed = b.sealed ?? [];
      if (b.delta) {
        const made = this.dist.applyDelta(b.delta);
        if ("refused" in made) throw new VbError(ErrorCode.ParameterInvalid, `SyncDistribution: cannot apply the delta: ${made.refused}`, { retriable: true });
        sealed = made.sealed;
      }
      this.dist.publish(b.targetVersion, sealed);
      this.view.targetVersion = b.targetVersion;
      this.view.sealedSegmentIds = sealed.map((e) => e.segmentId);
      this.node.dirty = true;
      return { view: this.dist.viewName };
    }
    return null;
  }
}

class SimQuerynode extends Actor {
  constructor(
    private readonly env: ClusterEnv,
    private readonly host: ActorHost,
    private readonly node: NodeState,
  ) {
    super();
  }

  receive(msg: Message): unknown {
    const n = this.node;
    switch (msg.type) {
      case "querynode.WatchDmChannels": {
        const req = msg.body as WatchChannelReq;
        const address = this.env.subjects.delegator(req.collectionId as CollectionId, req.vchannel, req.replicaId as ReplicaId, asNodeId(n.nodeId));
        if (n.delegators.has(address)) return null;
        const view: DistDelegator = {
          collectionId: req.collectionId,
          vchannel: req.vchannel,
          replicaId: req.replicaId,
          address,
          serviceable: true,
          targetVersion: 0,
          tSafe: 0n,
          sealedSegmentIds: [],
        };
        n.delegators.set(address, view);
        n.dirty = true;
        return this.ctx.reenter(this.host.spawn({ address, create: () => new SimDelegator(n, view), kind: "delegator" }).then(() => null));
      }
      case "querynode.UnsubDmChannel": {
        const b = msg.body as { collectionId: bigint; vchannel: string; replicaId: bigint };
        const address = this.env.subjects.delegator(b.collectionId as CollectionId, b.vchannel, b.replicaId as ReplicaId, asNodeId(n.nodeId));
        if (!n.delegators.delete(address)) return null;
        n.dirty = true;
        return this.ctx.reenter(this.host.stopActor(address).then(() => null));
      }
      case "querynode.LoadSegments": {
        const req = msg.body as LoadSegmentsReq;
        loads.requests++;
        loads.segments += req.segments.length;
        for (const s of req.segments) {
          if (n.segments.has(s.segmentId)) continue;
          n.segments.set(s.segmentId, {
            segmentId: s.segmentId,
            collectionId: s.collectionId,
            partitionId: s.partitionId,
            vchannel: s.vchannel,
            rows: s.numRows,
            memoryBytes: s.memorySize,
            indexIds: [],
          });
          n.replicaOf.set(s.segmentId, req.replicaId);
          n.rows += s.numRows;
          n.memoryBytes += s.memorySize;
        }
        n.segmentsChanged = n.dirty = true;
        n.list = undefined;
        return null;
      }
      case "querynode.ReleaseSegments": {
        const b = msg.body as { collectionId: bigint; segmentIds: bigint[] };
        for (const id of b.segmentIds) this.drop(id);
        n.segmentsChanged = n.dirty = true;
        n.list = undefined;
        return null;
      }
      case "querynode.ReleaseCollection": {
        const b = msg.body as { collectionId: bigint };
        for (const s of [...n.segments.values()]) if (s.collectionId === b.collectionId) this.drop(s.segmentId);
        const gone = [...n.delegators].filter(([, d]) => d.collectionId === b.collectionId).map(([a]) => a);
        for (const a of gone) n.delegators.delete(a);
        n.segmentsChanged = n.dirty = true;
        n.list = undefined;
        return this.ctx.reenter(Promise.all(gone.map((a) => this.host.stopActor(a))).then(() => null));
      }
      case "querynode.LoadIndex":
      case "querynode.ReleaseIndex":
        return null;
    }
    throw VbError.invalid(`the sim's querynode does not answer ${msg.type}`);
  }

  private drop(id: bigint): void {
    const s = this.node.segments.get(id);
    if (!s) return;
    this.node.segments.delete(id);
    this.node.replicaOf.delete(id);
    this.node.rows -= s.rows;
    this.node.memoryBytes -= s.memoryBytes;
  }
}

function distOf(n: NodeState): QueryNodeDist {
  const segments = (n.list ??= [...n.segments.values()]);
  return {
    nodeId: n.nodeId,
    at: Date.now(),
    memoryBytes: n.memoryBytes,
    memoryLimitBytes: 256 * 1024 ** 3,
    rows: n.rows,
    segments,
    delegators: [...n.delegators.values()],
    loading: [],
  };
}

async function runNodes(env: ClusterEnv, host: ActorHost): Promise<(c: Command) => Promise<unknown>> {
  const feed = new Feed(env.nc);
  const nodes = new Map<string, NodeState>();
  let heartbeatMs = env.config.heartbeatIntervalMs;
  let published = 0;
  /** bytes of the messages published */
  let publishedBytes = 0;
  let failed = 0;
  /** why publishes failed: each reason and how often */
  const failures = new Map<string, number>();

  const publish = (n: NodeState, now: number) => {
    n.inFlight = true;
    const changed = n.segmentsChanged;
    n.segmentsChanged = false;
    n.dirty = false;
    n.nextBeatAt = now + heartbeatMs;
    const msgs = n.encoder.encode(distOf(n), changed);
    for (const m of msgs) publishedBytes += m.payload.byteLength;
    (async () => {
      for (const m of msgs) await feed.publish(m.subject, m.payload);
    })().then(
      () => {
        published++;
        n.inFlight = false;
      },
      (err: unknown) => {
        failed++;
        const why = err instanceof Error ? err.message : String(err);
        failures.set(why, (failures.get(why) ?? 0) + 1);
        n.inFlight = false;
        n.segmentsChanged = n.segmentsChanged || changed;
      },
    );
  };

  const timer = setInterval(() => {
    const now = Date.now();
    for (const n of nodes.values()) {
      if (!n.alive || n.inFlight) continue;
      if (n.dirty || now >= n.nextBeatAt) publish(n, now);
    }
  }, 20);

  return async (c: Command) => {
    switch (c.cmd) {
      case "start": {
        const ids = c.ids as string[];
        for (const nodeId of ids) {
          const n: NodeState = {
            nodeId,
            segments: new Map(),
            replicaOf: new Map(),
            list: undefined,
            delegators: new Map(),
            rows: 0,
            memoryBytes: 0,
            segmentsChanged: true,
            dirty: true,
            nextBeatAt: 0,
            inFlight: false,
            alive: true,
            encoder: new DistEncoder(env.subjects.distSubject("querynode", asNodeId(nodeId)), (i) => env.subjects.distBaseSubject("querynode", asNodeId(nodeId), i)),
          };
          nodes.set(nodeId, n);
          await host.spawn({ address: env.subjects.querynode(asNodeId(nodeId)), create: () => new SimQuerynode(env, host, n), kind: "querynode" });
          // heartbeats spread over the interval
          n.nextBeatAt = Date.now() + Math.random() * heartbeatMs;
        }
        return { started: ids.length };
      }
      case "kill": {
        const ids = c.ids as string[];
        await Promise.all(
          ids.map(async (nodeId) => {
            const n = nodes.get(nodeId);
            if (!n) return;
            n.alive = false;
            nodes.delete(nodeId);
            await Promise.all([...n.delegators.keys()].map((a) => host.stopActor(a)));
            await host.stopActor(env.subjects.querynode(asNodeId(nodeId)));
          }),
        );
        return { killed: ids.length };
      }
      case "rate":
        heartbeatMs = Number(c.heartbeatMs);
        for (const n of nodes.values()) n.nextBeatAt = Math.min(n.nextBeatAt, Date.now() + Math.random() * heartbeatMs);
        return { heartbeatMs };
      case "stats": {
        // per replica: the collection, copies held; per node: rows, segments, delegators
        const replicas: Record<string, { collectionId: string; copies: number }> = {};
        const perNode: { nodeId: string; rows: number; segments: number; delegators: number }[] = [];
        let delegators = 0;
        for (const n of nodes.values()) {
          for (const s of n.segments.values()) {
            const k = String(n.replicaOf.get(s.segmentId));
            (replicas[k] ??= { collectionId: String(s.collectionId), copies: 0 }).copies++;
          }
          delegators += n.delegators.size;
          perNode.push({ nodeId: n.nodeId, rows: n.rows, segments: n.segments.size, delegators: n.delegators.size });
        }
        return { replicas, delegators, perNode, published, publishedBytes, failed, failures: Object.fromEntries(failures), loadRequests: loads.requests, segmentsAsked: loads.segments };
      }
      case "flood": {
        // the most this process gets the server to store: `inflight` publishers of `bytes`-byte messages
        // to `subjects` subjects under `prefix` of a last-value stream, for `ms`; none of it is a distribution
        const prefix = String(c.prefix);
        const subjects = Number(c.subjects);
        const payload = new Uint8Array(Number(c.bytes)).fill(7);
        const until = Date.now() + Number(c.ms);
        let stored = 0;
        let errors = 0;
        let next = 0;
        await Promise.all(
          Array.from({ length: Number(c.inflight) }, async () => {
            while (Date.now() < until) {
              try {
                await feed.publish(`${prefix}.${next++ % subjects}`, payload);
                stored++;
              } catch {
                errors++;
              }
            }
          }),
        );
        return { stored, errors };
      }
      case "stop":
        clearInterval(timer);
        await host[Symbol.asyncDispose]();
        await env.nc.close();
        setTimeout(() => process.exit(0), 50);
        return {};
    }
    throw new Error(`unknown command ${c.cmd}`);
  };
}

async function main(): Promise<void> {
  const [role, natsUrl, prefix, segments, collections, shards, heartbeatMs] = process.argv.slice(2);
  const nc = await connectNats(natsUrl!);
  // an object store the env asks for; nothing is written to it
  const dir = await mkdtemp(join(tmpdir(), "vbus-qcsim-"));
  const store = new FsObjectStore(dir);
  const env = createClusterEnv(nc, store, { prefix: prefix!, config: { heartbeatIntervalMs: Number(heartbeatMs) } });
  const host = new ActorHost(nc);
  const send = (m: unknown) => process.send!(m);
  let handle: (c: Command) => Promise<unknown>;
  if (role === "catalog") {
    const cat = catalogOf(Number(segments), Number(collections), Number(shards));
    await host.spawn({ address: env.subjects.rootcoord(), create: () => new CatalogRootcoord(cat) });
    await host.spawn({ address: env.subjects.datacoord(), create: () => new CatalogDatacoord(cat) });
    handle = async (c) => {
      if (c.cmd === "stop") {
        await host[Symbol.asyncDispose]();
        await nc.close();
        setTimeout(() => process.exit(0), 50);
        return {};
      }
      throw new Error(`unknown command ${c.cmd}`);
    };
  } else {
    handle = await runNodes(env, host);
  }
  process.on("message", (c: Command) => {
    const work = c.cmd === "stop" ? rm(dir, { recursive: true, force: true }).then(() => handle(c)) : handle(c);
    work.then(
      (r) => send({ id: c.id, ok: true, r }),
      (err: unknown) => send({ id: c.id, ok: false, error: String(err) }),
    );
  });
  process.on("disconnect", () => {
    void rm(dir, { recursive: true, force: true }).finally(() => process.exit(0));
  });
  send({ ready: true });
}

await main();

/**
 * querycoord on the suite's nats-server with the real write path (rootcoord, datacoord, a datanode, the
 * proxy) and real querynodes in the same process host. Nothing is faked: loads read the flushed
 * segments' binlogs, delegators consume the DML channels, and the assertions read the querynodes' own
 * reports on the distribution feed.
 */
import { describe, expect, it } from "vitest";
import { spawnQuerycoord, type QuerycoordParams } from "../../actors/querycoord/index.ts";
import { spawnQuerynode } from "../../actors/querynode/index.ts";
import { decodeQueryNodeDist } from "../../actors/querycoord/dist/dist_feed.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { asNodeId } from "../../protocol/ids.ts";
import type { RecoveryInfo } from "../../protocol/messages/datacoord.ts";
import type { QuerycoordApi } from "../../protocol/messages/querycoord.ts";
import type { QueryNodeDist } from "../../protocol/messages/querynode.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { Feed } from "../../runtime/feed.ts";
import { ask } from "../../runtime/ask.ts";
import { connectTest, waitFor } from "../harness/index.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";

const DIM = 8;
const HEARTBEAT_AVAILABLE_MS = 2_500;
const QC_PARAMS: Partial<QuerycoordParams> = { reconcileIntervalMs: 100, targetRefreshMs: 2_000, retryBaseMs: 200, retryMaxMs: 1_000, startupGraceMs: 500 };

const schema = (name: string): CollectionSchema => ({
  name,
  fields: [
    { name: "id", type: "Int64", isPrimaryKey: true },
    { name: "vec", type: "FloatVector", dim: DIM },
  ],
});

function rows(from: number, n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    id: BigInt(from + i),
    vec: Float32Array.from({ length: DIM }, (_, j) => Math.sin(from + i + j)),
  }));
}

interface Harness {
  tc: TestCluster;
  qc<V extends keyof QuerycoordApi>(verb: V, body: QuerycoordApi[V][0], timeoutMs?: number): Promise<QuerycoordApi[V][1]>;
  startQuerynode(nodeId: string): Promise<void>;
  stopQuerynode(nodeId: string): Promise<void>;
  startQuerycoord(): Promise<void>;
  stopQuerycoord(): Promise<void>;
  /** the alive querynodes' own reports on the feed */
  dists(): Promise<Map<string, QueryNodeDist>>;
  recovery(collectionId: bigint): Promise<RecoveryInfo>;
  count(collectionName: string): Promise<number>;
}

async function start(querynodes: string[]): Promise<Harness & AsyncDisposable> {
  const tc = await startTestCluster({
    roles: { rootcoord: true, datacoord: true, datanodes: ["dn1"], proxy: true },
    cluster: { heartbeatIntervalMs: 200, heartbeatAvailableMs: HEARTBEAT_AVAILABLE_MS, dmlChannelNum: 2 },
  });
  const env = tc.sa.env;
  const host = tc.sa.host;
  const stopped = new Set<string>();
  const h: Harness & AsyncDisposable = {
    tc,
    qc: (verb, body, timeoutMs = 30_000) => host.ask(env.subjects.querycoord(), `querycoord.${verb}`, body, { timeoutMs }),
    async startQuerynode(nodeId) {
      stopped.delete(nodeId);
      await spawnQuerynode(host, env, { nodeId, memoryLimitBytes: 1 << 30 });
    },
    async stopQuerynode(nodeId) {
      stopped.add(nodeId);
      await host.stopActor(env.subjects.querynode(asNodeId(nodeId)));
    },
    async startQuerycoord() {
      await spawnQuerycoord(host, env, QC_PARAMS);
    },
    async stopQuerycoord() {
      await host.stopActor(env.subjects.querycoord());
    },
    async dists() {
      const snap = await new Feed(env.nc).snapshot(env.subjects.distStream(), env.subjects.distRoleSubjects("querynode"));
      const out = new Map<string, QueryNodeDist>();
      for (const e of snap.values()) {
        const d = decodeQueryNodeDist(e.data);
        if (!stopped.has(d.nodeId)) out.set(d.nodeId, d);
      }
      return out;
    },
    recovery: (collectionId) => host.ask<RecoveryInfo>(env.subjects.datacoord(), "datacoord.GetRecoveryInfo", { collectionId }),
    async count(collectionName) {
      const r = await tc.client.query({ collectionName, outputFields: ["count(*)"], consistencyLevel: "Strong" });
      return r.rows[0]!["count(*)"] as number;
    },
    [Symbol.asyncDispose]: () => tc.stop(),
  };
  await h.startQuerycoord();
  for (const n of querynodes) await h.startQuerynode(n);
  await waitFor(async () => (await h.qc("GetStatus", {})).nodes.filter((n) => n.alive).length === querynodes.length, {
    what: "querycoord to see the querynodes",
  });
  return h;
}

async function refusal(p: Promise<unknown>): Promise<VbError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected a refusal");
}

/** Loads and polls the progress until Loaded; returns every progress seen. */
async function loadAndWatch(h: Harness, collectionId: bigint, replicaNumber: number): Promise<number[]> {
  await h.qc("LoadCollection", { collectionId, replicaNumber });
  const seen: number[] = [];
  await waitFor(
    async () => {
      const p = await h.qc("GetLoadingProgress", { collectionId });
      seen.push(p.progress);
      return p.state === "Loaded";
    },
    { timeoutMs: 30_000, intervalMs: 10, what: `collection ${collectionId} to be Loaded` },
  );
  return seen;
}

/** Per replica: the serviceable delegators per vchannel and the copies per segment, on the replica's nodes. */
async function layout(h: Harness, collectionId: bigint) {
  const dists = await h.dists();
  const { replicas } = await h.qc("GetReplicas", { collectionId });
  return replicas.map((r) => {
    const delegators = new Map<string, string[]>();
    const copies = new Map<bigint, string[]>();
    for (const n of r.nodes) {
      const d = dists.get(n);
      if (!d) continue;
      for (const g of d.delegators) {
        if (g.collectionId !== collectionId || g.replicaId !== r.replicaId || !g.serviceable) continue;
        delegators.set(g.vchannel, [...(delegators.get(g.vchannel) ?? []), n]);
      }
      for (const s of d.segments) if (s.collectionId === collectionId) copies.set(s.segmentId, [...(copies.get(s.segmentId) ?? []), n]);
    }
    return { replicaId: r.replicaId, nodes: r.nodes, delegators, copies };
  });
}

function flushedL1(info: RecoveryInfo): bigint[] {
  return info.segments.filter((s) => s.level === "L1" && s.state === "Flushed").map((s) => s.segmentId).sort((a, b) => (a < b ? -1 : 1));
}

describe("querycoord", () => {
  it("loads 2 replicas on 2 querynodes, hands flushed segments off to the delegators, and releases", async () => {
    await using h = await start(["qn1", "qn2"]);
    const info = await h.tc.client.createCollection({ schema: schema("books"), shardsNum: 2 });
    const id = info.collectionId;
    const vchannels = info.vchannels.map((v) => v.name).sort();
    await h.tc.client.insert({ collectionName: "books", rows: rows(0, 2_000) });
    await h.tc.client.flush({ collectionNames: ["books"] });
    const before = flushedL1(await h.recovery(id));
    expect(before.length).toBeGreaterThanOrEqual(2);

    expect(await h.qc("GetLoadState", { collectionId: id })).toEqual({ state: "NotLoad", progress: 0 });
    expect((await refusal(h.qc("GetShardLeaders", { collectionId: id }))).code).toBe(ErrorCode.CollectionNotLoaded);
    const three = await refusal(h.qc("LoadCollection", { collectionId: id, replicaNumber: 3 }));
    expect(three.code).toBe(ErrorCode.ResourceInsufficient);
    expect(three.message).toMatch(/2 querynodes are alive/);

    const seen = await loadAndWatch(h, id, 2);
    expect(seen.at(-1)).toBe(100);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);

    // both replicas: one serviceable delegator per vchannel, every flushed segment exactly once
    const reps = await layout(h, id);
    expect(reps.length).toBe(2);
    expect(reps.flatMap((r) => r.nodes).sort()).toEqual(["qn1", "qn2"]);
    for (const r of reps) {
      expect([...r.delegators.keys()].sort()).toEqual(vchannels);
      for (const nodes of r.delegators.values()) expect(nodes.length).toBe(1);
      expect([...r.copies.keys()].sort((a, b) => (a < b ? -1 : 1))).toEqual(before);
      for (const nodes of r.copies.values()) expect(nodes.length).toBe(1);
    }
    const leaders = await h.qc("GetShardLeaders", { collectionId: id });
    expect(leaders.shards.map((s) => s.vchannel)).toEqual(vchannels);
    for (const s of leaders.shards) expect(s.leaders.map((l) => l.replicaId).sort()).toEqual(reps.map((r) => r.replicaId).sort());
    expect(await h.count("books")).toBe(2_000);

    // handoff: new flushed segments are loaded in both replicas, the target is promoted, every
    // delegator serves the new version holding them, and no row is missing or counted twice
    const versions = new Map([...(await h.dists()).values()].flatMap((d) => d.delegators.map((g) => [g.address, g.targetVersion] as const)));
    await h.tc.client.insert({ collectionName: "books", rows: rows(2_000, 500) });
    await h.tc.client.flush({ collectionNames: ["books"] });
    const after = flushedL1(await h.recovery(id));
    const added = after.filter((s) => !before.includes(s));
    expect(added.length).toBeGreaterThanOrEqual(1);
    const byChannel = new Map((await h.recovery(id)).segments.map((s) => [s.segmentId, s.vchannel]));
    await waitFor(
      async () => {
        const ds = [...(await h.dists()).values()].flatMap((d) => d.delegators.filter((g) => g.collectionId === id));
        return (
          ds.length === 4 &&
          ds.every(
            (g) =>
              g.targetVersion > versions.get(g.address)! &&
              after.filter((s) => byChannel.get(s) === g.vchannel).every((s) => g.sealedSegmentIds.includes(s)),
          )
        );
      },
      { timeoutMs: 30_000, what: "every delegator to serve the new target" },
    );
    const segInfo = await h.qc("GetSegmentInfo", { collectionId: id });
    expect(segInfo.segments.map((s) => s.segmentId)).toEqual(after);
    for (const s of segInfo.segments) expect(s.nodeIds).toEqual(["qn1", "qn2"]);
    expect(await h.count("books")).toBe(2_500);

    // release: querycoord forgets it at once, the querynodes drop everything
    await h.qc("ReleaseCollection", { collectionId: id });
    expect(await h.qc("GetLoadState", { collectionId: id })).toEqual({ state: "NotLoad", progress: 0 });
    await waitFor(
      async () =>
        [...(await h.dists()).values()].every((d) => !d.segments.some((s) => s.collectionId === id) && !d.delegators.some((g) => g.collectionId === id)),
      { what: "the querynodes to drop the collection" },
    );
    expect((await refusal(h.tc.client.query({ collectionName: "books", outputFields: ["count(*)"] }))).code).toBe(ErrorCode.CollectionNotLoaded);
  });

  it("moves a stopped querynode's work to its replica's other nodes, and says what a replica without nodes waits on", async () => {
    await using h = await start(["qn1", "qn2", "qn3"]);
    const info = await h.tc.client.createCollection({ schema: schema("moves"), shardsNum: 2 });
    const id = info.collectionId;
    await h.tc.client.insert({ collectionName: "moves", rows: rows(0, 1_500) });
    await h.tc.client.flush({ collectionNames: ["moves"] });
    const segs = flushedL1(await h.recovery(id));
    await loadAndWatch(h, id, 1);
    const [r0] = await layout(h, id);
    expect(r0!.nodes).toEqual(["qn1", "qn2", "qn3"]);

    // stop the node holding the first channel's delegator
    const victim = r0!.delegators.get(info.vchannels[0]!.name)![0]!;
    await h.stopQuerynode(victim);
    await waitFor(
      async () => {
        const [r] = await layout(h, id);
        return (
          !r!.nodes.includes(victim) &&
          info.vchannels.every((v) => r!.delegators.get(v.name)?.length === 1) &&
          segs.every((s) => r!.copies.get(s)?.length === 1)
        );
      },
      { timeoutMs: 30_000, what: `the work of ${victim} to move` },
    );
    expect(await h.count("moves")).toBe(1_500);

    // a second collection with 2 replicas on the 2 nodes left; then one more node goes
    const other = await h.tc.client.createCollection({ schema: schema("waits") });
    await h.tc.client.insert({ collectionName: "waits", rows: rows(0, 300) });
    await h.tc.client.flush({ collectionNames: ["waits"] });
    await loadAndWatch(h, other.collectionId, 2);
    const alive = ["qn1", "qn2", "qn3"].filter((n) => n !== victim);
    await h.stopQuerynode(alive[1]!);
    const status = await waitFor(
      async () => {
        const st = await h.qc("GetStatus", {});
        const c = st.collections.find((x) => x.collectionId === other.collectionId)!;
        return c.blockers.some((b) => b.kind === "replica") ? c : undefined;
      },
      { timeoutMs: 15_000, what: "a blocker for the replica without nodes" },
    );
    const empty = status.replicas.find((r) => r.nodes.length === 0)!;
    expect(status.blockers).toContainEqual({ kind: "replica", subject: `${empty.replicaId}`, reason: "needs a node, 2 replicas asked for but 1 querynode alive" });
    expect(status.blockers).toContainEqual({ kind: "channel", subject: other.vchannels[0]!.name, reason: `no alive querynode in replica ${empty.replicaId}` });

    // a new querynode joins the replica that has none and gets its channel and segments
    await h.startQuerynode("qn4");
    await waitFor(
      async () => {
        const reps = await layout(h, other.collectionId);
        const want = flushedL1(await h.recovery(other.collectionId)).length;
        return reps.every((r) => r.nodes.length === 1 && r.delegators.size === 1 && r.copies.size === want);
      },
      { timeoutMs: 30_000, what: "qn4 to take the empty replica's work" },
    );
    expect((await h.qc("GetStatus", {})).collections.find((x) => x.collectionId === other.collectionId)!.blockers).toEqual([]);
    expect(await h.count("waits")).toBe(300);
  });

  it("loads an empty collection, answers a waiting load when Loaded, and rebuilds itself after a restart", async () => {
    await using h = await start(["qn1"]);
    const info = await h.tc.client.createCollection({ schema: schema("empty"), shardsNum: 2 });
    const id = info.collectionId;
    await h.qc("LoadCollection", { collectionId: id, wait: true });
    expect(await h.qc("GetLoadState", { collectionId: id })).toEqual({ state: "Loaded", progress: 100 });
    expect((await h.qc("GetShardLeaders", { collectionId: id })).shards.map((s) => s.leaders.length)).toEqual([1, 1]);
    expect(await h.count("empty")).toBe(0);
    expect((await refusal(h.qc("LoadCollection", { collectionId: id, replicaNumber: 2 }))).code).toBe(ErrorCode.ParameterInvalid);

    // its self-messages are private: a NATS client cannot release the collection with a forged event
    // nor make its querynode look gone with a forged distribution
    await using nc = await connectTest();
    const forged: [string, unknown][] = [
      ["querycoord.internal.Event", { ev: { kind: "collection.dropped", collectionId: id } }],
      ["querycoord.internal.Dist", { dist: { nodeId: "qn1", segments: [], delegators: [] }, seenAt: 0 }],
      ["querycoord.internal.Tick", null],
    ];
    for (const [type, body] of forged) {
      expect((await refusal(ask(nc, h.tc.sa.env.subjects.querycoord(), type, body, { timeoutMs: 5_000 }))).code, type).toBe(ErrorCode.ParameterInvalid);
    }
    expect(await h.qc("GetLoadState", { collectionId: id })).toEqual({ state: "Loaded", progress: 100 });

    // restart: the load, its replica and the delegators' view survive; nothing is watched again
    const delegatorsBefore = [...(await h.dists()).values()].flatMap((d) => d.delegators.map((g) => `${g.address}@${d.nodeId}`)).sort();
    const { replicas } = await h.qc("GetReplicas", { collectionId: id });
    await h.stopQuerycoord();
    await h.startQuerycoord();
    expect(await h.qc("GetLoadState", { collectionId: id })).toEqual({ state: "Loaded", progress: 100 });
    expect((await h.qc("GetReplicas", { collectionId: id })).replicas.map((r) => [r.replicaId, r.nodes])).toEqual(
      replicas.map((r) => [r.replicaId, r.nodes]),
    );
    expect([...(await h.dists()).values()].flatMap((d) => d.delegators.map((g) => `${g.address}@${d.nodeId}`)).sort()).toEqual(delegatorsBefore);

    // and the handoff goes on after the restart
    await h.tc.client.insert({ collectionName: "empty", rows: rows(0, 400) });
    await h.tc.client.flush({ collectionNames: ["empty"] });
    const segs = flushedL1(await h.recovery(id));
    await waitFor(
      async () => {
        const ds = [...(await h.dists()).values()].flatMap((d) => d.delegators);
        return ds.length === 2 && segs.every((s) => ds.some((g) => g.sealedSegmentIds.includes(s)));
      },
      { timeoutMs: 30_000, what: "the delegators to serve the flushed segments" },
    );
    expect(await h.count("empty")).toBe(400);

    // dropping a loaded collection releases it
    await h.tc.client.dropCollection({ collectionName: "empty" });
    await waitFor(
      async () =>
        (await h.qc("GetLoadState", { collectionId: id })).state === "NotLoad" &&
        [...(await h.dists()).values()].every((d) => d.segments.length === 0 && d.delegators.length === 0),
      { what: "the dropped collection to be released" },
    );
  });

  it("loads partitions, widens the load and releases a partition, delegators keeping only the loaded partitions' rows", async () => {
    await using h = await start(["qn1", "qn2"]);
    await h.tc.client.createCollection({ schema: schema("parts") });
    const p1 = await h.tc.client.createPartition({ collectionName: "parts", partitionName: "p1" });
    const info = await h.tc.client.describeCollection({ collectionName: "parts" });
    const id = info.collectionId;
    const dflt = info.partitions.find((p) => p.name === "_default")!.partitionId;
    await h.tc.client.insert({ collectionName: "parts", rows: rows(0, 300) });
    await h.tc.client.insert({ collectionName: "parts", partitionName: "p1", rows: rows(10_000, 200) });
    await h.tc.client.flush({ collectionNames: ["parts"] });

    await h.qc("LoadPartitions", { collectionId: id, partitionIds: [p1.partitionId], wait: true });
    expect(await h.count("parts")).toBe(200);
    // rows written after the load to a partition that is not loaded stay out of reads
    await h.tc.client.insert({ collectionName: "parts", rows: rows(20_000, 50) });
    expect(await h.count("parts")).toBe(200);
    expect((await h.qc("GetLoadState", { collectionId: id, partitionIds: [p1.partitionId] })).state).toBe("Loaded");
    expect((await h.qc("GetLoadState", { collectionId: id, partitionIds: [dflt] })).state).toBe("NotLoad");

    // widening: the delegators are watched again with both partitions, the default partition's segments load
    await h.qc("LoadPartitions", { collectionId: id, partitionIds: [dflt], wait: true });
    expect((await h.qc("GetLoadState", { collectionId: id, partitionIds: [dflt, p1.partitionId] })).state).toBe("Loaded");
    await waitFor(async () => (await h.count("parts").catch(() => -1)) === 550, { timeoutMs: 30_000, what: "every row of both partitions" });

    // releasing p1: its segments leave the target and the querynodes, its rows leave reads
    await h.qc("ReleasePartitions", { collectionId: id, partitionIds: [p1.partitionId] });
    expect((await h.qc("GetLoadState", { collectionId: id, partitionIds: [p1.partitionId] })).state).toBe("NotLoad");
    const p1Segments = new Set((await h.recovery(id)).segments.filter((s) => s.partitionId === p1.partitionId).map((s) => s.segmentId));
    expect(p1Segments.size).toBeGreaterThan(0);
    await waitFor(
      async () =>
        [...(await h.dists()).values()].every((d) => !d.segments.some((s) => p1Segments.has(s.segmentId))) &&
        (await h.count("parts").catch(() => -1)) === 350,
      { timeoutMs: 30_000, what: "p1 to leave the querynodes and the reads" },
    );
  });
});

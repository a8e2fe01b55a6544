/**
 * The query plane's data side on a real nats-server and a filesystem object store: rootcoord, datacoord,
 * a datanode and the proxy write; querynodes host delegators and sealed segments. The test plays
 * querycoord's part (WatchDmChannels, LoadSegments from datacoord's recovery info, SyncDistribution) and
 * the proxy's read part (Strong guarantees from the channel's last position, merging shard results), and
 * checks exact results against brute force computed here.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientOf, type VectorbusClient } from "../../actors/control/client.ts";
import { spawnDatacoord } from "../../actors/datacoord/index.ts";
import { spawnDatanode } from "../../actors/datanode/index.ts";
import { createClusterEnv, type ClusterEnv } from "../../actors/env.ts";
import { compileFilter } from "../../actors/expr/index.ts";
import { spawnProxy } from "../../actors/proxy/index.ts";
import { spawnQuerynode } from "../../actors/querynode/index.ts";
import { spawnRootcoord } from "../../actors/rootcoord/index.ts";
import { mergeTopK } from "../../actors/search/reduce.ts";
import { decode } from "../../protocol/codec.ts";
import { decodeQueryNodeDist } from "../../actors/querycoord/dist/dist_feed.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { asCollectionId, asNodeId, asReplicaId } from "../../protocol/ids.ts";
import type { RecoveryInfo } from "../../protocol/messages/datacoord.ts";
import type {
  DelegatorApi,
  Guarantee,
  QueryNodeDist,
  QueryResult,
  QuerySpec,
  QuerynodeApi,
  SealedEntry,
  SearchResult,
  SearchSpec,
} from "../../protocol/messages/querynode.ts";
import type { CollectionInfo, SegmentInfo } from "../../protocol/meta.ts";
import { ask } from "../../runtime/ask.ts";
import { Feed } from "../../runtime/feed.ts";
import { ActorHost } from "../../runtime/host.ts";
import { FsObjectStore } from "../../runtime/object_store_fs.ts";
import { connectTest, uniquePrefix, waitFor } from "../harness/index.ts";

const DIM = 8;
const ASK = { timeoutMs: 30_000 };

interface Cluster {
  env: ClusterEnv;
  host: ActorHost;
  client: VectorbusClient;
  stop(): Promise<void>;
}

async function startCluster(querynodes: { nodeId: string; memoryLimitBytes?: number }[]): Promise<Cluster> {
  const nc = await connectTest();
  const dir = await mkdtemp(join(tmpdir(), "vb-qn-"));
  const prefix = uniquePrefix("qn");
  const env = createClusterEnv(nc, new FsObjectStore(dir), { prefix, config: { heartbeatIntervalMs: 200, dmlChannelNum: 2 } });
  const host = new ActorHost(nc, { nodeId: "test" });
  await spawnRootcoord(host, env);
  await spawnDatacoord(host, env);
  await spawnDatanode(host, env, { nodeId: "dn1" });
  for (const q of querynodes) await spawnQuerynode(host, env, q);
  await spawnProxy(host, env);
  return {
    env,
    host,
    client: clientOf(nc, { prefix }),
    async stop() {
      await host.stop();
      await nc.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// ---- the data the test writes, and what it expects ----

let seed = 12345;
function rand(): number {
  // xorshift: reproducible vectors
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return ((seed >>> 0) % 100_000) / 100_000 - 0.5;
}

function vector(): Float32Array {
  return Float32Array.from({ length: DIM }, () => rand());
}

class Model {
  /** pk → the live row */
  readonly rows = new Map<bigint, { vec: Float32Array; tag: number }>();

  put(pk: bigint, vec: Float32Array, tag: number): void {
    this.rows.set(pk, { vec, tag });
  }

  /** Exact top-k by L2 (float64 sums rounded once to float32, ties by pk), optionally filtered. */
  topk(q: Float32Array, k: number, pass: (tag: number) => boolean = () => true): { ids: bigint[]; scores: number[] } {
    const all: { pk: bigint; s: number }[] = [];
    for (const [pk, r] of this.rows) {
      if (!pass(r.tag)) continue;
      let s = 0;
      for (let d = 0; d < DIM; d++) {
        const t = q[d]! - r.vec[d]!;
        s += t * t;
      }
      all.push({ pk, s: Math.fround(s) });
    }
    all.sort((a, b) => a.s - b.s || (a.pk < b.pk ? -1 : 1));
    const top = all.slice(0, k);
    return { ids: top.map((x) => x.pk), scores: top.map((x) => x.s) };
  }
}

interface Shard {
  vchannel: string;
  pchannel: number;
  address: string;
}

class QueryPlane {
  shards: Shard[] = [];
  info!: CollectionInfo;
  readonly model = new Model();
  private nextPk = 1n;

  constructor(
    readonly c: Cluster,
    readonly name: string,
  ) {}

  get env(): ClusterEnv {
    return this.c.env;
  }

  async create(): Promise<void> {
    this.info = await this.c.client.createCollection({
      schema: {
        name: this.name,
        fields: [
          { name: "id", type: "Int64", isPrimaryKey: true },
          { name: "vec", type: "FloatVector", dim: DIM },
          { name: "tag", type: "Int32" },
        ],
      },
      shardsNum: 2,
    });
  }

  field(name: string): number {
    return this.info.schema.fields.find((f) => f.name === name)!.fieldId!;
  }

  qn<V extends keyof QuerynodeApi & string>(nodeId: string, verb: V, body: QuerynodeApi[V][0]): Promise<QuerynodeApi[V][1]> {
    return ask(this.env.nc, this.env.subjects.querynode(asNodeId(nodeId)), `querynode.${verb}`, body, ASK);
  }

  dlg<V extends keyof DelegatorApi & string>(shard: Shard, verb: V, body: DelegatorApi[V][0]): Promise<DelegatorApi[V][1]> {
    return ask(this.env.nc, shard.address, `delegator.${verb}`, body, ASK);
  }

  recovery(): Promise<RecoveryInfo> {
    return ask(this.env.nc, this.env.subjects.datacoord(), "datacoord.GetRecoveryInfo", { collectionId: this.info.collectionId }, ASK);
  }

  /** querycoord's ChannelChecker: one delegator per vchannel on `nodeId`, from the recovery info. */
  async watch(nodeId: string, opts: { syncedReadsOnly?: boolean } = {}): Promise<void> {
    const rec = await this.recovery();
    for (const ch of rec.channels) {
      await this.qn(nodeId, "WatchDmChannels", {
        ...opts,
        collectionId: this.info.collectionId,
        vchannel: ch.vchannel,
        pchannel: ch.pchannel,
        replicaId: 1n,
        schema: this.info.schema,
        seekPosition: ch.seekPosition,
        partitionIds: [],
        l0Segments: rec.segments.filter((s) => s.level === "L0" && s.vchannel === ch.vchannel),
      });
      this.shards.push({
        vchannel: ch.vchannel,
        pchannel: ch.pchannel,
        address: this.env.subjects.delegator(asCollectionId(this.info.collectionId), ch.vchannel, asReplicaId(1n), asNodeId(nodeId)),
      });
    }
    for (const s of this.shards) await waitFor(async () => (await this.dlg(s, "GetStatus", {})).serviceable, { what: "serviceable" });
  }

  async insert(n: number, tag = (i: number) => i % 10): Promise<bigint[]> {
    const rows = [];
    const pks: bigint[] = [];
    for (let i = 0; i < n; i++) {
      const pk = this.nextPk++;
      const vec = vector();
      const t = tag(i);
      rows.push({ id: pk, vec, tag: t });
      pks.push(pk);
    }
    await this.c.client.insert({ collectionName: this.name, rows });
    for (const r of rows) this.model.put(r.id, r.vec, r.tag);
    return pks;
  }

  async upsert(pk: bigint, vec: Float32Array, tag: number): Promise<void> {
    await this.c.client.upsert({ collectionName: this.name, rows: [{ id: pk, vec, tag }] });
    this.model.put(pk, vec, tag);
  }

  async delete(pks: bigint[]): Promise<void> {
    await this.c.client.delete({ collectionName: this.name, ids: pks });
    for (const pk of pks) this.model.rows.delete(pk);
  }

  async flush(): Promise<void> {
    await this.c.client.flush({ collectionNames: [this.name] });
  }

  /** What the proxy does for Strong: the vchannel's last position as of now. */
  async strong(shard: Shard): Promise<Guarantee> {
    const position = await this.env.dml.lastPosition(this.env.subjects.dmlStream(shard.pchannel), this.env.subjects.dmlSubject(shard.pchannel, shard.vchannel));
    return { consistency: "Strong", position, waitMs: 15_000 };
  }

  searchSpec(queries: Float32Array, topk: number, extra: Partial<SearchSpec> = {}): SearchSpec {
    return {
      collectionId: this.info.collectionId,
      annsFieldId: this.field("vec"),
      metric: "L2",
      queries,
      nq: queries.length / DIM,
      topk,
      partitionIds: [],
      outputFieldIds: [this.field("tag")],
      ...extra,
    };
  }

  /** A Strong search over every shard, merged as the proxy would. */
  async search(queries: Float32Array, topk: number, extra: Partial<SearchSpec> = {}): Promise<SearchResult> {
    const spec = this.searchSpec(queries, topk, extra);
    const parts = await Promise.all(this.shards.map(async (s) => this.dlg(s, "Search", { spec, guarantee: await this.strong(s) })));
    const hits = Array.from({ length: spec.nq }, (_, q) => {
      const m = mergeTopK(
        parts.map((p) => ({ ids: p.hits[q]!.ids, scores: p.hits[q]!.scores })),
        topk,
        0,
        "L2",
      );
      const fields = { [this.field("tag")]: Array.from(m.sources, (src, i) => parts[src]!.hits[q]!.fields[this.field("tag")]![m.positions[i]!]) };
      return { ids: m.ids, scores: m.scores, fields };
    });
    return { nq: spec.nq, hits };
  }

  async query(spec: Partial<QuerySpec>, consistency: "Strong" | "Eventually" = "Strong"): Promise<QueryResult[]> {
    const full: QuerySpec = { collectionId: this.info.collectionId, partitionIds: [], outputFieldIds: [], countOnly: false, ...spec };
    return Promise.all(
      this.shards.map(async (s) =>
        this.dlg(s, "Query", {
          spec: full,
          guarantee: consistency === "Strong" ? await this.strong(s) : { consistency: "Eventually", position: 0n },
        }),
      ),
    );
  }

  async count(consistency: "Strong" | "Eventually" = "Strong", filter?: unknown): Promise<number> {
    const parts = await this.query({ countOnly: true, ...(filter === undefined ? {} : { filter }) }, consistency);
    return parts.reduce((a, p) => a + p.count, 0);
  }

  /** Every visible pk, over all shards. */
  async allPks(): Promise<bigint[]> {
    const parts = await this.query({});
    return parts.flatMap((p) => Array.from(p.pks as BigInt64Array));
  }

  /** querycoord's SegmentChecker + LeaderChecker: load every flushed L1 segment (spread over `nodes`), sync each shard. */
  async loadAndSync(nodes: string[], targetVersion: number): Promise<SegmentInfo[]> {
    const rec = await this.recovery();
    const l1 = rec.segments.filter((s) => s.level === "L1");
    const l0 = rec.segments.filter((s) => s.level === "L0");
    const placed = new Map<bigint, string>();
    for (const [i, node] of nodes.entries()) {
      const mine = l1.filter((_, j) => j % nodes.length === i);
      if (mine.length === 0) continue;
      await this.qn(node, "LoadSegments", { collectionId: this.info.collectionId, replicaId: 1n, schema: this.info.schema, segments: mine, l0Segments: l0 });
      for (const s of mine) placed.set(s.segmentId, node);
    }
    for (const shard of this.shards) {
      const sealed: SealedEntry[] = l1
        .filter((s) => s.vchannel === shard.vchannel)
        .map((s) => ({
          segmentId: s.segmentId,
          partitionId: s.partitionId,
          nodeId: placed.get(s.segmentId)!,
          startPosition: s.startPosition,
          endPosition: s.endPosition!,
          numRows: s.numRows,
        }));
      await this.dlg(shard, "SyncDistribution", { targetVersion, sealed });
    }
    return l1;
  }

  async growingRows(): Promise<number> {
    let n = 0;
    for (const s of this.shards) n += (await this.dlg(s, "GetStatus", {})).growingRows;
    return n;
  }

  /** Checks a Strong search of `nq` random queries against brute force. */
  async expectExactSearch(nq: number, topk: number, filter?: { plan: unknown; pass: (tag: number) => boolean }): Promise<void> {
    const queries = new Float32Array(nq * DIM);
    for (let i = 0; i < queries.length; i++) queries[i] = rand();
    const res = await this.search(queries, topk, filter ? { filter: filter.plan } : {});
    for (let q = 0; q < nq; q++) {
      const want = this.model.topk(queries.subarray(q * DIM, (q + 1) * DIM), topk, filter?.pass);
      const got = res.hits[q]!;
      expect(Array.from(got.ids as BigInt64Array)).toEqual(want.ids);
      Array.from(got.scores).forEach((s, i) => expect(s).toBeCloseTo(want.scores[i]!, 5));
      const tags = got.fields[this.field("tag")]!;
      want.ids.forEach((pk, i) => expect(tags[i]).toBe(this.model.rows.get(pk)!.tag));
    }
  }
}

async function refusal(p: Promise<unknown>): Promise<VbError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected the request to be refused");
}

describe("querynode and delegators", () => {
  let c: Cluster;

  beforeAll(async () => {
    c = await startCluster([{ nodeId: "qn1" }, { nodeId: "qn2" }, { nodeId: "qn3", memoryLimitBytes: 2048 }]);
  });

  afterAll(async () => {
    await c?.stop();
  });

  it("searches growing and sealed rows exactly (with and without a filter) and Strong reads see the last acked write", async () => {
    const p = new QueryPlane(c, "exact_topk");
    await p.create();
    await p.watch("qn1");
    await p.insert(300);
    await p.expectExactSearch(4, 10);
    await p.flush();
    await p.loadAndSync(["qn1", "qn2"], 1);
    await p.insert(200); // growing again, next to the sealed segments
    await p.expectExactSearch(4, 10);
    const plan = compileFilter("tag >= 7", p.info.schema);
    await p.expectExactSearch(3, 15, { plan, pass: (t) => t >= 7 });
    expect(await p.count("Strong", plan)).toBe([...p.model.rows.values()].filter((r) => r.tag >= 7).length);

    // a Strong read sees a write acknowledged just before it
    for (let i = 0; i < 5; i++) {
      const [pk] = await p.insert(1);
      expect(await p.count()).toBe(p.model.rows.size);
      const res = await p.search(p.model.rows.get(pk!)!.vec, 1);
      expect(res.hits[0]!.ids[0]).toBe(pk);
      expect(res.hits[0]!.scores[0]).toBe(0);
    }
  });

  it("keeps count(*) exact across a handoff, with no duplicates, during continuous inserts", async () => {
    const p = new QueryPlane(c, "handoff");
    await p.create();
    await p.watch("qn1");
    await p.insert(400);
    await p.flush();
    const before = await p.growingRows();
    expect(before).toBe(400);

    // while the flushed segments are loaded and the distribution synced, count(*) never moves
    let synced = false;
    const seen: number[] = [];
    const poller = (async () => {
      while (!synced || seen.length < 40) {
        const [a, b] = await Promise.all([p.count("Eventually"), p.count("Strong")]);
        seen.push(a, b);
      }
    })();
    await p.loadAndSync(["qn2"], 1);
    synced = true;
    await poller;
    expect(seen.length).toBeGreaterThanOrEqual(40);
    expect(new Set(seen)).toEqual(new Set([400]));
    // the sealed copies replaced the growing rows
    await waitFor(async () => (await p.growingRows()) === 0, { what: "growing rows dropped" });
    let pks = await p.allPks();
    expect(pks.length).toBe(400);
    expect(new Set(pks).size).toBe(400);

    // again with writes going on: every Strong count lies between what was acked and what was sent
    let acked = 400;
    let sent = 400;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        sent += 20;
        await p.insert(20);
        acked += 20;
      }
    })();
    const checks: Promise<void>[] = [];
    const observe = async () => {
      const lo = acked;
      const n = await p.count("Strong");
      const hi = sent;
      expect(n).toBeGreaterThanOrEqual(lo);
      expect(n).toBeLessThanOrEqual(hi);
    };
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5; i++) checks.push(observe());
      await p.flush();
      for (let i = 0; i < 5; i++) checks.push(observe());
      await p.loadAndSync(["qn1", "qn2"], 2 + round);
      for (let i = 0; i < 5; i++) checks.push(observe());
    }
    writing = false;
    await writer;
    await Promise.all(checks);
    expect(await p.count("Strong")).toBe(acked);
    pks = await p.allPks();
    expect(pks.length).toBe(acked);
    expect(new Set(pks).size).toBe(acked);
    await p.expectExactSearch(3, 10);
  });

  it("applies deletes and upserts to growing and sealed rows", async () => {
    const p = new QueryPlane(c, "deletes");
    await p.create();
    await p.watch("qn1");
    const first = await p.insert(300);
    // deletes of growing rows
    await p.delete(first.slice(0, 20));
    expect(await p.count()).toBe(280);
    await p.flush();
    // deletes after the flush but before the sealed copies are synced: forwarded at the sync
    await p.delete(first.slice(20, 30));
    await p.loadAndSync(["qn2"], 1);
    expect(await p.count()).toBe(270);
    expect(await p.growingRows()).toBe(0);
    // deletes of sealed rows, forwarded as they come
    await p.delete(first.slice(30, 50));
    expect(await p.count()).toBe(250);
    const gone = new Set(first.slice(0, 50));
    const pks = await p.allPks();
    expect(pks.length).toBe(250);
    expect(pks.some((pk) => gone.has(pk))).toBe(false);
    // a deleted row is never a hit, even for its own vector
    const res = await p.search(Float32Array.from([0, 0, 0, 0, 0, 0, 0, 0]), 300);
    expect(Array.from(res.hits[0]!.ids as BigInt64Array).some((pk) => gone.has(pk))).toBe(false);
    await p.expectExactSearch(3, 10);

    // upserts: of a sealed row and of a growing one; the old versions disappear, the count stays
    const grown = await p.insert(10);
    const target = first[100]!;
    const v1 = vector();
    await p.upsert(target, v1, 42);
    const v2 = vector();
    await p.upsert(grown[0]!, v2, 43);
    expect(await p.count()).toBe(260);
    const hit = await p.search(v1, 1);
    expect(hit.hits[0]!.ids[0]).toBe(target);
    expect(hit.hits[0]!.fields[p.field("tag")]![0]).toBe(42);
    const hit2 = await p.search(v2, 1);
    expect(hit2.hits[0]!.ids[0]).toBe(grown[0]);
    expect(await p.count("Strong", compileFilter("tag == 42 or tag == 43", p.info.schema))).toBe(2);
    await p.expectExactSearch(3, 10);

    // and again after those upserts are flushed and handed off
    await p.flush();
    await p.loadAndSync(["qn1", "qn2"], 2);
    expect(await p.count()).toBe(260);
    const again = await p.allPks();
    expect(new Set(again).size).toBe(260);
    await p.expectExactSearch(3, 10);

    // deletes going on while a flush is handed off: each reaches the new sealed copies exactly once
    const more = await p.insert(100);
    const victims = [...more.slice(0, 40), ...first.slice(200, 240)];
    let deleting = true;
    const deleter = (async () => {
      while (deleting && victims.length > 0) await p.delete([victims.shift()!]);
    })();
    await p.flush();
    await p.loadAndSync(["qn2", "qn1"], 3);
    await p.flush();
    await p.loadAndSync(["qn1"], 4);
    deleting = false;
    await deleter;
    expect(await p.count()).toBe(p.model.rows.size);
    const last = await p.allPks();
    expect(last.length).toBe(p.model.rows.size);
    expect(new Set(last)).toEqual(new Set(p.model.rows.keys()));
    await p.expectExactSearch(3, 10);
  });

  it("refuses a load past the memory limit and shows it in the dist", async () => {
    const p = new QueryPlane(c, "memory");
    await p.create();
    await p.insert(200);
    await p.flush();
    const rec = await p.recovery();
    const seg = rec.segments.find((s) => s.level === "L1")!;
    const err = await refusal(
      p.qn("qn3", "LoadSegments", { collectionId: p.info.collectionId, replicaId: 1n, schema: p.info.schema, segments: [seg], l0Segments: [] }),
    );
    expect(err.code).toBe(ErrorCode.MemoryLimitExceeded);
    expect(err.message).toContain(`segment ${seg.segmentId}`);
    expect(err.message).toMatch(/free/);
    const dist = await p.qn("qn3", "GetDist", {});
    const entry = dist.loading.find((l) => l.segmentId === seg.segmentId);
    expect(entry?.state).toBe("failed");
    expect(entry?.reason).toContain("cannot load");
    expect(dist.segments).toEqual([]);
    expect(dist.memoryLimitBytes).toBe(2048);
    // the feed carries it too
    const feed = new Feed(c.env.nc);
    await waitFor(
      async () => {
        const snap = await feed.snapshot(c.env.subjects.distStream(), c.env.subjects.distSubject("querynode", asNodeId("qn3")));
        const m = [...snap.values()][0];
        if (!m) return false;
        const d = decodeQueryNodeDist(m.data);
        return d.loading.some((l) => l.segmentId === seg.segmentId && l.state === "failed");
      },
      { what: "the refusal on the feed" },
    );
  });

  it("publishes delegators, segments and memory on the feed", async () => {
    const p = new QueryPlane(c, "feed");
    await p.create();
    await p.watch("qn1");
    await p.insert(100);
    await p.flush();
    const l1 = await p.loadAndSync(["qn2"], 7);
    const feed = new Feed(c.env.nc);
    const dists = async () => {
      const snap = await feed.snapshot(c.env.subjects.distStream(), `${c.env.subjects.distStreamSubjects().slice(0, -1)}querynode.*`);
      return new Map([...snap.values()].map((m) => decodeQueryNodeDist(m.data)).map((d) => [d.nodeId, d]));
    };
    await waitFor(
      async () => {
        const d = await dists();
        const qn1 = d.get("qn1");
        const qn2 = d.get("qn2");
        if (!qn1 || !qn2) return false;
        const mine = qn1.delegators.filter((x) => x.collectionId === p.info.collectionId);
        const segs = qn2.segments.filter((s) => s.collectionId === p.info.collectionId);
        return (
          mine.length === 2 &&
          mine.every((x) => x.serviceable && x.targetVersion === 7) &&
          mine.reduce((n, x) => n + x.sealedSegmentIds.length, 0) === l1.length &&
          segs.length === l1.length &&
          segs.reduce((a, s) => a + s.rows, 0) === 100 &&
          qn2.memoryBytes > 0
        );
      },
      { what: "the dist of qn1 and qn2" },
    );
    // release: the segments leave the dist, the delegators stop
    await p.qn("qn2", "ReleaseSegments", { collectionId: p.info.collectionId, segmentIds: l1.map((s) => s.segmentId) });
    await p.qn("qn1", "ReleaseCollection", { collectionId: p.info.collectionId });
    await waitFor(
      async () => {
        const d = await dists();
        return (
          !d.get("qn1")!.delegators.some((x) => x.collectionId === p.info.collectionId) &&
          !d.get("qn2")!.segments.some((s) => s.collectionId === p.info.collectionId)
        );
      },
      { what: "released" },
    );
  });

  it("fails a read whose guarantee is not reached in time, or whose sealed segment is gone, with retriable errors", async () => {
    const p = new QueryPlane(c, "waits");
    await p.create();
    await p.watch("qn1");
    await p.insert(50);
    const shard = p.shards[0]!;
    const spec: QuerySpec = { collectionId: p.info.collectionId, partitionIds: [], outputFieldIds: [], countOnly: true };
    const g = await p.strong(shard);
    const err = await refusal(p.dlg(shard, "Query", { spec, guarantee: { consistency: "Strong", position: g.position + 1_000_000n, waitMs: 200 } }));
    expect(err.code).toBe(ErrorCode.ChannelNotAvailable);
    expect(err.retriable).toBe(true);
    // a read parked on a guarantee resumes when the position is applied
    const last = await p.strong(shard);
    const parked = p.dlg(shard, "Query", { spec, guarantee: { consistency: "Session", position: last.position + 1n, waitMs: 15_000 } });
    await p.insert(20);
    const before = (await p.query({ countOnly: true })).reduce((a, r) => a + r.count, 0);
    expect(before).toBe(70);
    expect((await parked).count).toBeGreaterThan(0);

    // a sealed segment released under the delegator's view: the read fails, retriable
    await p.flush();
    const l1 = await p.loadAndSync(["qn2"], 1);
    await p.qn("qn2", "ReleaseSegments", { collectionId: p.info.collectionId, segmentIds: l1.map((s) => s.segmentId) });
    const e2 = await refusal(p.count());
    expect(e2.retriable).toBe(true);
    expect(e2.code).toBe(ErrorCode.SegmentNotLoaded);
  });

  it("refuses reads until its first SyncDistribution when watched with syncedReadsOnly (as querycoord watches)", async () => {
    const p = new QueryPlane(c, "synced_only");
    await p.create();
    await p.watch("qn1", { syncedReadsOnly: true });
    await p.insert(30);
    const err = await refusal(p.count());
    expect(err.code).toBe(ErrorCode.ChannelNotAvailable);
    expect(err.retriable).toBe(true);
    expect(err.message).toContain("has not been given its sealed segments yet");
    for (const s of p.shards) await p.dlg(s, "SyncDistribution", { targetVersion: 1, sealed: [] });
    expect(await p.count()).toBe(30);
  });

  it("changes its view by a delta against the view it named, and refuses a delta against another view", async () => {
    const p = new QueryPlane(c, "delta_view");
    await p.create();
    await p.watch("qn1");
    await p.insert(40);
    await p.flush();
    const l1 = await p.loadAndSync(["qn1"], 1);
    const seg = l1[0]!;
    const shard = p.shards.find((s) => s.vchannel === seg.vchannel)!;
    const before = await p.dlg(shard, "GetStatus", {});
    const { view } = await p.dlg(shard, "SyncDistribution", { targetVersion: 1, sealed: before.sealed });
    // a copy on qn2, and the view moved there by a delta: the entry on qn1 removed, the one on qn2 set
    await p.qn("qn2", "LoadSegments", { collectionId: p.info.collectionId, replicaId: 1n, schema: p.info.schema, segments: [seg], l0Segments: [] });
    const was = before.sealed.find((e) => e.segmentId === seg.segmentId)!;
    const moved = await p.dlg(shard, "SyncDistribution", {
      targetVersion: 2,
      delta: { base: view, set: [{ ...was, nodeId: "qn2" }], remove: [{ segmentId: was.segmentId, nodeId: "qn1" }] },
    });
    expect(moved.view).not.toBe(view);
    const after = await p.dlg(shard, "GetStatus", {});
    expect(after.targetVersion).toBe(2);
    const where = (s: readonly SealedEntry[]) => new Map(s.map((e) => [e.segmentId, e.nodeId]));
    expect(where(after.sealed)).toEqual(new Map([...where(before.sealed), [seg.segmentId, "qn2"]]));
    // reads go to qn2 for it: releasing qn1's copy loses nothing
    await p.qn("qn1", "ReleaseSegments", { collectionId: p.info.collectionId, segmentIds: [seg.segmentId] });
    expect(await p.count()).toBe(40);
    await p.expectExactSearch(2, 5);
    // a delta against the view before: refused retriably, naming both views; the view stays
    const stale = await refusal(p.dlg(shard, "SyncDistribution", { targetVersion: 3, delta: { base: view, set: [], remove: [] } }));
    expect(stale.code).toBe(ErrorCode.ParameterInvalid);
    expect(stale.retriable).toBe(true);
    expect(stale.message).toContain(`against view ${view}, but the view is ${moved.view}`);
    // a delta removing what the view lacks
    const lacks = await refusal(
      p.dlg(shard, "SyncDistribution", { targetVersion: 3, delta: { base: moved.view, set: [], remove: [{ segmentId: seg.segmentId, nodeId: "qn1" }] } }),
    );
    expect(lacks.message).toContain(`removes ${seg.segmentId}@qn1, which view ${moved.view} does not hold`);
    expect((await p.dlg(shard, "GetStatus", {})).targetVersion).toBe(2);
    expect(await p.count()).toBe(40);
  });

  it("answers malformed requests with 1100 and keeps serving", async () => {
    const p = new QueryPlane(c, "malformed");
    await p.create();
    await p.watch("qn1");
    await p.insert(20);
    const shard = p.shards[0]!;
    const raw = (address: string, type: string, body: unknown) => ask(c.env.nc, address, type, body, ASK);
    const qn1 = c.env.subjects.querynode(asNodeId("qn1"));
    const good = p.searchSpec(vector(), 3);
    const bad: [string, string, unknown][] = [
      [qn1, "querynode.LoadSegments", {}],
      [qn1, "querynode.LoadSegments", { collectionId: p.info.collectionId, replicaId: 1n, schema: p.info.schema, segments: [{ segmentId: 1 }], l0Segments: [] }],
      [qn1, "querynode.WatchDmChannels", { collectionId: 1n, vchannel: "a.b", pchannel: 0, replicaId: 1n, schema: p.info.schema, seekPosition: 0n, partitionIds: [], l0Segments: [] }],
      [qn1, "querynode.SearchSegments", { segmentIds: "x", spec: good, readPosition: 1n }],
      [qn1, "querynode.SearchSegments", { segmentIds: [], spec: { ...good, queries: [1, 2, 3] }, readPosition: 1n }],
      [qn1, "querynode.ApplyDelete", { collectionId: 1n, segmentIds: [], pks: new BigInt64Array(2), positions: new BigInt64Array(1) }],
      [qn1, "querynode.QuerySegments", null],
      [qn1, "querynode.internal.PublishDist", {}],
      [qn1, "querynode.DelegatorReport", 5],
      [shard.address, "delegator.Search", { spec: { ...good, queries: new Float32Array(3) }, guarantee: { consistency: "Eventually", position: 0n } }],
      [shard.address, "delegator.Search", { spec: { ...good, annsFieldId: p.field("tag") }, guarantee: { consistency: "Eventually", position: 0n } }],
      [shard.address, "delegator.Search", { spec: { ...good, topk: 0 }, guarantee: { consistency: "Eventually", position: 0n } }],
      [shard.address, "delegator.Search", { spec: good, guarantee: { consistency: "Sometimes", position: 0n } }],
      [shard.address, "delegator.Search", { spec: { ...good, filter: { version: 1, root: { kind: "bogus" } } }, guarantee: { consistency: "Eventually", position: 0n } }],
      [shard.address, "delegator.Query", { spec: { collectionId: p.info.collectionId, partitionIds: [], outputFieldIds: [999], countOnly: false }, guarantee: { consistency: "Eventually", position: 0n } }],
      [shard.address, "delegator.SyncDistribution", { targetVersion: -1, sealed: [] }],
      [shard.address, "delegator.SyncDistribution", { targetVersion: 1, sealed: [{ segmentId: 1n, partitionId: 1n, nodeId: "a.b", startPosition: 5n, endPosition: 1n, numRows: 1 }] }],
      [shard.address, "delegator.SyncDistribution", { targetVersion: 1, sealed: [], delta: { base: "x", set: [], remove: [] } }],
      [shard.address, "delegator.SyncDistribution", { targetVersion: 1, delta: { set: [], remove: [] } }],
      [shard.address, "delegator.SyncDistribution", { targetVersion: 1, delta: { base: "x", set: [{ segmentId: 1n }], remove: [] } }],
      [shard.address, "delegator.SyncDistribution", { targetVersion: 1, delta: { base: "x", set: [], remove: [{ segmentId: 1n, nodeId: "n" }, { segmentId: 1n, nodeId: "n" }] } }],
      [shard.address, "delegator.internal.Dml", { m: 1 }],
      [shard.address, "actor.Stopped", { address: qn1, reason: "failed" }],
    ];
    for (const [address, type, body] of bad) {
      const err = await refusal(raw(address, type, body));
      expect(err.code, `${type} ${JSON.stringify(body, (_, v) => (typeof v === "bigint" ? String(v) : v))?.slice(0, 120)}`).toBe(ErrorCode.ParameterInvalid);
    }
    expect(await p.count()).toBe(20);
    await p.expectExactSearch(2, 5);
    const dist = await p.qn("qn1", "GetDist", {});
    expect(dist.nodeId).toBe("qn1");
  });
});

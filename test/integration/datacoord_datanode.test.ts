/**
 * The write path's storage half on a real nats-server and a filesystem object store: rootcoord +
 * datacoord + datanodes in their own hosts under one prefix. The test publishes DML messages straight to
 * the vchannels (what a proxy does), flushes, and reads the binlogs back.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CHECKPOINTS_BUCKET, SEGMENTS_BUCKET, spawnDatacoord } from "../../actors/datacoord/index.ts";
import { DATACOORD_GET_STATUS, type DatacoordStatus } from "../../actors/datacoord/status.ts";
import { spawnDatanode } from "../../actors/datanode/index.ts";
import { createClusterEnv, type ClusterConfig, type ClusterEnv } from "../../actors/env.ts";
import { followEvents, type VbEvent } from "../../actors/events.ts";
import { spawnRootcoord } from "../../actors/rootcoord/index.ts";
import { readDeltaLog, readSegment, readStats, bloomOf } from "../../actors/storage/index.ts";
import { encode } from "../../protocol/codec.ts";
import type { DmlMsg } from "../../protocol/dml.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { asNodeId, composeTs } from "../../protocol/ids.ts";
import { messageType } from "../../protocol/messages/api.ts";
import type { DatacoordApi, DatanodeApi } from "../../protocol/messages/datacoord.ts";
import type { RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import type { CollectionInfo, SegmentInfo, VChannelInfo } from "../../protocol/meta.ts";
import type { Column, FieldSchema } from "../../protocol/schema.ts";
import { Actor, type Message } from "../../runtime/actor.ts";
import { ask } from "../../runtime/ask.ts";
import { ActorHost } from "../../runtime/host.ts";
import { listAll } from "../../runtime/object_store.ts";
import { FsObjectStore } from "../../runtime/object_store_fs.ts";
import { jetstreamOf } from "../../runtime/streams.ts";
import { connectTest, uniquePrefix, waitFor } from "../harness/index.ts";

const DIM = 16;

const FIELDS: FieldSchema[] = [
  { name: "id", type: "Int64", isPrimaryKey: true },
  { name: "title", type: "VarChar", maxLength: 64 },
  { name: "score", type: "Float" },
  { name: "meta", type: "JSON" },
  { name: "vec", type: "FloatVector", dim: DIM },
];

interface Row {
  id: bigint;
  title: string;
  score: number;
  meta: string;
  vec: Float32Array;
}

function rowOf(id: bigint, version = 0): Row {
  const n = Number(id);
  return {
    id,
    title: `título ${n} v${version} ✓`,
    score: Math.fround(n * 0.5 + version),
    meta: JSON.stringify({ n, v: version, tags: ["a", "ü"] }),
    vec: Float32Array.from({ length: DIM }, (_, i) => Math.fround(Math.sin(n * 31 + i + version))),
  };
}

interface Node {
  nodeId: string;
  host: ActorHost;
  close(): Promise<void>;
}

async function startCluster(config: Partial<ClusterConfig>) {
  const prefix = uniquePrefix("dc");
  const dir = await mkdtemp(join(tmpdir(), "vbus-dcdn-"));
  const store = new FsObjectStore(dir, { fsync: false });
  const fullConfig: Partial<ClusterConfig> = { dmlChannelNum: 2, heartbeatIntervalMs: 100, heartbeatAvailableMs: 5_000, ...config };
  const nc = await connectTest();
  const env = createClusterEnv(nc, store, { prefix, config: fullConfig });
  const host = new ActorHost(nc);
  await spawnRootcoord(host, env);
  /** datacoord in a process of its own, so that it can be restarted */
  const startDatacoord = async () => {
    const cnc = await connectTest();
    const chost = new ActorHost(cnc, { nodeId: "datacoord" });
    await spawnDatacoord(chost, createClusterEnv(cnc, store, { prefix, config: fullConfig }));
    return {
      async close() {
        await chost.stop();
        await cnc[Symbol.asyncDispose]();
      },
    };
  };
  let datacoord = await startDatacoord();
  const nodes = new Map<string, Node>();
  const events: VbEvent[] = [];
  const following = await followEvents(env, (ev) => void events.push(ev));

  const c = {
    env,
    host,
    store,
    events,
    nodes,
    async startDatanode(nodeId: string): Promise<Node> {
      const dnc = await connectTest();
      const denv: ClusterEnv = createClusterEnv(dnc, store, { prefix, config: fullConfig });
      const dhost = new ActorHost(dnc, { nodeId });
      await spawnDatanode(dhost, denv, { nodeId });
      const node: Node = {
        nodeId,
        host: dhost,
        async close() {
          // the connection first: nothing it still has in flight reaches anyone
          await dnc[Symbol.asyncDispose]();
          await dhost.stop();
        },
      };
      nodes.set(nodeId, node);
      return node;
    },
    async restartDatacoord(): Promise<void> {
      await datacoord.close();
      datacoord = await startDatacoord();
    },
    /** stops a datanode's process without letting it flush what it buffers */
    async killDatanode(nodeId: string): Promise<void> {
      const n = nodes.get(nodeId)!;
      nodes.delete(nodeId);
      await n.close();
    },
    rc<V extends keyof RootcoordApi & string>(verb: V, body: RootcoordApi[V][0]): Promise<RootcoordApi[V][1]> {
      return host.ask(env.subjects.rootcoord(), messageType("rootcoord", verb), body, { timeoutMs: 10_000 });
    },
    dc<V extends keyof DatacoordApi & string>(verb: V, body: DatacoordApi[V][0]): Promise<DatacoordApi[V][1]> {
      return host.ask(env.subjects.datacoord(), messageType("datacoord", verb), body, { timeoutMs: 10_000 });
    },
    dn<V extends keyof DatanodeApi & string>(nodeId: string, verb: V, body: DatanodeApi[V][0]): Promise<DatanodeApi[V][1]> {
      return host.ask(env.subjects.datanode(asNodeId(nodeId)), messageType("datanode", verb), body, { timeoutMs: 10_000 });
    },
    async createCollection(name: string, shardsNum = 2): Promise<CollectionInfo> {
      return c.rc("CreateCollection", { schema: { name, fields: FIELDS }, shardsNum });
    },
    async ts(): Promise<bigint> {
      return (await c.rc("AllocTimestamp", { count: 1 })).ts;
    },
    /** publishes a DML message to a vchannel and returns its position */
    async publish(v: VChannelInfo, msg: DmlMsg): Promise<bigint> {
      return env.dml.publish(env.subjects.dmlSubject(v.pchannel, v.name), encode(msg));
    },
    async publishRaw(v: VChannelInfo, bytes: Uint8Array): Promise<bigint> {
      return env.dml.publish(env.subjects.dmlSubject(v.pchannel, v.name), bytes);
    },
    /** Flush, then wait until datacoord says the flush is done */
    async flushAndWait(collectionId: bigint, timeoutMs = 20_000) {
      const res = await c.dc("Flush", { collectionId });
      await waitFor(async () => (await c.dc("GetFlushState", { collectionId, flushPositions: res.flushPositions })).flushed, {
        timeoutMs,
        intervalMs: 50,
        what: "GetFlushState to say flushed",
      });
      return res;
    },
    async [Symbol.asyncDispose]() {
      await following.stop();
      for (const n of nodes.values()) await n.close();
      await datacoord.close();
      await host.stop();
      const { jsm } = await jetstreamOf(nc);
      for await (const name of jsm.streams.names()) {
        if (name.startsWith(`${env.subjects.streamPrefix}_`) || name.startsWith(`KV_${env.subjects.streamPrefix}_`)) {
          await jsm.streams.delete(name).catch(() => undefined);
        }
      }
      await nc[Symbol.asyncDispose]();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return c;
}

type Cluster = Awaited<ReturnType<typeof startCluster>>;

/** The shard of a pk in these tests (a stand-in for the proxy's hash: any function of the pk will do). */
function shardOf(id: bigint, shards: number): number {
  return Number(((id % BigInt(shards)) + BigInt(shards)) % BigInt(shards));
}

function insertMsg(info: CollectionInfo, rows: Row[], ts: bigint, k: "insert" | "upsert" = "insert", partitionId?: bigint): DmlMsg {
  const f = info.schema.fields;
  const ids = BigInt64Array.from(rows.map((r) => r.id));
  const vec = new Float32Array(rows.length * DIM);
  rows.forEach((r, i) => vec.set(r.vec, i * DIM));
  const columns: Column[] = [
    { fieldId: f[0]!.fieldId!, data: ids },
    { fieldId: f[1]!.fieldId!, data: rows.map((r) => r.title) },
    { fieldId: f[2]!.fieldId!, data: Float32Array.from(rows.map((r) => r.score)) },
    { fieldId: f[3]!.fieldId!, data: rows.map((r) => r.meta) },
    { fieldId: f[4]!.fieldId!, data: vec },
  ];
  return { k, collectionId: info.collectionId, partitionId: partitionId ?? info.partitions[0]!.partitionId, ts, numRows: rows.length, pks: ids, columns };
}

/** Publishes rows (split per shard, `perMsg` rows a message); returns the number of messages. */
async function publishRows(c: Cluster, info: CollectionInfo, rows: Row[], perMsg: number, k: "insert" | "upsert" = "insert"): Promise<number> {
  let msgs = 0;
  for (const v of info.vchannels) {
    const mine = rows.filter((r) => shardOf(r.id, info.shardsNum) === v.shard);
    for (let i = 0; i < mine.length; i += perMsg) {
      await c.publish(v, insertMsg(info, mine.slice(i, i + perMsg), await c.ts(), k));
      msgs++;
    }
  }
  return msgs;
}

async function publishDelete(c: Cluster, info: CollectionInfo, ids: bigint[]): Promise<void> {
  for (const v of info.vchannels) {
    const mine = ids.filter((id) => shardOf(id, info.shardsNum) === v.shard);
    if (mine.length === 0) continue;
    await c.publish(v, { k: "delete", collectionId: info.collectionId, partitionId: -1n, ts: await c.ts(), pks: BigInt64Array.from(mine) });
  }
}

interface StoredRow extends Row {
  position: bigint;
  segmentId: bigint;
}

/** Every row of the collection's Flushed L1 segments, read from the object store. */
async function readRows(c: Cluster, info: CollectionInfo): Promise<{ rows: StoredRow[]; segments: SegmentInfo[] }> {
  const { segments } = await c.dc("ListSegments", { collectionId: info.collectionId, states: ["Flushed"] });
  const rows: StoredRow[] = [];
  for (const seg of segments.filter((s) => s.level === "L1")) {
    const data = await readSegment(c.store, seg, info.schema);
    expect(data.numRows).toBe(seg.numRows);
    const [id, title, score, meta, vec] = data.columns as [Column, Column, Column, Column, Column];
    for (let r = 0; r < data.numRows; r++) {
      rows.push({
        id: (id.data as BigInt64Array)[r]!,
        title: (title.data as string[])[r]!,
        score: (score.data as Float32Array)[r]!,
        meta: (meta.data as string[])[r]!,
        vec: (vec.data as Float32Array).slice(r * DIM, (r + 1) * DIM),
        position: data.positions[r]!,
        segmentId: seg.segmentId,
      });
    }
  }
  return { rows, segments };
}

/** The rows visible after applying the L0 deletes (a row at p is deleted by a delete of its pk at d > p). */
async function visibleRows(c: Cluster, info: CollectionInfo): Promise<Map<bigint, StoredRow>> {
  const { rows, segments } = await readRows(c, info);
  const deletes = new Map<bigint, bigint[]>();
  for (const seg of segments.filter((s) => s.level === "L0")) {
    const d = await readDeltaLog(c.store, seg);
    (d.pks as BigInt64Array).forEach((pk, i) => deletes.set(pk, [...(deletes.get(pk) ?? []), d.positions[i]!]));
  }
  const out = new Map<bigint, StoredRow>();
  for (const r of rows) {
    if ((deletes.get(r.id) ?? []).some((d) => d > r.position)) continue;
    expect(out.has(r.id), `pk ${r.id} visible twice`).toBe(false);
    out.set(r.id, r);
  }
  return out;
}

function expectRow(got: StoredRow | undefined, want: Row): void {
  expect(got, `pk ${want.id}`).toBeDefined();
  expect({ id: got!.id, title: got!.title, score: got!.score, meta: got!.meta, vec: got!.vec }).toEqual(want);
}

async function failure(p: Promise<unknown>): Promise<VbError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected the ask to fail");
}

const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => BigInt(from + i));

describe("datacoord + datanode", () => {
  it("spreads vchannels over two datanodes, flushes every row into segments that read back exactly, and reports them", async () => {
    await using c = await startCluster({});
    await c.startDatanode("dn1");
    await c.startDatanode("dn2");
    const info = await c.createCollection("books");
    const rows = ids(1, 600).map((id) => rowOf(id));
    await publishRows(c, info, rows, 100);

    // both datanodes watch one vchannel each
    await waitFor(
      async () => {
        const [a, b] = await Promise.all([c.dn("dn1", "GetStatus", {}), c.dn("dn2", "GetStatus", {})]);
        return a.channels.length === 1 && b.channels.length === 1;
      },
      { what: "one vchannel per datanode" },
    );

    const flush = await c.flushAndWait(info.collectionId);
    expect(Object.keys(flush.flushPositions).sort()).toEqual(info.vchannels.map((v) => v.name).sort());
    for (const v of info.vchannels) {
      const last = await c.env.dml.lastPosition(c.env.subjects.dmlStream(v.pchannel), c.env.subjects.dmlSubject(v.pchannel, v.name));
      expect(flush.flushPositions[v.name]).toBe(last);
      const cp = await c.dc("GetChannelCheckpoint", { vchannel: v.name });
      expect(cp.position).toBeGreaterThanOrEqual(last);
    }

    const { rows: stored, segments } = await readRows(c, info);
    const l1 = segments.filter((s) => s.level === "L1");
    expect(l1.length).toBe(2); // one per vchannel: nothing reached the seal policy
    expect(l1.reduce((n, s) => n + s.numRows, 0)).toBe(rows.length);
    // the flush names the segments datacoord knew of then (a datanode may not have read every row yet)
    for (const id of flush.segmentIds) expect(l1.map((s) => s.segmentId)).toContain(id);
    expect(stored.length).toBe(rows.length);
    const byId = new Map(stored.map((r) => [r.id, r]));
    for (const want of rows) expectRow(byId.get(want.id), want);
    for (const s of l1) {
      expect(s).toMatchObject({ state: "Flushed", level: "L1", partitionId: info.partitions[0]!.partitionId });
      expect(s.endPosition! >= s.startPosition).toBe(true);
      expect(s.binlogs[0]!.key).toBe(`insert_log/${info.collectionId}/${s.partitionId}/${s.segmentId}/segment.arrow`);
      const stats = await readStats(c.store, s);
      expect(stats.numRows).toBe(s.numRows);
      const bloom = bloomOf(stats);
      for (const r of stored.filter((x) => x.segmentId === s.segmentId)) expect(bloom.mayContain(r.id)).toBe(true);
    }

    // recovery info: the flushed segments and seek positions at the checkpoints
    const rec = await c.dc("GetRecoveryInfo", { collectionId: info.collectionId });
    expect(new Set(rec.segments.map((s) => s.segmentId))).toEqual(new Set(l1.map((s) => s.segmentId)));
    for (const ch of rec.channels) expect(ch.seekPosition).toBeGreaterThanOrEqual(flush.flushPositions[ch.vchannel]!);
    expect((await c.dc("GetSegmentInfo", { segmentIds: l1.map((s) => s.segmentId) })).segments).toEqual(l1);

    // segment.flushed events, one per segment
    await waitFor(() => c.events.filter((e) => e.kind === "segment.flushed").length >= 2, { what: "segment.flushed events" });
    const flushedIds = c.events.flatMap((e) => (e.kind === "segment.flushed" ? [e.segment.segmentId] : []));
    expect(new Set(flushedIds)).toEqual(new Set(l1.map((s) => s.segmentId)));

    // a second flush with nothing new is flushed at once and seals nothing
    const again = await c.flushAndWait(info.collectionId);
    expect(again.segmentIds).toEqual([]);
    expect((await c.dc("ListSegments", { collectionId: info.collectionId })).segments.length).toBe(2);

    // asked again naming the revision it read: unchanged, no segments, the channels as they are now
    expect(rec.revision).toEqual(expect.any(String));
    const same = await c.dc("GetRecoveryInfo", { collectionId: info.collectionId, unlessRevision: rec.revision });
    expect([same.unchanged, same.revision, same.segments]).toEqual([true, rec.revision, []]);
    expect(same.channels.map((ch) => ch.vchannel)).toEqual(rec.channels.map((ch) => ch.vchannel));
    // an older or unknown revision gets the segments
    const whole = await c.dc("GetRecoveryInfo", { collectionId: info.collectionId, unlessRevision: "x.0" });
    expect([whole.unchanged, whole.segments.length]).toEqual([undefined, 2]);
    const bad = await failure(c.dc("GetRecoveryInfo", { collectionId: info.collectionId, unlessRevision: 7 as unknown as string }));
    expect([bad.code, bad.message]).toEqual([ErrorCode.ParameterInvalid, expect.stringMatching(/unlessRevision/)]);
  });

  it("applies deletes and upserts: an upserted pk is stored once with its new values, deletes go to L0 delta logs", async () => {
    await using c = await startCluster({});
    await c.startDatanode("dn1");
    const info = await c.createCollection("upserts");
    const base = ids(1, 200).map((id) => rowOf(id));
    await publishRows(c, info, base, 50);
    const upserted = ids(101, 50).map((id) => rowOf(id, 7)); // 101..150 get new values
    await publishRows(c, info, upserted, 25, "upsert");
    const deleted = [...ids(1, 20), ...ids(141, 5), 999n]; // 999 never existed
    await publishDelete(c, info, deleted);
    // flush everything so far; then more upserts of flushed rows: their old copies stay in the old segments,
    // deleted by position through L0
    await c.flushAndWait(info.collectionId);
    const late = ids(181, 10).map((id) => rowOf(id, 9));
    await publishRows(c, info, late, 10, "upsert");
    await c.flushAndWait(info.collectionId);

    const expected = new Map<bigint, Row>();
    for (const r of [...base, ...upserted, ...late]) expected.set(r.id, r);
    for (const d of deleted) expected.delete(d);
    const visible = await visibleRows(c, info);
    expect(visible.size).toBe(expected.size);
    for (const want of expected.values()) expectRow(visible.get(want.id), want);

    // before the first flush, deletes and upserts dropped the old rows from the buffers: each pk once
    const { rows, segments } = await readRows(c, info);
    const firstFlush = rows.filter((r) => !late.some((l) => l.id === r.id && l.vec[0] === r.vec[0]));
    const counts = new Map<bigint, number>();
    for (const r of firstFlush) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
    for (const id of ids(1, 20)) expect(counts.has(id), `deleted pk ${id} was written`).toBe(false);
    for (const id of ids(101, 50)) if (!deleted.includes(id)) expect(counts.get(id)).toBe(1);

    const l0 = segments.filter((s) => s.level === "L0");
    expect(l0.length).toBeGreaterThan(0);
    const deltaPks = new Set<bigint>();
    for (const s of l0) {
      expect(s.partitionId).toBe(-1n);
      expect(s.deltalogs[0]!.key.startsWith(`delta_log/${info.collectionId}/-1/${s.segmentId}/`)).toBe(true);
      const d = await readDeltaLog(c.store, s);
      for (const pk of d.pks as BigInt64Array) deltaPks.add(pk);
    }
    for (const d of deleted) expect(deltaPks.has(d)).toBe(true);
    for (const id of ids(101, 50)) expect(deltaPks.has(id)).toBe(true); // the delete half of each upsert
  });

  it("cuts several segments by maxRows, and skips a message it cannot read", async () => {
    await using c = await startCluster({ sealPolicy: { maxRows: 100, maxBytes: 64 << 20, idleMs: 600_000 } });
    await c.startDatanode("dn1");
    const info = await c.createCollection("cuts", 1);
    const v = info.vchannels[0]!;
    const rows = ids(1, 1000).map((id) => rowOf(id));
    await publishRows(c, info, rows.slice(0, 500), 40);
    await c.publishRaw(v, new Uint8Array([0xc1, 0xff, 0x00]));
    await c.publish(v, { ...insertMsg(info, [rowOf(5000n)], await c.ts()), columns: [] } as DmlMsg); // no columns
    await publishRows(c, info, rows.slice(500), 40);
    // sealed by the policy, before any flush
    await waitFor(
      async () => (await c.dc("ListSegments", { collectionId: info.collectionId, states: ["Flushed"] })).segments.length >= 8,
      { what: "segments sealed by maxRows" },
    );
    await c.flushAndWait(info.collectionId);
    const { rows: stored, segments } = await readRows(c, info);
    expect(stored.length).toBe(1000);
    expect(new Set(stored.map((r) => r.id)).size).toBe(1000);
    const l1 = segments.filter((s) => s.level === "L1").sort((a, b) => (a.startPosition < b.startPosition ? -1 : 1));
    expect(l1.length).toBeGreaterThanOrEqual(9);
    for (const s of l1) expect(s.numRows).toBeLessThanOrEqual(100 + 40); // a message is never split
    for (let i = 1; i < l1.length; i++) expect(l1[i]!.startPosition > l1[i - 1]!.endPosition!).toBe(true);
  });

  it("resumes from the checkpoint after a datanode is killed mid-stream: every pk ends up exactly once", async () => {
    await using c = await startCluster({ sealPolicy: { maxRows: 150, maxBytes: 64 << 20, idleMs: 600_000 } });
    await c.startDatanode("dn1");
    const info = await c.createCollection("crash");
    const first = ids(1, 1230).map((id) => rowOf(id));
    await publishRows(c, info, first, 50);
    await publishDelete(c, info, ids(1, 10));
    // 1) killed once some segments are flushed while rows and deletes are still buffered
    await waitFor(
      async () => {
        const flushed = (await c.dc("ListSegments", { collectionId: info.collectionId, states: ["Flushed"] })).segments.length;
        const st = await c.dn("dn1", "GetStatus", {});
        return flushed >= 4 && st.channels.reduce((n, ch) => n + ch.bufferedRows, 0) > 0 && st.channels.every((ch) => ch.consumed > 0n);
      },
      { what: "segments flushed with rows still buffered" },
    );
    const before = await c.dn("dn1", "GetStatus", {});
    expect(before.channels.some((ch) => ch.growing > 0)).toBe(true);
    await c.killDatanode("dn1");
    const cps = await Promise.all(info.vchannels.map((v) => c.dc("GetChannelCheckpoint", { vchannel: v.name })));
    for (const [i, cp] of cps.entries()) {
      const consumed = before.channels.find((ch) => ch.vchannel === info.vchannels[i]!.name)!.consumed;
      expect(cp.position).toBeLessThan(consumed); // what it buffered is behind the checkpoint: it must be replayed
    }
    // more writes while no datanode runs; the same node id comes back
    const second = ids(1231, 300).map((id) => rowOf(id));
    await publishRows(c, info, second, 50);
    await c.startDatanode("dn1");
    // 2) killed again right after more writes, whatever it is doing (reading, sealing, writing)
    const upserted = ids(500, 20).map((id) => rowOf(id, 3));
    await publishRows(c, info, upserted, 20, "upsert");
    await c.killDatanode("dn1");
    await c.startDatanode("dn1");
    await c.flushAndWait(info.collectionId, 30_000);
    for (const [i, v] of info.vchannels.entries()) {
      expect((await c.dc("GetChannelCheckpoint", { vchannel: v.name })).position).toBeGreaterThanOrEqual(cps[i]!.position);
    }

    const expected = new Map<bigint, Row>();
    for (const r of [...first, ...second, ...upserted]) expected.set(r.id, r);
    for (const d of ids(1, 10)) expected.delete(d);
    const visible = await visibleRows(c, info);
    expect(visible.size).toBe(expected.size);
    for (const want of expected.values()) expectRow(visible.get(want.id), want);
    // no row was written twice by the replays
    const { rows } = await readRows(c, info);
    const keys = rows.map((r) => `${r.id}@${r.position}`);
    expect(new Set(keys).size).toBe(keys.length);
    const all = (await c.dc("ListSegments", { collectionId: info.collectionId })).segments;
    expect(all.filter((s) => s.state !== "Flushed")).toEqual([]);
  });

  it("moves the vchannels of a datanode whose heartbeat stops to a live one", async () => {
    await using c = await startCluster({ heartbeatAvailableMs: 1_500 });
    await c.startDatanode("dn1");
    await c.startDatanode("dn2");
    const info = await c.createCollection("takeover");
    const rows = ids(1, 400).map((id) => rowOf(id));
    await publishRows(c, info, rows, 50);
    await waitFor(async () => (await c.dn("dn2", "GetStatus", {})).channels.length === 1, { what: "dn2 watching a vchannel" });
    await c.killDatanode("dn2");
    await waitFor(async () => (await c.dn("dn1", "GetStatus", {})).channels.length === 2, {
      what: "dn1 taking over dn2's vchannel",
      timeoutMs: 10_000,
    });
    await c.flushAndWait(info.collectionId);
    const visible = await visibleRows(c, info);
    expect(visible.size).toBe(rows.length);
    for (const want of rows) expectRow(visible.get(want.id), want);
    const watches = await c.dc("GetChannelWatches", { nodeId: "dn1" });
    expect(watches.channels.map((w) => w.vchannel).sort()).toEqual(info.vchannels.map((v) => v.name).sort());
  });

  it("hands a gracefully stopping datanode's vchannels to a live one at once, not when its heartbeats run out", async () => {
    // heartbeats would take a minute to run out: only the datanode's leaving can move the channel in time
    await using c = await startCluster({ heartbeatAvailableMs: 60_000 });
    await c.startDatanode("dn1");
    const dn2 = await c.startDatanode("dn2");
    const info = await c.createCollection("leaving");
    const rows = ids(1, 300).map((id) => rowOf(id));
    await publishRows(c, info, rows, 50);
    await waitFor(async () => (await c.dn("dn2", "GetStatus", {})).channels.length === 1, { what: "dn2 watching a vchannel" });
    // a graceful stop, as a datanode pod's: its actors stop, then it tells datacoord it leaves
    c.nodes.delete("dn2");
    await dn2.host.stop();
    const left = await c.dc("DatanodeLeaving", { nodeId: "dn2" });
    expect(left.vchannels).toBe(1);
    await dn2.close();
    await waitFor(async () => (await c.dn("dn1", "GetStatus", {})).channels.length === 2, {
      what: "dn1 taking over the leaving dn2's vchannel",
      timeoutMs: 20_000,
    });
    await c.flushAndWait(info.collectionId);
    const visible = await visibleRows(c, info);
    expect(visible.size).toBe(rows.length);
    for (const want of rows) expectRow(visible.get(want.id), want);
  });

  it("removes a dropped collection's objects, segments and channels", async () => {
    await using c = await startCluster({});
    await c.startDatanode("dn1");
    const info = await c.createCollection("dropme");
    const keep = await c.createCollection("keepme");
    await publishRows(c, info, ids(1, 300).map((id) => rowOf(id)), 50);
    await publishDelete(c, info, ids(1, 5));
    await publishRows(c, keep, ids(1, 100).map((id) => rowOf(id)), 50);
    await c.flushAndWait(info.collectionId);
    await c.flushAndWait(keep.collectionId);
    for (const root of ["insert_log", "delta_log", "stats_log"]) {
      expect((await listAll(c.store, `${root}/${info.collectionId}/`)).length).toBeGreaterThan(0);
    }
    await c.rc("DropCollection", { collectionId: info.collectionId });
    await waitFor(
      async () => {
        const left = await Promise.all(["insert_log", "delta_log", "stats_log"].map((r) => listAll(c.store, `${r}/${info.collectionId}/`)));
        const segs = await c.dc("ListSegments", { collectionId: info.collectionId, states: ["Growing", "Sealed", "Flushing", "Flushed", "Dropped"] });
        return left.every((l) => l.length === 0) && segs.segments.length === 0;
      },
      { what: "the dropped collection's data removed" },
    );
    await waitFor(async () => (await c.dn("dn1", "GetStatus", {})).channels.length === keep.vchannels.length, {
      what: "dn1 unwatching the dropped collection's vchannels",
    });
    expect((await failure(c.dc("GetChannelCheckpoint", { vchannel: info.vchannels[0]!.name }))).code).toBe(ErrorCode.ChannelNotFound);
    expect((await failure(c.dc("Flush", { collectionId: info.collectionId }))).code).toBe(ErrorCode.CollectionNotFound);
    // the other collection is untouched
    expect((await visibleRows(c, keep)).size).toBe(100);
  });

  it("keeps segments, checkpoints and assignments across a datacoord restart", async () => {
    await using c = await startCluster({});
    await c.startDatanode("dn1");
    const info = await c.createCollection("durable");
    await publishRows(c, info, ids(1, 300).map((id) => rowOf(id)), 50);
    await c.flushAndWait(info.collectionId);
    const segsBefore = (await c.dc("ListSegments", { collectionId: info.collectionId })).segments;
    const cpsBefore = await Promise.all(info.vchannels.map((v) => c.dc("GetChannelCheckpoint", { vchannel: v.name })));
    const revBefore = (await c.dc("GetRecoveryInfo", { collectionId: info.collectionId })).revision;
    await c.restartDatacoord();
    // another process's revisions are not this one's: the segments come whole
    const afterRestart = await c.dc("GetRecoveryInfo", { collectionId: info.collectionId, unlessRevision: revBefore });
    expect([afterRestart.unchanged, afterRestart.segments.length, afterRestart.revision === revBefore]).toEqual([undefined, 2, false]);
    expect((await c.dc("ListSegments", { collectionId: info.collectionId })).segments).toEqual(segsBefore);
    for (const [i, v] of info.vchannels.entries()) expect(await c.dc("GetChannelCheckpoint", { vchannel: v.name })).toEqual(cpsBefore[i]);
    expect((await c.dc("GetChannelWatches", { nodeId: "dn1" })).channels.length).toBe(2);
    // the datanode goes on with the restarted datacoord
    await publishRows(c, info, ids(301, 200).map((id) => rowOf(id)), 50);
    await c.flushAndWait(info.collectionId);
    const visible = await visibleRows(c, info);
    expect(visible.size).toBe(500);
    const rec = await c.dc("GetRecoveryInfo", { collectionId: info.collectionId, unlessRevision: afterRestart.revision });
    expect([rec.unchanged, rec.segments.length]).toEqual([undefined, 4]); // new segments flushed: a new revision
  });

  it("never stamps a flush with its own clock: without an answer from the TSO it retries until the deadline, then refuses (retriable)", async () => {
    await using c = await startCluster({});
    const info = await c.createCollection("tso", 1);
    await c.dc("GetRecoveryInfo", { collectionId: info.collectionId }); // datacoord knows the collection
    const rootcoord = c.env.subjects.rootcoord();
    const flush = (timeoutMs: number) =>
      c.host.ask<DatacoordApi["Flush"][1]>(c.env.subjects.datacoord(), messageType("datacoord", "Flush"), { collectionId: info.collectionId }, { timeoutMs });
    // rootcoord absent
    await c.host.stopActor(rootcoord);
    const absent = await failure(flush(1_500));
    expect([absent.code, absent.retriable]).toEqual([ErrorCode.ServiceUnavailable, true]);
    expect(absent.message).toMatch(/TSO gave no timestamp before the deadline/);
    // rootcoord refusing, then answering: the flush waits for it and carries the TSO's timestamp
    const tsoTs = composeTs(1_000_000, 7);
    let refusals = 0;
    await c.host.spawn({
      address: rootcoord,
      create: () =>
        new (class extends Actor {
          receive(msg: Message): unknown {
            if (msg.type !== "rootcoord.AllocTimestamp") throw VbError.invalid(`stub: ${msg.type}`);
            if (refusals++ < 2) throw new VbError(ErrorCode.ServiceNotReady, "stub: the TSO is not ready");
            return { ts: tsoTs };
          }
        })(),
    });
    expect((await flush(10_000)).flushTs).toBe(tsoTs);
    expect(refusals).toBe(3);
    // refusing until the deadline
    refusals = -1_000_000;
    const refused = await failure(flush(1_500));
    expect([refused.code, refused.retriable]).toEqual([ErrorCode.ServiceUnavailable, true]);
    expect(refused.message).toMatch(/not ready/);
  });

  it("refuses its internal messages from any other sender with 1100, changing nothing", async () => {
    await using c = await startCluster({});
    await c.startDatanode("dn1");
    const info = await c.createCollection("private", 1);
    await publishRows(c, info, ids(1, 20).map((id) => rowOf(id)), 10);
    await c.flushAndWait(info.collectionId);
    const dcBefore = await c.dc("GetRecoveryInfo", { collectionId: info.collectionId });
    const dnBefore = await c.dn("dn1", "GetStatus", {});
    await using outsider = await connectTest();
    const dcAddr = c.env.subjects.datacoord();
    const dnAddr = c.env.subjects.datanode(asNodeId("dn1"));
    const forged: Array<[string, string, unknown]> = [
      [dcAddr, "datacoord.internal.Event", { kind: "collection.dropped", collectionId: info.collectionId }],
      [dcAddr, "datacoord.internal.Gc", info.collectionId],
      [dcAddr, "datacoord.internal.Tick", null],
      [dnAddr, "datanode.internal.Tick", null],
      [dnAddr, "datanode.internal.Prepare", { vchannel: info.vchannels[0]!.name, gen: 1 }],
      [dnAddr, "datanode.internal.Report", 1n],
      [dnAddr, "actor.Stopped", { address: dnAddr, reason: "stopped" }],
    ];
    for (const [to, type, body] of forged) {
      const err = await failure(ask(outsider, to, type, body, { timeoutMs: 5_000 }));
      expect([type, err.code]).toEqual([type, ErrorCode.ParameterInvalid]);
      expect(err.message).toMatch(/internal/);
    }
    expect(await c.dc("GetRecoveryInfo", { collectionId: info.collectionId })).toEqual(dcBefore);
    expect(await c.dn("dn1", "GetStatus", {})).toEqual(dnBefore);
    expect(await visibleRows(c, info)).toHaveProperty("size", 20);
  });

  it("shows the KV records it cannot read in GetStatus (undecodableRecords) instead of reading them as absent", async () => {
    await using c = await startCluster({});
    const info = await c.createCollection("unreadable", 1);
    const v = info.vchannels[0]!.name;
    const checkpoints = await c.env.meta(CHECKPOINTS_BUCKET);
    const segments = await c.env.meta(SEGMENTS_BUCKET);
    await checkpoints.put(v, Uint8Array.of(0xc1)); // not msgpack
    await segments.put("seg.999", encode({ not: "a segment" }));
    await c.restartDatacoord();
    const st = await c.host.ask<DatacoordStatus>(c.env.subjects.datacoord(), DATACOORD_GET_STATUS, {}, { timeoutMs: 10_000 });
    expect(st.undecodableRecords.map((r) => [r.bucket, r.key]).sort()).toEqual(
      [
        [checkpoints.bucket, v],
        [segments.bucket, "seg.999"],
      ].sort(),
    );
    expect(st.undecodableRecords.every((r) => r.error.length > 0)).toBe(true);
  });

  it("answers malformed requests with 1100 naming the field, and illegal transitions with an error", async () => {
    await using c = await startCluster({});
    await c.startDatanode("dn1");
    const info = await c.createCollection("strict", 1);
    const v = info.vchannels[0]!.name;
    const raw = (to: string, type: string, body: unknown) => c.env.nc && failure(c.nodes.get("dn1")!.host.ask(to, type, body));
    const dcAddr = c.env.subjects.datacoord();
    const dnAddr = c.env.subjects.datanode(asNodeId("dn1"));
    const cases: Array<[string, string, unknown, RegExp]> = [
      [dcAddr, "datacoord.AllocSegment", { collectionId: "x" }, /collectionId/],
      [dcAddr, "datacoord.AllocSegment", { collectionId: info.collectionId, vchannel: v, level: "L2", partitionId: 1n, startPosition: 1n }, /level/],
      [dcAddr, "datacoord.AllocSegment", { collectionId: info.collectionId, vchannel: v, level: "L0", partitionId: 5n, startPosition: 1n }, /partitionId/],
      [dcAddr, "datacoord.SegmentSealed", { segmentId: -4 }, /segmentId/],
      [dcAddr, "datacoord.SaveBinlogPaths", null, /SaveBinlogPaths/],
      [dcAddr, "datacoord.ListSegments", { collectionId: info.collectionId, states: ["Frozen"] }, /states\[0\]/],
      [dcAddr, "datacoord.GetFlushState", { collectionId: info.collectionId, flushPositions: { [v]: "later" } }, /flushPositions/],
      [dcAddr, "datacoord.GetChannelWatches", { nodeId: "a.b" }, /nodeId/],
      [dcAddr, "datacoord.internal.Tick", {}, /internal/],
      [dnAddr, "datanode.WatchDmChannels", { channels: [{ vchannel: "x y" }], sealPolicy: {} }, /channels\[0\]/],
      [dnAddr, "datanode.FlushChannels", { channels: [{ vchannel: v, position: "soon" }] }, /position/],
      [dnAddr, "datanode.UnwatchDmChannels", {}, /vchannels/],
      [dnAddr, "datanode.internal.Dml", { msg: 1 }, /internal/],
    ];
    for (const [to, type, body, field] of cases) {
      const err = await raw(to, type, body);
      expect({ type, code: err.code }).toEqual({ type, code: ErrorCode.ParameterInvalid });
      expect(err.message).toMatch(field);
    }
    // a segment's lifecycle is enforced: no SaveBinlogPaths before it is sealed, no second seal elsewhere
    const seg = await c.dc("AllocSegment", { collectionId: info.collectionId, partitionId: 9n, vchannel: v, level: "L1", startPosition: 1_000_000n });
    expect(await c.dc("AllocSegment", { collectionId: info.collectionId, partitionId: 9n, vchannel: v, level: "L1", startPosition: 1_000_000n })).toEqual(seg);
    const save = { segmentId: seg.segmentId, numRows: 0, binlogs: [], deltalogs: [], statslogs: [], memorySize: 0, checkpoint: { vchannel: v, position: 0n, ts: 0n } };
    expect((await failure(c.dc("SaveBinlogPaths", save))).message).toMatch(/Growing.*SegmentSealed/);
    await c.dc("SegmentSealed", { segmentId: seg.segmentId, endPosition: 1_000_005n, endTs: 1n, numRows: 0 });
    await c.dc("SegmentSealed", { segmentId: seg.segmentId, endPosition: 1_000_005n, endTs: 1n, numRows: 0 }); // repeated: fine
    expect((await failure(c.dc("SegmentSealed", { segmentId: seg.segmentId, endPosition: 1_000_009n, endTs: 1n, numRows: 0 }))).code).toBe(
      ErrorCode.ParameterInvalid,
    );
    // reports from a node that does not hold the vchannel are refused
    const fenced = await failure(c.dc("SaveBinlogPaths", { ...save, nodeId: "dn9" }));
    expect(fenced.code).toBe(ErrorCode.NodeNotMatch);
    await c.dc("SaveBinlogPaths", save);
    expect((await c.dc("GetSegmentInfo", { segmentIds: [seg.segmentId] })).segments[0]!.state).toBe("Flushed");
    expect((await failure(c.dc("GetSegmentInfo", { segmentIds: [123456789n] }))).code).toBe(ErrorCode.SegmentNotFound);
    // both actors still serve
    expect((await c.dn("dn1", "GetStatus", {})).nodeId).toBe("dn1");
  });
});

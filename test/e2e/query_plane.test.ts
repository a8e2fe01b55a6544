import { describe, expect, it } from "vitest";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import type { MetricType } from "../../protocol/messages/querynode.ts";
import { rng } from "../../ops/random_rows.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";
import { waitFor } from "../harness/index.ts";

const DIM = 64;

const schema = (name: string): CollectionSchema => ({
  name,
  fields: [
    { name: "id", type: "Int64", isPrimaryKey: true },
    { name: "category", type: "Int32" },
    { name: "price", type: "Float" },
    { name: "title", type: "VarChar", maxLength: 32 },
    { name: "meta", type: "JSON" },
    { name: "tags", type: "Array", elementType: "Int64", maxCapacity: 4 },
    { name: "vec", type: "FloatVector", dim: DIM },
  ],
});

interface Row {
  id: bigint;
  category: number;
  price: number;
  title: string;
  meta: { k: number; s: string };
  tags: bigint[];
  vec: Float32Array;
}

function makeRow(i: number): Row {
  const r = rng(1000 + i);
  const vec = new Float32Array(DIM);
  for (let j = 0; j < DIM; j++) vec[j] = r() * 2 - 1;
  return {
    id: BigInt(i),
    category: i % 10,
    price: Math.fround(((i * 37) % 1000) / 10),
    title: `t${i % 100}`,
    meta: { k: i % 5, s: `x${i % 3}` },
    tags: [BigInt(i % 4), BigInt(i % 6)],
    vec,
  };
}

function score(metric: MetricType, q: Float32Array, v: Float32Array): number {
  let dot = 0;
  let l2 = 0;
  let nq = 0;
  let nv = 0;
  for (let j = 0; j < q.length; j++) {
    dot += q[j]! * v[j]!;
    const d = q[j]! - v[j]!;
    l2 += d * d;
    nq += q[j]! * q[j]!;
    nv += v[j]! * v[j]!;
  }
  if (metric === "L2") return l2;
  if (metric === "IP") return dot;
  return dot / (Math.sqrt(nq) * Math.sqrt(nv));
}

function bruteTopK(rows: Row[], q: Float32Array, metric: MetricType, k: number, pred?: (r: Row) => boolean): { id: bigint; score: number }[] {
  const scored = rows.filter((r) => !pred || pred(r)).map((r) => ({ id: r.id, score: score(metric, q, r.vec) }));
  scored.sort((a, b) => (metric === "L2" ? a.score - b.score : b.score - a.score));
  return scored.slice(0, k);
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

async function insertRows(tc: TestCluster, name: string, rows: Row[]): Promise<bigint> {
  let ts = 0n;
  for (let off = 0; off < rows.length; off += 5_000) {
    const res = await tc.client.insert({ collectionName: name, rows: rows.slice(off, off + 5_000) as unknown as Record<string, unknown>[] });
    ts = res.timestamp;
  }
  return ts;
}

const count = async (tc: TestCluster, name: string, consistencyLevel: "Strong" | "Session" = "Strong", filter?: string) =>
  (
    await tc.client.query({ collectionName: name, outputFields: ["count(*)"], consistencyLevel, ...(filter ? { filter } : {}) })
  ).rows[0]!["count(*)"] as number;

/** The same tests with the querynodes in this process, and in processes of their own (as pods run them). */
const MODES = [
  { name: "on standalone with 2 querynodes", start: () => startTestCluster({ querynodes: 2 }) },
  { name: "with 2 querynodes in processes of their own", start: () => startTestCluster({ querynodeProcesses: 2 }) },
];

describe.each(MODES)("query plane $name", ({ start }) => {
  it("searches exactly (L2, IP, COSINE, with and without filters), filters exactly, counts exactly", async () => {
    await using tc = await start();
    const rows = Array.from({ length: 50_000 }, (_, i) => makeRow(i));
    await tc.client.createCollection({ schema: schema("exact"), shardsNum: 2 });
    // half flushed (sealed segments), half growing
    await insertRows(tc, "exact", rows.slice(0, 25_000));
    await tc.client.flush({ collectionNames: ["exact"] });
    await tc.client.loadCollection({ collectionName: "exact", replicaNumber: 2, wait: true });
    await insertRows(tc, "exact", rows.slice(25_000));

    expect(await count(tc, "exact")).toBe(50_000);
    const filters: [string, (r: Row) => boolean][] = [
      ["category in [1, 3, 5]", (r) => [1, 3, 5].includes(r.category)],
      ["price >= 20.5 and price < 60", (r) => r.price >= 20.5 && r.price < 60],
      ['title like "t1%"', (r) => r.title.startsWith("t1")],
      ['meta["k"] == 3 or category == 0', (r) => r.meta.k === 3 || r.category === 0],
      ["array_contains(tags, 2) and not (category > 7)", (r) => r.tags.includes(2n) && !(r.category > 7)],
    ];
    for (const [expr, pred] of filters) {
      const res = await tc.client.query({ collectionName: "exact", filter: expr, outputFields: ["id"], consistencyLevel: "Strong" });
      const got = res.rows.map((r) => r.id as bigint).sort((a, b) => (a < b ? -1 : 1));
      const want = rows.filter(pred).map((r) => r.id);
      expect(got, expr).toEqual(want);
      expect(await count(tc, "exact", "Strong", expr)).toBe(want.length);
    }
    const queries = [3, 17_777, 41_000].map((i) => {
      const r = rng(99 + i);
      return Float32Array.from({ length: DIM }, () => r() * 2 - 1);
    });
    for (const metric of ["L2", "IP", "COSINE"] as MetricType[]) {
      for (const [expr, pred] of [[undefined, undefined], filters[0], filters[3]] as [string | undefined, ((r: Row) => boolean) | undefined][]) {
        const res = await tc.client.search({
          collectionName: "exact",
          data: queries,
          limit: 10,
          metricType: metric,
          consistencyLevel: "Strong",
          outputFields: ["category"],
          ...(expr ? { filter: expr } : {}),
        });
        queries.forEach((q, qi) => {
          const want = bruteTopK(rows, q, metric, 10, pred);
          const hits = res.results[qi]!;
          expect(Array.from(hits.ids as BigInt64Array), `${metric} ${expr ?? ""}`).toEqual(want.map((w) => w.id));
          want.forEach((w, i) => expect(Math.abs(hits.scores[i]! - w.score)).toBeLessThan(1e-4 * Math.max(1, Math.abs(w.score))));
          hits.entities.forEach((e, i) => expect(e.category).toBe(rows[Number(want[i]!.id)]!.category));
        });
      }
    }
  });

  it("reads its own writes with Strong and Session, and counts exactly after deletes", async () => {
    await using tc = await start();
    await tc.client.createCollection({ schema: schema("ryw"), shardsNum: 2 });
    await tc.client.loadCollection({ collectionName: "ryw", wait: true });
    for (let i = 0; i < 1_000; i++) {
      const row = makeRow(i);
      const level = i % 2 === 0 ? "Strong" : "Session";
      const w = await tc.client.insert({ collectionName: "ryw", rows: [row as unknown as Record<string, unknown>] });
      if (i % 4 < 2) {
        const q = await tc.client.query({ collectionName: "ryw", ids: [row.id], outputFields: ["title"], consistencyLevel: level, guaranteeTimestamp: w.timestamp });
        expect(q.rows.map((r) => r.id), `row ${i} (${level})`).toEqual([row.id]);
      } else {
        const s = await tc.client.search({ collectionName: "ryw", data: [row.vec], limit: 1, metricType: "L2", consistencyLevel: level, guaranteeTimestamp: w.timestamp });
        expect(s.results[0]!.ids[0], `row ${i} (${level})`).toBe(row.id);
      }
    }
    expect(await count(tc, "ryw")).toBe(1_000);
    await tc.client.delete({ collectionName: "ryw", ids: Array.from({ length: 100 }, (_, i) => BigInt(i * 3)) });
    expect(await count(tc, "ryw")).toBe(900);
    await tc.client.flush({ collectionNames: ["ryw"] });
    await tc.client.delete({ collectionName: "ryw", filter: "category == 1" });
    const left = Array.from({ length: 1_000 }, (_, i) => i).filter((i) => !(i % 3 === 0 && i < 300) && i % 10 !== 1).length;
    expect(await count(tc, "ryw")).toBe(left);
  });

  it("hands off growing rows to flushed segments with no missing or doubled row", async () => {
    await using tc = await start();
    await tc.client.createCollection({ schema: schema("handoff"), shardsNum: 2 });
    await tc.client.loadCollection({ collectionName: "handoff", replicaNumber: 2, wait: true });
    let acked = 0;
    let sent = 0;
    let flushes = 0;
    let stop = false;
    const anomalies: string[] = [];
    const writer = (async () => {
      let next = 0;
      while (flushes < 30) {
        const batch = Array.from({ length: 200 }, () => makeRow(next++));
        sent += batch.length;
        await tc.client.insert({ collectionName: "handoff", rows: batch as unknown as Record<string, unknown>[] });
        acked += batch.length;
        if (next % 600 === 0) {
          await tc.client.flush({ collectionNames: ["handoff"] });
          flushes++;
        }
      }
      stop = true;
    })();
    const reader = (async () => {
      let reads = 0;
      while (!stop) {
        const low = acked;
        const n = await count(tc, "handoff");
        const high = sent;
        reads++;
        if (n < low || n > high) anomalies.push(`count ${n} outside [${low}, ${high}]`);
      }
      return reads;
    })();
    await writer;
    const reads = await reader;
    expect(flushes).toBeGreaterThanOrEqual(30);
    expect(reads).toBeGreaterThan(30);
    expect(anomalies).toEqual([]);
    expect(await count(tc, "handoff")).toBe(acked);
    // after the last flush is handed off, the delegators hold no growing copies of flushed rows
    await tc.client.flush({ collectionNames: ["handoff"] });
    const info = await tc.client.describeCollection({ collectionName: "handoff" });
    await waitFor(
      async () => {
        const st = await tc.client.getStatus({});
        if (st.nodes.reduce((s, n) => s + n.rows, 0) < acked * 2) return false;
        const { shards } = await tc.sa.host.ask<{ shards: { leaders: { address: string }[] }[] }>(
          tc.sa.env.subjects.querycoord(),
          "querycoord.GetShardLeaders",
          { collectionId: info.collectionId },
        );
        const leaders = shards.flatMap((s) => s.leaders);
        if (leaders.length !== 4) return false;
        const growing = await Promise.all(
          leaders.map((l) => tc.sa.host.ask<{ growingRows: number }>(l.address, "delegator.GetStatus", {}).then((g) => g.growingRows)),
        );
        return growing.every((g) => g === 0);
      },
      { timeoutMs: 30_000, what: "sealed copies of every row in both replicas and no growing rows left" },
    );
    expect(await count(tc, "handoff")).toBe(acked);
    // the nodes' row counts (what placement weighs) hold every row once a replica, growing or sealed
    await waitFor(async () => (await tc.client.getStatus({})).nodes.reduce((s, n) => s + n.rows, 0) === acked * 2, {
      what: "node rows to settle at two copies of every row",
    });
  });

  it("counts a delegator's growing rows and their memory in its node's load, once", async () => {
    await using tc = await start();
    await tc.client.createCollection({ schema: schema("growing_load"), shardsNum: 2 });
    await tc.client.loadCollection({ collectionName: "growing_load", wait: true });
    const sum = async () => {
      const st = await tc.client.getStatus({});
      return { rows: st.nodes.reduce((s, n) => s + n.rows, 0), bytes: st.nodes.reduce((s, n) => s + n.memoryBytes, 0) };
    };
    const before = await sum();
    expect(before.rows).toBe(0);
    await tc.client.insert({ collectionName: "growing_load", rows: Array.from({ length: 1_500 }, (_, i) => makeRow(i)) as unknown as Record<string, unknown>[] });
    await waitFor(async () => (await sum()).rows === 1_500, { what: "the growing rows in the nodes' row counts" });
    // 1,500 rows of a 64-dim vector and a few scalars: well over 48 KB
    expect((await sum()).bytes - before.bytes).toBeGreaterThan(1_500 * 32);
    await tc.client.flush({ collectionNames: ["growing_load"] });
    await waitFor(async () => {
      const st = await tc.client.getStatus({});
      return st.nodes.reduce((s, n) => s + n.segments, 0) > 0 && (await sum()).rows === 1_500;
    }, { timeoutMs: 30_000, what: "the rows counted once after the handoff to sealed segments" });
  });

  it("reports load states: 101 after release, Loaded for an empty collection, monotonic progress", async () => {
    await using tc = await start();
    await tc.client.createCollection({ schema: schema("empty") });
    await tc.client.loadCollection({ collectionName: "empty", wait: true });
    expect((await tc.client.getLoadState({ collectionName: "empty" })).state).toBe("Loaded");
    expect(await count(tc, "empty")).toBe(0);

    await tc.client.createCollection({ schema: schema("states"), shardsNum: 2 });
    await insertRows(tc, "states", Array.from({ length: 20_000 }, (_, i) => makeRow(i)));
    await tc.client.flush({ collectionNames: ["states"] });
    const notLoaded = await refusal(tc.client.search({ collectionName: "states", data: [new Float32Array(DIM)], limit: 3 }));
    expect(notLoaded.code).toBe(ErrorCode.CollectionNotLoaded);
    await tc.client.loadCollection({ collectionName: "states", replicaNumber: 2 });
    const seen: number[] = [];
    for (;;) {
      const p = await tc.client.getLoadingProgress({ collectionName: "states" });
      seen.push(p.progress);
      if (p.state === "Loaded") break;
      try {
        await tc.client.search({ collectionName: "states", data: [new Float32Array(DIM)], limit: 3, consistencyLevel: "Eventually" });
      } catch (err) {
        // a search during the load either answers or says the collection is not fully loaded yet
        expect((err as VbError).code).toBe(ErrorCode.CollectionNotFullyLoaded);
      }
    }
    expect(seen.at(-1)).toBe(100);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    expect(await count(tc, "states")).toBe(20_000);
    await tc.client.releaseCollection({ collectionName: "states" });
    const released = await refusal(tc.client.query({ collectionName: "states", outputFields: ["count(*)"] }));
    expect(released.code).toBe(ErrorCode.CollectionNotLoaded);
  });

  it("refuses bad expressions, unknown fields and bad limits with 1100", async () => {
    await using tc = await startTestCluster();
    await tc.client.createCollection({ schema: schema("bad") });
    await tc.client.loadCollection({ collectionName: "bad", wait: true });
    const cases: [Promise<unknown>, RegExp][] = [
      [tc.client.query({ collectionName: "bad", filter: "category ==", outputFields: ["id"] }), /filter/i],
      [tc.client.query({ collectionName: "bad", filter: "colour == 1", outputFields: ["id"] }), /colour/],
      [tc.client.query({ collectionName: "bad", filter: 'title > 3', outputFields: ["id"] }), /title/],
      [tc.client.query({ collectionName: "bad", filter: "id > 1", outputFields: ["nope"] }), /nope/],
      [tc.client.search({ collectionName: "bad", data: [new Float32Array(DIM)], limit: 16_000, offset: 1_000 }), /16384/],
      [tc.client.search({ collectionName: "bad", data: [new Float32Array(DIM - 1)], limit: 3 }), /dim/],
    ];
    for (const [p, re] of cases) {
      const err = await refusal(p);
      expect(err.code).toBe(ErrorCode.ParameterInvalid);
      expect(err.message).toMatch(re);
    }
  });

  it("groups hits by a field (the best hit of each of the best `limit` groups), and searches a range", async () => {
    await using tc = await startTestCluster();
    const rows = Array.from({ length: 6_000 }, (_, i) => makeRow(i));
    await tc.client.createCollection({ schema: schema("grouped"), shardsNum: 2 });
    await insertRows(tc, "grouped", rows.slice(0, 3_000));
    await tc.client.flush({ collectionNames: ["grouped"] });
    await tc.client.loadCollection({ collectionName: "grouped", wait: true });
    await insertRows(tc, "grouped", rows.slice(3_000));
    for (const qi of [1, 2, 3]) {
      const r = rng(4_000 + qi);
      const q = Float32Array.from({ length: DIM }, () => r() * 2 - 1);
      const res = await tc.client.search({
        collectionName: "grouped",
        data: [q],
        limit: 3,
        metricType: "L2",
        groupByField: "category",
        consistencyLevel: "Strong",
      });
      const best = new Map<number, { id: bigint; score: number }>();
      for (const row of rows) {
        const sc = score("L2", q, row.vec);
        const b = best.get(row.category);
        if (!b || sc < b.score) best.set(row.category, { id: row.id, score: sc });
      }
      const want = [...best.entries()].sort((a, b) => a[1].score - b[1].score).slice(0, 3);
      const hits = res.results[0]!;
      expect(Array.from(hits.ids as BigInt64Array)).toEqual(want.map(([, b]) => b.id));
      expect(hits.entities.map((e) => e.category)).toEqual(want.map(([c]) => c));
    }
    // range search: L2 keeps range_filter <= distance < radius
    const rq = rows[42]!.vec;
    const dists = rows.map((row) => ({ id: row.id, d: score("L2", rq, row.vec) })).sort((a, b) => a.d - b.d);
    const radius = (dists[20]!.d + dists[21]!.d) / 2;
    const rangeFilter = (dists[4]!.d + dists[5]!.d) / 2;
    const ranged = await tc.client.search({
      collectionName: "grouped",
      data: [rq],
      limit: 100,
      metricType: "L2",
      searchParams: { radius, range_filter: rangeFilter },
      consistencyLevel: "Strong",
    });
    expect(Array.from(ranged.results[0]!.ids as BigInt64Array)).toEqual(dists.slice(5, 21).map((x) => x.id));
    const bad = await refusal(
      tc.client.search({ collectionName: "grouped", data: [new Float32Array(DIM)], limit: 3, groupByField: "price" }),
    );
    expect(bad.code).toBe(ErrorCode.ParameterInvalid);
    expect(bad.message).toMatch(/group_by_field "price" is a Float field/);
  });
});

import { describe, expect, it } from "vitest";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import type { SegmentDescription } from "../../protocol/messages/segment.ts";
import { segmentTestHooks } from "../../actors/segment/test_hooks.ts";
import { rng } from "../../ops/random_rows.ts";
import { listActors, type ListedActor } from "../../ops/actors.ts";
import { ask } from "../../runtime/ask.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";
import { connectTest, waitFor } from "../harness/index.ts";

const DIM = 8;

const schema = (name: string): CollectionSchema => ({
  name,
  fields: [
    { name: "id", type: "Int64", isPrimaryKey: true },
    { name: "tag", type: "Int32" },
    { name: "vec", type: "FloatVector", dim: DIM },
  ],
});

function rowsFrom(from: number, n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const r = rng(7 + i);
    return { id: BigInt(i), tag: i % 7, vec: Float32Array.from({ length: DIM }, () => r() * 2 - 1) };
  });
}

const count = async (tc: TestCluster, name: string) =>
  (await tc.client.query({ collectionName: name, outputFields: ["count(*)"], consistencyLevel: "Strong" })).rows[0]!["count(*)"] as number;

/** The segment actors of one collection, found the way `vbus actors --kind segment --json` finds them. */
async function segmentActors(nc: NatsConnection, tc: TestCluster, collectionId: bigint): Promise<ListedActor[]> {
  const all = await listActors(nc, { prefix: tc.config.prefix, kind: "segment" });
  return all.filter((a) => a.collection === String(collectionId));
}

async function describeAll(nc: NatsConnection, actors: ListedActor[]): Promise<SegmentDescription[]> {
  return Promise.all(actors.map((a) => ask<SegmentDescription>(nc, a.address, "segment.Describe", {}, { timeoutMs: 5_000 })));
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

describe("segment actors", () => {
  it("are listed, answer Describe from any connection with rows summing to count(*), and stop on release", async () => {
    await using tc = await startTestCluster({ querynodes: 2 });
    await using nc = await connectTest();
    await tc.client.createCollection({ schema: schema("segs"), shardsNum: 2 });
    const { collectionId } = await tc.client.describeCollection({ collectionName: "segs" });
    await tc.client.insert({ collectionName: "segs", rows: rowsFrom(0, 3_000) });
    await tc.client.flush({ collectionNames: ["segs"] });
    await tc.client.loadCollection({ collectionName: "segs", wait: true });
    // growing rows beside the sealed ones, and deletes in both
    await tc.client.insert({ collectionName: "segs", rows: rowsFrom(3_000, 1_000) });
    await tc.client.delete({ collectionName: "segs", ids: Array.from({ length: 50 }, (_, i) => BigInt(i * 61)) });
    const total = await count(tc, "segs");
    expect(total).toBe(4_000 - 50);

    const described = await waitFor(
      async () => {
        const actors = await segmentActors(nc, tc, collectionId);
        const ds = await describeAll(nc, actors);
        const sum = ds.reduce((a, d) => a + d.rows, 0);
        return sum === total && ds.some((d) => d.state === "Growing") ? { actors, ds } : undefined;
      },
      { what: "segment actors whose rows sum to count(*)" },
    );
    const sealed = described.ds.filter((d) => d.state === "Sealed");
    expect(sealed.length).toBeGreaterThan(0);
    for (const d of described.ds) {
      expect(d.collectionId).toBe(collectionId);
      expect(["qn1", "qn2"]).toContain(d.nodeId);
    }
    for (const a of described.actors) {
      expect(a.address.startsWith(`${tc.config.prefix}.seg.${a.node}.`)).toBe(true);
      expect(a.rows).toBeDefined();
    }

    // a segment answers a search asked at its address, from another connection
    const s = described.actors.find((a) => a.state === "Sealed")!;
    const spec = {
      collectionId,
      annsFieldId: (await tc.client.describeCollection({ collectionName: "segs" })).schema.fields.find((f) => f.name === "vec")!.fieldId!,
      metric: "L2",
      queries: new Float32Array(DIM),
      nq: 1,
      topk: 5,
      partitionIds: [],
      outputFieldIds: [],
    };
    const res = await ask<{ nq: number; hits: { ids: BigInt64Array }[] }>(nc, s.address, "segment.Search", { spec, readPosition: 1n << 40n });
    expect(res.hits[0]!.ids.length).toBe(5);
    // a malformed read is refused with 1100; the segment goes on serving
    expect((await refusal(ask(nc, s.address, "segment.Search", { spec: { ...spec, queries: [1, 2] }, readPosition: 1n }))).code).toBe(ErrorCode.ParameterInvalid);

    // the delegator's private feed cannot be reached from outside
    const g = described.actors.find((a) => a.state === "Growing")!;
    const forged = [
      [g.address, "segment.internal.Insert", { position: 1n, numRows: 1, columns: [], pks: BigInt64Array.of(999_999n), partitionId: 1n, ts: 1n }],
      [g.address, "segment.internal.Drop", {}],
      [s.address, "actor.Stopped", { address: s.address, reason: "failed" }],
    ] as const;
    for (const [address, type, body] of forged) {
      expect((await refusal(ask(nc, address, type, body))).code, type).toBe(ErrorCode.ParameterInvalid);
    }
    expect(await count(tc, "segs")).toBe(total);

    await tc.client.releaseCollection({ collectionName: "segs" });
    await waitFor(async () => (await segmentActors(nc, tc, collectionId)).length === 0, { what: "no segment actor after release" });
    await tc.client.loadCollection({ collectionName: "segs", wait: true });
    await waitFor(
      async () => {
        const ds = await describeAll(nc, await segmentActors(nc, tc, collectionId));
        return ds.length > 0 && ds.reduce((a, d) => a + d.rows, 0) === total;
      },
      { what: "segment actors back after a reload" },
    );
    expect(await count(tc, "segs")).toBe(total);
  });

  it("restarts a crashed segment actor over its data while searches go on, and reloads one that cannot restart", async () => {
    await using tc = await startTestCluster({ querynodes: 1 });
    await using nc = await connectTest();
    await tc.client.createCollection({ schema: schema("crash"), shardsNum: 1 });
    const { collectionId } = await tc.client.describeCollection({ collectionName: "crash" });
    const rows = rowsFrom(0, 2_000);
    await tc.client.insert({ collectionName: "crash", rows });
    await tc.client.flush({ collectionNames: ["crash"] });
    await tc.client.loadCollection({ collectionName: "crash", wait: true });
    const sealed = await waitFor(async () => {
      const ds = await describeAll(nc, await segmentActors(nc, tc, collectionId));
      const s = ds.filter((d) => d.state === "Sealed");
      return s.length > 0 && s.reduce((a, d) => a + d.rows, 0) === 2_000 ? s : undefined;
    });
    const victim = sealed[0]!;
    const address = `${tc.config.prefix}.seg.${victim.nodeId}.${victim.segment}`;

    // a crash in the middle of searches: the segment restarts over its columns, every search succeeds
    segmentTestHooks.crashOnSearch.add(victim.segment);
    const q = rows[123]!.vec as Float32Array;
    const searches = await Promise.all(
      Array.from({ length: 20 }, () => tc.client.search({ collectionName: "crash", data: [q], limit: 3, metricType: "L2", consistencyLevel: "Strong" })),
    );
    for (const r of searches) expect(r.results[0]!.ids[0]).toBe(123n);
    expect(segmentTestHooks.crashOnSearch.has(victim.segment)).toBe(false);
    const after = await ask<SegmentDescription>(nc, address, "segment.Describe", {});
    expect(after.restarts).toBe(1);
    expect(after.rows).toBe(victim.rows);
    expect(await count(tc, "crash")).toBe(2_000);

    // one that cannot start again is released; querycoord loads it again and counts come back exact
    segmentTestHooks.refuseRestart.add(victim.segment);
    segmentTestHooks.crashOnSearch.add(victim.segment);
    await tc.client.search({ collectionName: "crash", data: [q], limit: 3, metricType: "L2", consistencyLevel: "Eventually" }).catch(() => undefined);
    try {
      await waitFor(
        async () => {
          const d = await ask<SegmentDescription>(nc, address, "segment.Describe", {}, { timeoutMs: 1_000 });
          return d.restarts === 0; // a new actor over a fresh load
        },
        { timeoutMs: 30_000, what: "the segment released and loaded again" },
      );
    } finally {
      segmentTestHooks.refuseRestart.delete(victim.segment);
      segmentTestHooks.crashOnSearch.delete(victim.segment);
    }
    await waitFor(async () => (await count(tc, "crash")) === 2_000, { timeoutMs: 30_000, what: "an exact count after the reload" });
    const res = await tc.client.search({ collectionName: "crash", data: [q], limit: 3, metricType: "L2", consistencyLevel: "Strong" });
    expect(res.results[0]!.ids[0]).toBe(123n);
  });
});

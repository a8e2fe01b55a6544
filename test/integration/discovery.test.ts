/**
 * NATS service discovery on a standalone: the micro protocol's PING, INFO and STATS answered with one
 * service per actor kind, as a micro client (@nats-io/services) and `vbus actors` see them. The suite's
 * nats-server is shared with other test files, so only the services of this test's prefix are counted.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Svcm, type ServiceIdentity as SvcIdentity, type ServiceInfo as SvcInfo, type ServiceStats as SvcStats } from "@nats-io/services";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../protocol/errors.ts";
import { Actor } from "../../runtime/actor.ts";
import { discover, startDiscovery, type ServiceIdentity, type ServiceInfo } from "../../runtime/discovery.ts";
import { ActorHost } from "../../runtime/host.ts";
import { VB_VERSION } from "../../ops/config.ts";
import { listActors, formatActors } from "../../ops/actors.ts";
import { connectTest, uniquePrefix } from "../harness/index.ts";
import { startTestCluster } from "../harness/standalone.ts";

const ROLES = ["rootcoord", "datacoord", "datanode", "querycoord", "querynode", "proxy"];

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe("NATS service discovery", () => {
  it("answers PING, INFO and STATS with one service per actor kind, as a micro client and `vbus actors` see them", async () => {
    await using tc = await startTestCluster();
    await using nc = await connectTest();
    const prefix = tc.config.prefix;
    const ours = <T extends { metadata?: Record<string, string> | null }>(xs: T[]) => xs.filter((x) => x.metadata?.prefix === prefix);
    const hosted = tc.sa.host.actors();
    const kinds = [...new Set(hosted.map((a) => a.kind))].sort();
    for (const role of ROLES) expect(kinds).toContain(role);
    const names = kinds.map((k) => `vectorbus-${k}`);
    const id = tc.sa.discovery.id;

    // the protocol itself: one PING response per kind, in the micro spec's shape
    const pings = ours(await discover<ServiceIdentity>(nc, "PING"));
    expect(pings.map((p) => p.name).sort()).toEqual(names);
    for (const p of pings) {
      expect(p).toEqual({
        type: "io.nats.micro.v1.ping_response",
        name: p.name,
        id,
        version: VB_VERSION,
        metadata: { process: expect.stringMatching(/:\d+$/), pid: String(process.pid), host: expect.any(String), node: "standalone", prefix },
      });
    }
    // `.<name>` and `.<name>.<id>` reach only that service; another id, nothing
    const qnInfo = await discover<ServiceInfo>(nc, "INFO", { name: "vectorbus-querynode", id });
    expect(qnInfo).toHaveLength(1);
    expect(qnInfo[0]).toMatchObject({ type: "io.nats.micro.v1.info_response", name: "vectorbus-querynode", id, description: expect.any(String) });
    expect(qnInfo[0]!.endpoints).toEqual([
      { name: `${prefix}_qn_qn1`, subject: `${prefix}.qn.qn1`, queue_group: "", metadata: { kind: "querynode" } },
    ]);
    expect(await discover(nc, "INFO", { name: "vectorbus-querynode", id: "0000", maxMs: 500 })).toEqual([]);

    // a micro client: the same services, every hosted actor an endpoint at its address
    // (@nats-io/services 3.0.0-25 is typed against its own nats-core pre-release; the connection is the same)
    const svc = new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]).client();
    const clientPings = ours<SvcIdentity>(await all(await svc.ping()));
    expect(clientPings.map((p) => p.name).sort()).toEqual(names);
    expect(new Set(clientPings.map((p) => p.id))).toEqual(new Set([id]));
    const infos = ours<SvcInfo>(await all(await svc.info()));
    expect(infos.map((i) => i.name).sort()).toEqual(names);
    const endpoints = infos.flatMap((i) => i.endpoints.map((e) => ({ service: i.name, ...e })));
    expect(endpoints.map((e) => e.subject).sort()).toEqual(hosted.map((a) => a.address).sort());
    expect(endpoints.find((e) => e.subject === `${prefix}.proxy`)).toEqual({
      service: "vectorbus-proxy",
      name: `${prefix}_proxy`,
      subject: `${prefix}.proxy`,
      queue_group: `${prefix}-proxy`,
      metadata: { kind: "proxy" },
    });
    for (const role of ["rootcoord", "datacoord", "querycoord"]) {
      expect(endpoints.find((e) => e.service === `vectorbus-${role}`)?.subject).toBe(`${prefix}.${role}`);
    }

    // STATS counts the requests an actor handled and the ones it refused
    await tc.client.listCollections({});
    const missing = await tc.client.describeCollection({ collectionName: "nope" }).catch((e: unknown) => e as { code: number });
    expect(missing).toMatchObject({ code: ErrorCode.CollectionNotFound });
    const stats = await all(await svc.stats("vectorbus-proxy", id));
    expect(stats).toHaveLength(1);
    const proxyStats = stats[0] as SvcStats;
    expect(proxyStats).toMatchObject({ type: "io.nats.micro.v1.stats_response", name: "vectorbus-proxy", id, version: VB_VERSION });
    expect(Date.parse(proxyStats.started)).not.toBeNaN();
    const ep = proxyStats.endpoints![0]!;
    expect(ep).toMatchObject({ name: `${prefix}_proxy`, subject: `${prefix}.proxy`, queue_group: `${prefix}-proxy` });
    expect(ep.num_requests).toBeGreaterThanOrEqual(2);
    expect(ep.num_errors).toBeGreaterThanOrEqual(1);
    expect(ep.last_error).toContain("nope");
    for (const f of ["processing_time", "average_processing_time"] as const) expect(Number.isInteger(ep[f])).toBe(true);

    // `vbus actors`: the function, and the command against this test's NATS
    const listed = await listActors(nc, { prefix });
    expect(listed.map((a) => a.address).sort()).toEqual(hosted.map((a) => a.address).sort());
    const qn = listed.find((a) => a.kind === "querynode");
    expect(qn).toEqual({ kind: "querynode", address: `${prefix}.qn.qn1`, process: pings[0]!.metadata.process, node: "standalone" });
    for (const role of ["rootcoord", "datacoord", "querycoord"]) {
      expect(listed.find((a) => a.kind === role)?.address).toBe(`${prefix}.${role}`);
    }
    expect(formatActors(listed)).toMatch(new RegExp(`^querynode +${prefix}\\.qn\\.qn1 +\\S+:\\d+ +standalone$`, "m"));

    const vbus = (...args: string[]) =>
      promisify(execFile)(process.execPath, ["ops/vbus.mjs", "actors", "--nats", tc.config.natsUrl!, "--prefix", prefix, ...args], {
        cwd: process.cwd(),
        timeout: 60_000,
        env: { ...process.env, VB_LOG_LEVEL: "warn" },
      });
    const json = JSON.parse((await vbus("--json")).stdout) as Record<string, string>[];
    expect(json.map((a) => a.address).sort()).toEqual(listed.map((a) => a.address).sort());
    expect(json.find((a) => a.kind === "querynode")).toEqual(qn);
    const onlyQn = (await vbus("--kind", "querynode")).stdout.trim().split("\n");
    expect(onlyQn).toHaveLength(2);
    expect(onlyQn[1]).toMatch(new RegExp(`^querynode +${prefix}\\.qn\\.qn1 `));
  }, 120_000);

  it("lists what actors describe (a segment's collection, rows and indexes), across several messages when one would pass max_payload", async () => {
    await using nc = await connectTest();
    const prefix = uniquePrefix("d");
    const host = new ActorHost(nc, { nodeId: "qn7" });
    const discovery = startDiscovery(host, { version: "1.2.3", metadata: { prefix } });
    try {
      class Quiet extends Actor {
        override receive() {}
      }
      // enough segments that their INFO (≈ 400 bytes an endpoint) passes the suite server's 1 MiB payload
      const n = 3_000;
      const note = "x".repeat(300);
      for (let i = 0; i < n; i++) {
        await host.spawn({
          address: `${prefix}.seg.qn7.${i}`,
          route: `${prefix}.seg.qn7.*`,
          kind: "segment",
          describe: () => ({ collection: "books", rows: String(i * 10), indexes: i % 2 ? "HNSW" : "", note }),
          create: () => new Quiet(),
        });
      }
      await host.spawn({ address: `${prefix}.other`, kind: "other", create: () => new Quiet() });

      const infos = await discover<ServiceInfo>(nc, "INFO", { name: "vectorbus-segment", id: discovery.id });
      expect(infos.length).toBeGreaterThan(1);
      expect(infos.reduce((sum, i) => sum + i.endpoints.length, 0)).toBe(n);
      expect(infos[0]!.endpoints[1]).toEqual({
        name: `${prefix}_seg_qn7_1`,
        subject: `${prefix}.seg.qn7.1`,
        queue_group: "",
        metadata: { collection: "books", rows: "10", indexes: "HNSW", note, kind: "segment" },
      });

      const segments = await listActors(nc, { prefix, kind: "segment" });
      expect(segments).toHaveLength(n);
      expect(segments[2]).toEqual({
        kind: "segment",
        address: `${prefix}.seg.qn7.2`,
        process: expect.stringMatching(/:\d+$/),
        node: "qn7",
        collection: "books",
        rows: "20",
        indexes: "",
        note,
      });
      const all = await listActors(nc, { prefix });
      expect(all.map((a) => a.kind)).toEqual([`other`, ...Array.from({ length: n }, () => "segment")]);
      const table = formatActors(all).split("\n");
      expect(table[0]).toMatch(/^KIND +ADDRESS +PROCESS +NODE +COLLECTION +ROWS +INDEXES$/);
      expect(table[3]).toMatch(new RegExp(`^segment +${prefix}\\.seg\\.qn7\\.1 +\\S+ +qn7 +books +10 +HNSW$`));
    } finally {
      discovery.stop();
      await host.stop();
    }
  }, 120_000);
});

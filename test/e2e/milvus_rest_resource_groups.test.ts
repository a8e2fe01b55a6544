/**
 * Milvus's REST v2 resource group endpoints (`/v2/vectordb/resource_groups/*`) against a standalone with
 * two querynodes through the Milvus front door: a group created with a config takes its node from the
 * default group and describes itself in Milvus's shape, alter gives the node back, drop removes it;
 * transfer_replica moves a loaded collection's replica (it keeps answering) and refuses what it cannot
 * do; bad bodies get code 1100 naming the field, with HTTP 200, as Milvus answers.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMilvusFrontDoor, type MilvusFrontDoor } from "../../actors/front/server.ts";
import { ErrorCode } from "../../protocol/errors.ts";
import { waitFor } from "../harness/index.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";

const DEFAULT_RG = "__default_resource_group";

type Reply = { code: number; message?: string; data?: unknown; resource_group?: unknown };
type Group = {
  name: string;
  capacity: number;
  num_available_node: number;
  num_loaded_replica: Record<string, number>;
  config: { requests: { node_num: number }; limits: { node_num: number }; transfer_from: { resource_group: string }[]; transfer_to: { resource_group: string }[] };
  nodes: { node_id: number; address: string; hostname: string }[];
};

describe("Milvus REST v2 resource groups against the Milvus front door", () => {
  let tc: TestCluster;
  let door: MilvusFrontDoor;

  const post = async (path: string, body: unknown): Promise<Reply> => {
    const res = await fetch(`http://127.0.0.1:${door.port}/v2/vectordb/${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return (await res.json()) as Reply;
  };
  const ok = async (path: string, body: unknown): Promise<unknown> => {
    const r = await post(path, body);
    expect(r.message ?? "").toBe("");
    expect(r.code).toBe(0);
    return r.data;
  };
  const refused = async (path: string, body: unknown, code: number, says: string) => {
    const r = await post(path, body);
    expect(r.code).toBe(code);
    expect(r.message).toContain(says);
  };
  const group = async (name: string) => ((await ok("resource_groups/describe", { name })) as { resource_group: Group }).resource_group;
  const nodesOf = async (name: string) => (await group(name)).nodes.map((n) => n.address);

  beforeAll(async () => {
    tc = await startTestCluster({ querynodes: 2, cluster: { heartbeatIntervalMs: 200 } });
    door = await startMilvusFrontDoor({ port: 0, host: "127.0.0.1", nc: tc.sa.nc, prefix: tc.config.prefix, actorHost: tc.sa.host, serverVersion: "test" });
    await waitFor(async () => (await tc.client.getStatus({})).nodes.filter((n) => n.alive).length === 2, { timeoutMs: 30_000, what: "2 querynodes up" });
  }, 120_000);

  afterAll(async () => {
    await door?.close();
    await tc?.stop();
  });

  it("creates a group that takes its node, describes it in Milvus's shape, lists, alters and drops it", { timeout: 120_000 }, async () => {
    expect(await ok("resource_groups/list", {})).toEqual([DEFAULT_RG]);
    const all = await nodesOf(DEFAULT_RG);
    expect(all).toHaveLength(2);

    const config = { requests: { node_num: 1 }, limits: { node_num: 1 }, transfer_from: [{ resource_group: DEFAULT_RG }], transfer_to: [] };
    expect(await ok("resource_groups/create", { name: "rg_rest", config })).toEqual({});
    await waitFor(async () => (await nodesOf("rg_rest")).length === 1, { timeoutMs: 30_000, what: "rg_rest took a node" });
    const reply = await post("resource_groups/describe", { name: "rg_rest" });
    const g = (reply.data as { resource_group: Group }).resource_group;
    const node = g.nodes[0]!.address;
    expect(g).toEqual({
      name: "rg_rest",
      capacity: 1,
      num_available_node: 1,
      num_loaded_replica: {},
      num_outgoing_node: {},
      num_incoming_node: {},
      config,
      nodes: [{ node_id: Number(/(\d+)$/.exec(node)![1]), address: node, hostname: node }],
    });
    // Milvus's own handler answers the group at the top level: it is there too
    expect(reply.resource_group).toEqual(g);
    expect(all).toContain(node);
    expect(await nodesOf(DEFAULT_RG)).toEqual(all.filter((n) => n !== node));
    expect(await ok("resource_groups/list", {})).toEqual([DEFAULT_RG, "rg_rest"]);

    // {} for requests and limits is node_num 0, as Milvus binds it: the node goes back to the default group
    expect(await ok("resource_groups/alter", { resource_groups: { rg_rest: { requests: {}, limits: {} } } })).toEqual({});
    await waitFor(async () => (await nodesOf("rg_rest")).length === 0 && (await nodesOf(DEFAULT_RG)).length === 2, { timeoutMs: 30_000, what: "the node back in the default group" });
    expect((await group("rg_rest")).config).toEqual({ requests: { node_num: 0 }, limits: { node_num: 0 }, transfer_from: [], transfer_to: [] });

    expect(await ok("resource_groups/drop", { name: "rg_rest" })).toEqual({});
    expect(await ok("resource_groups/list", {})).toEqual([DEFAULT_RG]);
    await refused("resource_groups/describe", { name: "rg_rest" }, ErrorCode.ResourceGroupNotFound, `"rg_rest"`);
  });

  it("moves a loaded collection's replica with transfer_replica, and refuses a transfer it cannot do", { timeout: 180_000 }, async () => {
    const name = "rg_rest_books";
    await ok("resource_groups/create", { name: "rg_one", config: { requests: { node_num: 1 }, limits: { node_num: 1 } } });
    await ok("resource_groups/create", { name: "rg_none", config: { requests: { node_num: 0 }, limits: { node_num: 0 } } });
    await waitFor(async () => (await nodesOf("rg_one")).length === 1, { timeoutMs: 30_000, what: "rg_one took a node" });
    // quick setup: indexed and loaded, one replica in the default group
    await ok("collections/create", { collectionName: name, dimension: 4 });
    const rows = Array.from({ length: 50 }, (_, i) => ({ id: i, vector: [i, 1, 0, -1] }));
    expect(((await ok("entities/insert", { collectionName: name, data: rows })) as { insertCount: number }).insertCount).toBe(50);
    const count = async () => ((await ok("entities/query", { collectionName: name, filter: "", outputFields: ["count(*)"], consistencyLevel: "Strong" })) as Record<string, number>[])[0]!["count(*)"];
    expect(await count()).toBe(50);
    expect((await group(DEFAULT_RG)).num_loaded_replica).toEqual({ [name]: 1 });

    // a group without nodes cannot take a replica; a group without a replica has none to give; a group must exist
    await refused("resource_groups/transfer_replica", { sourceRgName: DEFAULT_RG, targetRgName: "rg_none", collectionName: name, replicaNum: 1 }, ErrorCode.ResourceInsufficient, `"rg_none" has 0 querynode(s)`);
    await refused("resource_groups/transfer_replica", { sourceRgName: "rg_one", targetRgName: DEFAULT_RG, collectionName: name, replicaNum: 1 }, ErrorCode.ParameterInvalid, `has 0 replica(s) in resource group "rg_one"`);
    await refused("resource_groups/transfer_replica", { sourceRgName: DEFAULT_RG, targetRgName: "rg_nowhere", collectionName: name, replicaNum: 1 }, ErrorCode.ResourceGroupNotFound, `"rg_nowhere"`);
    await refused("resource_groups/transfer_replica", { sourceRgName: DEFAULT_RG, targetRgName: "rg_one", collectionName: "no_books", replicaNum: 1 }, ErrorCode.CollectionNotFound, "no_books");
    expect((await group(DEFAULT_RG)).num_loaded_replica).toEqual({ [name]: 1 });

    expect(await ok("resource_groups/transfer_replica", { sourceRgName: DEFAULT_RG, targetRgName: "rg_one", collectionName: name, replicaNum: 1 })).toEqual({});
    await waitFor(async () => JSON.stringify((await group("rg_one")).num_loaded_replica) === JSON.stringify({ [name]: 1 }), { timeoutMs: 30_000, what: "the replica in rg_one" });
    expect((await group(DEFAULT_RG)).num_loaded_replica).toEqual({});
    await waitFor(async () => JSON.stringify((await tc.client.getStatus({})).collections.flatMap((c) => c.replicas.map((r) => r.nodes))) === JSON.stringify([await nodesOf("rg_one")]), {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: "the replica on rg_one's node only",
    });
    expect((await tc.client.getStatus({})).collections.flatMap((c) => c.replicas.map((r) => r.resourceGroup))).toEqual(["rg_one"]);
    expect(await count()).toBe(50);
    // a group that holds a replica cannot be dropped
    await refused("resource_groups/drop", { name: "rg_one" }, ErrorCode.ParameterInvalid, `"rg_one" still holds 1 replica(s) of ${name}`);

    await ok("collections/drop", { collectionName: name });
    await ok("resource_groups/alter", { resource_groups: { rg_one: { requests: { node_num: 0 }, limits: { node_num: 0 } } } });
    await ok("resource_groups/drop", { name: "rg_one" });
    await ok("resource_groups/drop", { name: "rg_none" });
    expect(await ok("resource_groups/list", {})).toEqual([DEFAULT_RG]);
  });

  it("refuses bad bodies with code 1100 naming the field, and creates nothing", { timeout: 60_000 }, async () => {
    await refused("resource_groups/create", {}, ErrorCode.ParameterInvalid, `resource_groups/create: field "name" is missing`);
    await refused("resource_groups/create", { name: "rg_bad", config: { limits: { node_num: 1 } } }, ErrorCode.ParameterInvalid, `field "config.requests" is missing`);
    await refused("resource_groups/create", { name: "rg_bad", config: { requests: { node_num: 1.5 }, limits: { node_num: 2 } } }, ErrorCode.ParameterInvalid, `config.requests: field "node_num" must be an integer`);
    await refused("resource_groups/create", { name: "rg_bad", config: { requests: {}, limits: {}, transfer_to: [{}] } }, ErrorCode.ParameterInvalid, `config.transfer_to[0]: field "resource_group" is missing`);
    // a config the query coordinator refuses: limits below requests
    await refused("resource_groups/create", { name: "rg_bad", config: { requests: { node_num: 2 }, limits: { node_num: 1 } } }, ErrorCode.ParameterInvalid, "limits.node_num (1) must not be below requests.node_num (2)");
    await refused("resource_groups/alter", {}, ErrorCode.ParameterInvalid, `field "resource_groups" is missing`);
    await refused("resource_groups/alter", { resource_groups: { [DEFAULT_RG]: null } }, ErrorCode.ParameterInvalid, `resource_groups.${DEFAULT_RG} must be an object`);
    await refused("resource_groups/describe", { name: "" }, ErrorCode.ParameterInvalid, `field "name" must not be empty`);
    await refused("resource_groups/drop", { name: DEFAULT_RG }, ErrorCode.ParameterInvalid, "cannot be dropped");
    await refused("resource_groups/transfer_replica", {}, ErrorCode.ParameterInvalid, `field "collectionName" is missing`);
    await refused("resource_groups/transfer_replica", { sourceRgName: DEFAULT_RG, targetRgName: "rg_x", collectionName: "c", replicaNum: 0 }, ErrorCode.ParameterInvalid, `field "replicaNum" must be an integer ≥ 1`);
    // Milvus's REST API has no transfer_node
    await refused("resource_groups/transfer_node", { sourceRgName: DEFAULT_RG, targetRgName: "rg_x", numNode: 1 }, ErrorCode.Unimplemented, "/v2/vectordb/resource_groups/transfer_node");
    const res = await fetch(`http://127.0.0.1:${door.port}/v2/vectordb/resource_groups/create`, { method: "POST", body: "{not json" });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Reply).code).toBe(ErrorCode.ParameterInvalid);
    expect(await ok("resource_groups/list", {})).not.toContain("rg_bad");
  });
});

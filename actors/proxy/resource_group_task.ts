/**
 * The proxy's resource-group and LoadBalance calls (Milvus's proxy tasks for CreateResourceGroup,
 * DropResourceGroup, UpdateResourceGroups, DescribeResourceGroup, ListResourceGroups, TransferNode,
 * TransferReplica and LoadBalance): the fields checked, collection names turned into ids (and back in
 * answers and errors), the call passed to querycoord.
 */
import { namingCollection, VbError } from "../../protocol/errors.ts";
import type { CollectionInfo } from "../../protocol/meta.ts";
import type { Req, Res } from "../../protocol/messages/api.ts";
import { RESOURCE_GROUP_VERBS as RG_VERBS, type ProxyApi } from "../../protocol/messages/proxy.ts";
import type { QuerycoordApi } from "../../protocol/messages/querycoord.ts";
import { obj, stringOf } from "../request_fields.ts";

/** what a resource-group call uses of the proxy */
export interface ResourceGroupContext {
  querycoord<V extends keyof QuerycoordApi & string>(verb: V, body: Req<QuerycoordApi, V>, timeoutMs?: number): Promise<Res<QuerycoordApi, V>>;
  describe(dbName: string | undefined, name: string): Promise<CollectionInfo>;
}

export const RESOURCE_GROUP_VERBS: ReadonlySet<string> = new Set(RG_VERBS);

const ASK_MS = 30_000;

function count(b: Record<string, unknown>, field: string, verb: string): number | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw VbError.invalid(`${verb}: "${field}" must be an integer ≥ 1`);
  return v;
}

function optionalName(b: Record<string, unknown>, field: string, verb: string): string | undefined {
  return b[field] === undefined || b[field] === null || b[field] === "" ? undefined : stringOf(b[field], `${verb}: "${field}"`);
}

export async function resourceGroupCall(ctx: ResourceGroupContext, verb: string, body: unknown): Promise<unknown> {
  const b = obj(body ?? {}, `${verb}: the request body`);
  const str = (field: string) => stringOf(b[field], `${verb}: "${field}"`);
  switch (verb) {
    case "CreateResourceGroup":
      return ctx.querycoord("CreateResourceGroup", { name: str("resourceGroup"), ...(b.config === undefined ? {} : { config: b.config as never }) });
    case "DropResourceGroup":
      return ctx.querycoord("DropResourceGroup", { name: str("resourceGroup") });
    case "UpdateResourceGroups": {
      const groups = obj(b.resourceGroups ?? {}, `${verb}: "resourceGroups"`);
      return ctx.querycoord("UpdateResourceGroups", { groups: Object.entries(groups).map(([name, config]) => ({ name, config: config as never })) });
    }
    case "DescribeResourceGroup": {
      const r = await ctx.querycoord("DescribeResourceGroup", { name: str("resourceGroup") });
      return { resourceGroup: r.group } satisfies Res<ProxyApi, "DescribeResourceGroup">;
    }
    case "ListResourceGroups": {
      const r = await ctx.querycoord("ListResourceGroups", {});
      return { resourceGroups: r.names } satisfies Res<ProxyApi, "ListResourceGroups">;
    }
    case "TransferNode":
      return ctx.querycoord("TransferNode", { source: str("sourceResourceGroup"), target: str("targetResourceGroup"), numNode: count(b, "numNode", verb) ?? 1 });
    case "TransferReplica": {
      const dbName = optionalName(b, "dbName", verb);
      const info = await ctx.describe(dbName, str("collectionName"));
      return named(
        info,
        ctx.querycoord("TransferReplica", {
          source: str("sourceResourceGroup"),
          target: str("targetResourceGroup"),
          collectionId: info.collectionId,
          numReplica: count(b, "numReplica", verb) ?? 1,
        }),
      );
    }
    case "LoadBalance":
      return loadBalance(ctx, b);
    default:
      throw VbError.invalid(`unknown resource group call ${verb}`);
  }
}

async function loadBalance(ctx: ResourceGroupContext, b: Record<string, unknown>): Promise<Res<ProxyApi, "LoadBalance">> {
  const verb = "LoadBalance";
  const srcNode = stringOf(b.srcNode, `${verb}: "srcNode"`);
  const name = optionalName(b, "collectionName", verb);
  const info = name === undefined ? undefined : await ctx.describe(optionalName(b, "dbName", verb), name);
  const list = (field: string) => {
    const v = b[field];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) throw VbError.invalid(`${verb}: "${field}" must be a list`);
    return v;
  };
  const dstNodes = list("dstNodes")?.map((n, i) => stringOf(n, `${verb}: "dstNodes[${i}]"`));
  const segmentIds = list("sealedSegmentIds")?.map((s, i) => {
    if (typeof s === "bigint") return s;
    if (typeof s === "number" && Number.isSafeInteger(s) && s >= 0) return BigInt(s);
    if (typeof s === "string" && /^\d+$/.test(s)) return BigInt(s);
    throw VbError.invalid(`${verb}: "sealedSegmentIds[${i}]" must be a segment id`);
  });
  const wait = b.wait === true;
  const timeoutMs = typeof b.timeoutMs === "number" && b.timeoutMs > 0 ? b.timeoutMs : 300_000;
  const work = ctx.querycoord(
    "LoadBalance",
    {
      sourceNode: srcNode,
      ...(info ? { collectionId: info.collectionId } : {}),
      ...(dstNodes && dstNodes.length > 0 ? { dstNodes } : {}),
      ...(segmentIds && segmentIds.length > 0 ? { segmentIds } : {}),
      ...(wait ? { wait, timeoutMs } : {}),
    },
    wait ? timeoutMs + 5_000 : ASK_MS,
  );
  return info ? named(info, work) : work;
}

/** Coordinators that know a collection by id only name it so: the proxy knows its name and puts it in. */
function named<T>(info: CollectionInfo, work: Promise<T>): Promise<T> {
  return work.catch((err: unknown) => {
    throw namingCollection(err, info.collectionId, info.name);
  });
}

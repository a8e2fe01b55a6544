/**
 * Milvus's REST v2 resource group endpoints (`POST /v2/vectordb/resource_groups/<action>`, as Milvus's
 * resource_group_handler_v2.go serves them): create, drop, alter, describe, list and transfer_replica,
 * each on the proxy's call of the same name. Milvus's REST API has no transfer_node: that is gRPC only.
 *
 * Bodies are checked as Milvus binds them, with code 1100 and the field at fault: `name` is required;
 * a config, where one is given, needs `requests` and `limits` (`{}` is node_num 0) and transfers that
 * each name a group; `transfer_replica` needs both groups, the collection and `replicaNum` ≥ 1.
 */
import { VbError } from "../../../protocol/errors.ts";
import type { ProxyApi } from "../../../protocol/messages/proxy.ts";
import type { ResourceGroupConfig } from "../../../protocol/messages/querycoord.ts";
import { list, obj, optionalInt, requiredInt, requiredString } from "../../request_fields.ts";
import { resourceGroupOf, rgConfigOf } from "../rgpb.ts";
import type { Body, RestContext, RestHandler } from "./rest_v2.ts";

/** The proxy, asked for the REST call's context (its deadline and trace). */
export type ProxyCall = <V extends keyof ProxyApi & string>(verb: V, body: ProxyApi[V][0], ctx: RestContext) => Promise<ProxyApi[V][1]>;

/** rgpb's node_num is an int32 */
const NODE_NUM_MAX = 2 ** 31 - 1;

/** A ResourceGroupConfig of a request body, checked field by field, as the native config. */
function configIn(verb: string, v: unknown, field: string): ResourceGroupConfig {
  const c = obj(v, `${verb}: ${field}`);
  for (const key of ["requests", "limits"]) {
    if (c[key] === undefined || c[key] === null) throw VbError.invalid(`${verb}: field "${field}.${key}" is missing; pass it as {"node_num": <count>}`);
    optionalInt(`${verb}: ${field}.${key}`, obj(c[key], `${verb}: ${field}.${key}`), "node_num", 0, NODE_NUM_MAX);
  }
  for (const key of ["transfer_from", "transfer_to"]) {
    if (c[key] === undefined || c[key] === null) continue;
    list(c[key], `${verb}: ${field}.${key}`).forEach((t, i) => requiredString(`${verb}: ${field}.${key}[${i}]`, obj(t, `${verb}: ${field}.${key}[${i}]`), "resource_group"));
  }
  return rgConfigOf(c);
}

/** The resource group handlers, by `resource_groups/<action>`. */
export function resourceGroupHandlers(call: ProxyCall): Record<string, RestHandler> {
  const name = (verb: string, body: Body) => requiredString(`resource_groups/${verb}`, body, "name");
  return {
    async "resource_groups/create"(body, ctx) {
      const resourceGroup = name("create", body);
      const config = body.config === undefined || body.config === null ? undefined : configIn("resource_groups/create", body.config, "config");
      await call("CreateResourceGroup", { resourceGroup, ...(config ? { config } : {}) }, ctx);
      return { data: {} };
    },
    async "resource_groups/drop"(body, ctx) {
      await call("DropResourceGroup", { resourceGroup: name("drop", body) }, ctx);
      return { data: {} };
    },
    async "resource_groups/alter"(body, ctx) {
      const verb = "resource_groups/alter";
      if (body.resource_groups === undefined || body.resource_groups === null) {
        throw VbError.invalid(`${verb}: field "resource_groups" is missing; pass it as {"<group name>": <config>, ...}`);
      }
      const groups = Object.entries(obj(body.resource_groups, `${verb}: resource_groups`));
      const resourceGroups = Object.fromEntries(groups.map(([group, config]) => [group, configIn(verb, config, `resource_groups.${group}`)]));
      await call("UpdateResourceGroups", { resourceGroups }, ctx);
      return { data: {} };
    },
    async "resource_groups/describe"(body, ctx) {
      const { resourceGroup } = await call("DescribeResourceGroup", { resourceGroup: name("describe", body) }, ctx);
      const group = resourceGroupOf(resourceGroup, Number);
      // Milvus's handler writes {"resource_group": …} at the top level, its API reference shows it in `data`: both are here
      return { data: { resource_group: group }, extra: { resource_group: group } };
    },
    async "resource_groups/list"(_body, ctx) {
      return { data: (await call("ListResourceGroups", {}, ctx)).resourceGroups };
    },
    async "resource_groups/transfer_replica"(body, ctx) {
      const verb = "resource_groups/transfer_replica";
      await call(
        "TransferReplica",
        {
          ...(ctx.dbName ? { dbName: ctx.dbName } : {}),
          collectionName: requiredString(verb, body, "collectionName"),
          sourceResourceGroup: requiredString(verb, body, "sourceRgName"),
          targetResourceGroup: requiredString(verb, body, "targetRgName"),
          numReplica: requiredInt(verb, body, "replicaNum", 1),
        },
        ctx,
      );
      return { data: {} };
    },
  };
}

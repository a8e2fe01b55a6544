/** CreatePartition, DropPartition, HasPartition, ListPartitions. Partitions live in their collection's record. */
import { VbError } from "../../protocol/errors.ts";
import { DEFAULT_PARTITION, type PartitionInfo } from "../../protocol/meta.ts";
import type { RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import { checkName } from "../../protocol/schema.ts";
import { resolveCollection } from "./collections.ts";
import type { RootcoordCore } from "./core.ts";
import { partitionNotFound } from "./errors.ts";
import type { StoredCollection } from "./kv_layout.ts";
import { bodyOf, requiredString } from "../request_fields.ts";

/** Milvus's default `maxPartitionNum`, `_default` included. */
export const MAX_PARTITIONS = 1024;

type Res<V extends keyof RootcoordApi> = RootcoordApi[V][1];

export async function createPartition(core: RootcoordCore, raw: unknown): Promise<Res<"CreatePartition">> {
  const verb = "CreatePartition";
  const b = bodyOf(verb, raw);
  const c = resolveCollection(core, verb, b);
  const name = checkName("partition", requiredString(verb, b, "partitionName"));
  if (c.partitions.some((p) => p.name === name)) {
    throw VbError.invalid(`partition "${name}" already exists in collection "${c.name}" (1100): choose another name`);
  }
  if (c.partitions.length >= MAX_PARTITIONS) {
    throw VbError.invalid(
      `collection "${c.name}" already has ${MAX_PARTITIONS} partitions, the most allowed (1100): drop unused ones with DropPartition first`,
    );
  }
  const partitionId = await core.ids.alloc(1);
  const createdTs = await core.tso.alloc(1);
  const partition: PartitionInfo = { partitionId, name, createdTs };
  const next: StoredCollection = { ...c, partitions: [...c.partitions, partition] };
  await core.meta.updateCollection(next);
  core.log.info({ collection: c.name, collectionId: String(c.collectionId), partition: name, partitionId: String(partitionId) }, "created partition");
  await core.events.publish({ kind: "partition.created", collectionId: c.collectionId, partition });
  return partition;
}

export async function dropPartition(core: RootcoordCore, raw: unknown): Promise<Res<"DropPartition">> {
  const verb = "DropPartition";
  const b = bodyOf(verb, raw);
  const c = resolveCollection(core, verb, b);
  const name = requiredString(verb, b, "partitionName");
  if (name === DEFAULT_PARTITION) {
    throw VbError.invalid(`the "${DEFAULT_PARTITION}" partition of collection "${c.name}" cannot be dropped (1100)`);
  }
  const p = c.partitions.find((x) => x.name === name);
  if (!p) throw partitionNotFound(c.name, name);
  const next: StoredCollection = { ...c, partitions: c.partitions.filter((x) => x !== p) };
  await core.meta.updateCollection(next);
  core.log.info({ collection: c.name, collectionId: String(c.collectionId), partition: name, partitionId: String(p.partitionId) }, "dropped partition");
  await core.events.publish({ kind: "partition.dropped", collectionId: c.collectionId, partitionId: p.partitionId });
  return null;
}

export function hasPartition(core: RootcoordCore, raw: unknown): Res<"HasPartition"> {
  const verb = "HasPartition";
  const b = bodyOf(verb, raw);
  const c = resolveCollection(core, verb, b);
  const name = requiredString(verb, b, "partitionName");
  return { has: c.partitions.some((p) => p.name === name) };
}

export function listPartitions(core: RootcoordCore, raw: unknown): Res<"ListPartitions"> {
  const verb = "ListPartitions";
  return { partitions: resolveCollection(core, verb, bodyOf(verb, raw)).partitions };
}

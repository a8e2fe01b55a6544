/**
 * AllocTimestamp and AllocId: on every insert's hot path, so they answer from memory (synchronously)
 * and only wait for KV when a watermark has to move.
 */
import { VbError } from "../../protocol/errors.ts";
import type { RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import type { RootcoordCore } from "./core.ts";
import { MAX_ID_COUNT } from "./id_allocator.ts";
import { bodyOf, optionalInt } from "../request_fields.ts";
import { MAX_LOGICAL } from "./tso.ts";

type Res<V extends keyof RootcoordApi> = RootcoordApi[V][1];

export function allocTimestamp(core: RootcoordCore, raw: unknown): Res<"AllocTimestamp"> | Promise<Res<"AllocTimestamp">> {
  const verb = "AllocTimestamp";
  const count = optionalInt(verb, bodyOf(verb, raw), "count", 1, MAX_LOGICAL) ?? 1;
  const ts = core.tso.tryAlloc(count);
  if (ts !== undefined) return { ts, count };
  return core.tso.alloc(count).then((first) => ({ ts: first, count }));
}

export function allocId(core: RootcoordCore, raw: unknown): Res<"AllocId"> | Promise<Res<"AllocId">> {
  const verb = "AllocId";
  const count = optionalInt(verb, bodyOf(verb, raw), "count", 1, MAX_ID_COUNT);
  if (count === undefined) throw VbError.invalid(`${verb}: field "count" is missing; pass how many ids to allocate (1 to ${MAX_ID_COUNT})`);
  const start = core.ids.tryAlloc(count);
  if (start !== undefined) return { start, count };
  return core.ids.alloc(count).then((first) => ({ start: first, count }));
}

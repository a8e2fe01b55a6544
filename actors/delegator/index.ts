/**
 * Shard delegators. A querynode spawns them (querynode.WatchDmChannels), each at its own address
 * `vb.dlg.<collection>.<vchannel>.<replica>.<node>` (no wildcard route: delegators of one collection live in
 * several processes).
 */
export { DelegatorActor, type DelegatorOptions } from "./delegator_actor.ts";
export { Distribution, Version, entryKey } from "./distribution.ts";
export { GrowingRows, type GrowingBatch } from "../segment/growing.ts";
export { DeleteBuffer, chunkDeletes } from "./delete_buffer.ts";
export { TSafe } from "./tsafe.ts";

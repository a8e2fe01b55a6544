/**
 * vchannel assignment: a collection's shards are its vchannels `<collectionId>v<shard>`, spread over the
 * `dmlChannelNum` physical DML streams (Milvus's pchannels) round-robin from the collection id.
 */
import type { VChannelInfo } from "../../protocol/meta.ts";
import { assertToken } from "../../protocol/subjects.ts";

export function vchannelName(collectionId: bigint, shard: number): string {
  return assertToken("vchannel", `${collectionId}v${shard}`);
}

export function pchannelOf(collectionId: bigint, shard: number, dmlChannelNum: number): number {
  return Number((collectionId + BigInt(shard)) % BigInt(dmlChannelNum));
}

export function assignVChannels(collectionId: bigint, shardsNum: number, dmlChannelNum: number): VChannelInfo[] {
  return Array.from({ length: shardsNum }, (_, shard) => ({
    name: vchannelName(collectionId, shard),
    shard,
    pchannel: pchannelOf(collectionId, shard, dmlChannelNum),
  }));
}

/**
 * The pk bloom filter hashes keys as the shard router does: murmur3 (x86, 32-bit) of the key's bytes.
 */
export { murmur3, pkBytes } from "../../protocol/hash.ts";

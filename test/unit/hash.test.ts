import { describe, expect, it } from "vitest";
import { hashInt64Pk, murmur3, shardOfPk } from "../../protocol/hash.ts";

describe("pk hashing", () => {
  it("matches murmur3 x86_32 reference vectors", () => {
    const enc = new TextEncoder();
    // reference values of MurmurHash3_x86_32 (seed 0 unless given)
    expect(murmur3(new Uint8Array([]))).toBe(0);
    expect(murmur3(new Uint8Array([]), 1)).toBe(0x514e28b7);
    expect(murmur3(enc.encode("hello"))).toBe(0x248bfa47);
    expect(murmur3(enc.encode("Hello, world!"), 1234)).toBe(0xfaf6cdb3);
    expect(murmur3(enc.encode("The quick brown fox jumps over the lazy dog"))).toBe(0x2e4ff723);
    expect(murmur3(new Uint8Array([0x21, 0x43, 0x65, 0x87]))).toBe(0xf55b516b);
  });

  it("spreads keys over shards evenly and always the same way", () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0n; i < 40_000n; i++) counts[shardOfPk(i, 4)]!++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    expect(shardOfPk(42n, 4)).toBe(hashInt64Pk(42n) % 4);
    expect(shardOfPk("abc", 3)).toBe(shardOfPk("abc", 3));
    expect(hashInt64Pk(-1n)).toBeLessThan(2 ** 31);
  });
});

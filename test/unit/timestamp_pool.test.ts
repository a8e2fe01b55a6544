import { describe, expect, it } from "vitest";
import { TimestampPool } from "../../actors/proxy/timestamp_pool.ts";

describe("proxy timestamp pool", () => {
  it("hands out strictly increasing timestamps from blocks, with one refill for concurrent callers", async () => {
    let calls = 0;
    let base = 1_000n;
    const pool = new TimestampPool(async (count) => {
      calls++;
      await new Promise((r) => setTimeout(r, 5));
      const ts = base;
      base += BigInt(count) + 10n;
      return { ts, count };
    }, 100, 10_000);
    const got = await Promise.all(Array.from({ length: 250 }, () => pool.take()));
    expect(new Set(got).size).toBe(250);
    const sorted = [...got].sort((a, b) => (a < b ? -1 : 1));
    expect(got).toEqual(sorted);
    expect(calls).toBe(3);
  });

  it("does not use a block older than its age limit, and passes a failed refill on", async () => {
    let n = 0;
    const pool = new TimestampPool(async (count) => {
      n++;
      if (n === 3) throw new Error("tso down");
      return { ts: BigInt(n * 1_000), count };
    }, 10, 20);
    expect(await pool.take()).toBe(1_000n);
    await new Promise((r) => setTimeout(r, 40));
    expect(await pool.take()).toBe(2_000n);
    await new Promise((r) => setTimeout(r, 40));
    await expect(pool.take()).rejects.toThrow("tso down");
    expect(await pool.take()).toBe(4_000n);
  });
});

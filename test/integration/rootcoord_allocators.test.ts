import { describe, expect, it } from "vitest";
import { IdAllocator } from "../../actors/rootcoord/id_allocator.ts";
import { TSO_KEY, type TsoWatermark } from "../../actors/rootcoord/kv_layout.ts";
import { MAX_LOGICAL, TimestampOracle } from "../../actors/rootcoord/tso.ts";
import { parseTs } from "../../protocol/ids.ts";
import { KvMeta } from "../../runtime/kv_meta.ts";
import { createLogger } from "../../runtime/logger.ts";
import { connectTest, uniquePrefix } from "../harness/index.ts";

const log = createLogger({ test: "rootcoord_allocators" });

/** A KV bucket of its own on a connection of its own, destroyed afterwards. */
async function bucket() {
  const nc = await connectTest();
  const kv = await KvMeta.open(nc, uniquePrefix("RC_"));
  return {
    kv,
    nc,
    async [Symbol.asyncDispose]() {
      await kv.destroy().catch(() => undefined);
      await nc[Symbol.asyncDispose]();
    },
  };
}

/** A clock the test moves by hand. */
function manualClock(start: number) {
  const clock = { ms: start, now: () => clock.ms };
  return clock;
}

describe("rootcoord TSO on KV", () => {
  it("issues strictly increasing timestamps while the clock stands still or goes back", async () => {
    await using b = await bucket();
    const clock = manualClock(1_700_000_000_000);
    const tso = await TimestampOracle.open(b.kv, { now: clock.now, log });
    let last = -1n;
    for (const step of [0, 0, 5, -3_000, 0, 1, -1, 7]) {
      clock.ms += step;
      for (let i = 0; i < 100; i++) {
        const ts = await tso.alloc(1 + (i % 4));
        expect(ts > last).toBe(true);
        last = ts + BigInt(i % 4);
      }
    }
  });

  it("borrows the next millisecond when one is used up, and saves the watermark before reaching it", async () => {
    await using b = await bucket();
    const clock = manualClock(1_700_000_000_000);
    const tso = await TimestampOracle.open(b.kv, { now: clock.now, windowMs: 100, log });
    const first = await tso.alloc(MAX_LOGICAL);
    const second = await tso.alloc(1);
    expect(parseTs(first)).toEqual({ physicalMs: clock.ms, logical: 0 });
    expect(parseTs(second)).toEqual({ physicalMs: clock.ms + 1, logical: 0 });
    // run 1,000 ms ahead of a clock that does not move: ten windows of 100 ms
    let last = second;
    for (let i = 0; i < 1_000; i++) last = await tso.alloc(MAX_LOGICAL);
    const saved = await b.kv.getValue<TsoWatermark>(TSO_KEY);
    expect(saved!.value.physicalMs).toBeGreaterThan(parseTs(last).physicalMs);
  });

  it("starts above every timestamp issued before, even when the clock is behind them", async () => {
    await using b = await bucket();
    const clock = manualClock(1_700_000_000_000);
    const before = await TimestampOracle.open(b.kv, { now: clock.now, log });
    let last = 0n;
    for (let i = 0; i < 50; i++) last = await before.alloc(MAX_LOGICAL);
    // the clock is set back by an hour, a new oracle starts on the same key
    clock.ms -= 3_600_000;
    const after = await TimestampOracle.open(b.kv, { now: clock.now, log });
    expect((await after.alloc(1)) > last).toBe(true);
  });

  it("keeps two oracles on one key from issuing below what the other saved", async () => {
    await using b = await bucket();
    const clock = manualClock(1_700_000_000_000);
    const a = await TimestampOracle.open(b.kv, { now: clock.now, windowMs: 50, log });
    const c = await TimestampOracle.open(b.kv, { now: clock.now, windowMs: 50, log });
    // c saved after a: a's next save loses the compare-and-set, reloads and continues above c's watermark
    for (let i = 0; i < 200; i++) await c.alloc(MAX_LOGICAL);
    const cSaved = (await b.kv.getValue<TsoWatermark>(TSO_KEY))!.value.physicalMs;
    await a.extend();
    expect(parseTs(await a.alloc(1)).physicalMs).toBeGreaterThanOrEqual(cSaved);
  });
});

describe("rootcoord id allocator on KV", () => {
  it("hands out disjoint ranges across restarts and across two allocators on one key", async () => {
    await using b = await bucket();
    const ranges: [bigint, bigint][] = [];
    const take = async (a: IdAllocator, count: number) => {
      const start = await a.alloc(count);
      ranges.push([start, start + BigInt(count)]);
    };
    const a1 = await IdAllocator.open(b.kv, { log, block: 1_000n });
    for (let i = 0; i < 50; i++) await take(a1, 1 + i * 7);
    const a2 = await IdAllocator.open(b.kv, { log, block: 1_000n });
    for (let i = 0; i < 50; i++) {
      await take(a1, 13 + i);
      await take(a2, 29 + i);
    }
    await take(a2, 5_000);
    const a3 = await IdAllocator.open(b.kv, { log, block: 1_000n });
    await take(a3, 1);
    ranges.sort((x, y) => (x[0] < y[0] ? -1 : 1));
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0] >= ranges[i - 1]![1]).toBe(true);
    expect(ranges[0]![0]).toBe(1n);
  });
});

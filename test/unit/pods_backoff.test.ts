import { describe, expect, it } from "vitest";
import { DEFAULT_BACKOFF, nextBackoff } from "../../ops/pods.ts";

describe("pods restart backoff", () => {
  const policy = { initialMs: 1_000, maxMs: 8_000, resetAfterMs: 15_000 };

  it("doubles at each quick crash up to the cap", () => {
    let current = policy.initialMs;
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const b = nextBackoff(policy, current, 500);
      delays.push(b.delayMs);
      current = b.nextMs;
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
  });

  it("starts over after the child stayed up long enough", () => {
    expect(nextBackoff(policy, 8_000, 15_000)).toEqual({ delayMs: 1_000, nextMs: 2_000 });
    expect(nextBackoff(policy, 8_000, 14_999)).toEqual({ delayMs: 8_000, nextMs: 8_000 });
  });

  it("defaults: 1 s first, 30 s at most", () => {
    expect(nextBackoff(DEFAULT_BACKOFF, DEFAULT_BACKOFF.initialMs, 0).delayMs).toBe(1_000);
    expect(nextBackoff(DEFAULT_BACKOFF, 30_000, 0)).toEqual({ delayMs: 30_000, nextMs: 30_000 });
  });
});

import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { WorkerPool } from "../../runtime/worker_pool.ts";
import { waitFor } from "../harness/index.ts";

const MODULE = new URL("./worker_pool_fixture.ts", import.meta.url);

let pool: WorkerPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

async function refusal(p: Promise<unknown>): Promise<VbError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected a refusal");
}

describe("WorkerPool", () => {
  it("answers calls on the chosen worker, with errors as VbErrors, shared memory in place and moved buffers", async () => {
    pool = new WorkerPool({ module: MODULE, size: 2, name: "test" });
    expect(await pool.call(1, "echo", { x: 1n })).toEqual({ a: { x: 1n }, calls: 1 });
    expect(await pool.call(1, "echo", "again")).toEqual({ a: "again", calls: 2 });
    expect(await pool.call(0, "echo", null)).toEqual({ a: null, calls: 1 });
    const e = await refusal(pool.call(0, "refuse", null));
    expect([e.code, e.message]).toEqual([ErrorCode.ParameterInvalid, "x: refused on purpose"]);
    expect((await refusal(pool.call(0, "crash", null))).code).toBe(ErrorCode.Unexpected);
    expect((await refusal(pool.call(0, "nope", null))).code).toBe(ErrorCode.Unimplemented);
    expect([...(await pool.call<Float32Array>(0, "double", { values: Float32Array.of(1, 2) }))]).toEqual([2, 4]);
    const shared = new Int32Array(new SharedArrayBuffer(16));
    await pool.call(1, "fill", { shared, value: 7 });
    expect([...shared]).toEqual([7, 7, 7, 7]);
  });

  it("spreads calls over idle workers", async () => {
    pool = new WorkerPool({ module: MODULE, size: 2, name: "test" });
    const first = pool.leastBusy();
    const p = pool.call(first, "echo", 1);
    expect(pool.leastBusy()).not.toBe(first);
    await p;
  });

  it("replaces a worker that dies: its calls fail retriably, its owner is told, its generation moves", async () => {
    const lost: number[] = [];
    pool = new WorkerPool({ module: MODULE, size: 2, name: "test", onLost: (w) => lost.push(w) });
    await pool.call(1, "echo", 1);
    expect(pool.generation(1)).toBe(0);
    const e = await refusal(pool.call(1, "die", null));
    expect(e.code).toBe(ErrorCode.ServiceUnavailable);
    expect(e.retriable).toBe(true);
    expect(lost).toEqual([1]);
    expect(pool.generation(1)).toBe(1);
    // a fresh worker answers (its state starts over)
    const again = await waitFor(() => pool!.call<{ calls: number }>(1, "echo", 2).catch(() => undefined), { what: "the replacement" });
    expect(again.calls).toBe(1);
    expect(pool.generation(0)).toBe(0);
  });

  it("fails calls after close", async () => {
    pool = new WorkerPool({ module: MODULE, size: 1, name: "test" });
    await pool.call(0, "echo", 1);
    await pool.close();
    expect((await refusal(pool.call(0, "echo", 1))).code).toBe(ErrorCode.ServiceUnavailable);
  });
});

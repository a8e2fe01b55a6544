/** A worker module for worker_pool.test.ts: echoes, refuses, moves a buffer back, or dies on request. */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { serveCalls, Transfer } from "../../runtime/worker_pool.ts";

let calls = 0;
serveCalls({
  echo: (a: unknown) => ({ a, calls: ++calls }),
  refuse: () => {
    throw new VbError(ErrorCode.ParameterInvalid, "x: refused on purpose");
  },
  crash: () => {
    throw new TypeError("not a VbError");
  },
  double: (a: { values: Float32Array }) => {
    const out = Float32Array.from(a.values, (v) => 2 * v);
    return new Transfer(out, [out.buffer]);
  },
  /** writes into shared memory: the caller sees it without a copy */
  fill: (a: { shared: Int32Array; value: number }) => {
    a.shared.fill(a.value);
    return null;
  },
  die: () => process.exit(3),
});

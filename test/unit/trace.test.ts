/** W3C traceparent reading and writing, and hops under unsampled parents (runtime/trace.ts). */
import { describe, expect, it } from "vitest";
import { formatTraceparent, parseTraceparent, startTrace } from "../../runtime/trace.ts";

const TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

describe("traceparent", () => {
  it("reads a W3C traceparent and writes it back the same", () => {
    const p = parseTraceparent(TP);
    expect(p).toEqual({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", flags: 1 });
    expect(formatTraceparent(p!)).toBe(TP);
    // a later version may append fields; upper case and surrounding blanks are read too
    expect(parseTraceparent(`${TP}-future`)?.spanId).toBe("b7ad6b7169203331");
    expect(parseTraceparent(` ${TP.toUpperCase()} `)?.traceId).toBe("0af7651916cd43dd8448eb211c80319c");
  });

  it("refuses what is not one: version ff, zero ids, wrong lengths, other types", () => {
    for (const bad of [
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
      "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
      "",
      42,
      undefined,
    ]) {
      expect(parseTraceparent(bad), String(bad)).toBeUndefined();
    }
  });

  it("gives every hop a span id of its own under the request's trace id, sampled or not", () => {
    for (const flags of ["00", "01"]) {
      const parent = parseTraceparent(TP.slice(0, -2) + flags)!;
      const a = startTrace("a", parent);
      const b = startTrace("b", parent);
      expect(a.traceId).toBe(parent.traceId);
      expect(a.parentSpanId).toBe(parent.spanId);
      expect(a.spanId).toMatch(/^[0-9a-f]{16}$/);
      expect(new Set([a.spanId, b.spanId, parent.spanId]).size).toBe(3);
      expect(a.flags).toBe(parent.flags);
      expect(parseTraceparent(a.traceparent)).toEqual({ traceId: a.traceId, spanId: a.spanId, flags: a.flags });
      a.end();
      b.end(new Error("failed"));
    }
    const root = startTrace("root", undefined);
    expect(root.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(root.parentSpanId).toBe("");
  });
});

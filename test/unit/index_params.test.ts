import { describe, expect, it } from "vitest";
import { VbError } from "../../protocol/errors.ts";
import { validateIndexParams } from "../../actors/index/index.ts";

describe("index params", () => {
  it("accepts AUTOINDEX's own normalized params back (as stored meta gives them) and refuses others", () => {
    const spec = validateIndexParams("AUTOINDEX", "COSINE", {}, "FloatVector", 16);
    expect(validateIndexParams("AUTOINDEX", "COSINE", spec.params as never, "FloatVector", 16)).toEqual(spec);
    let err: unknown;
    try {
      validateIndexParams("AUTOINDEX", "COSINE", { M: 8 }, "FloatVector", 16);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VbError);
    expect((err as VbError).code).toBe(1100);
    expect((err as VbError).message).toMatch(/^M: /);
  });
});

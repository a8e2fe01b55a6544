/** `vbus load --rg`: how the option becomes LoadCollection's resource groups and replica number. */
import { describe, expect, it } from "vitest";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { parseRgOption } from "../../ops/cli_resource_groups.ts";

describe("vbus load --rg", () => {
  it("gives one replica per count and group, or every replica to a group named alone", () => {
    expect(parseRgOption("rg_a:1,rg_b:1")).toEqual({ resourceGroups: ["rg_a", "rg_b"], replicaNumber: 2 });
    expect(parseRgOption("rg_a:2, rg_b")).toEqual({ resourceGroups: ["rg_a", "rg_a", "rg_b"], replicaNumber: 3 });
    expect(parseRgOption("rg_a")).toEqual({ resourceGroups: ["rg_a"] });
  });

  it("refuses what is not <group>:<replicas> with 1100", () => {
    for (const bad of ["", "rg_a:0", "rg_a:x", ":1"]) {
      let err: unknown;
      try {
        parseRgOption(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VbError);
      expect((err as VbError).code).toBe(ErrorCode.ParameterInvalid);
    }
  });
});

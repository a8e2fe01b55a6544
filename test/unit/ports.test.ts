/** The ports `vbus up` serves by default: one checked before anything starts, a taken one named with its flag. */
import { createServer, type Server } from "node:net";
import { describe, expect, it } from "vitest";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { DEFAULT_MILVUS_PORT, DEFAULT_NATS_PORT, checkUpPorts, portOf } from "../../ops/ports.ts";

/** A server listening on a free port of `host`, closed by `await using`. */
async function occupy(host: string): Promise<{ port: number } & AsyncDisposable> {
  const srv: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, host, () => resolve());
  });
  const addr = srv.address();
  return { port: typeof addr === "object" && addr ? addr.port : 0, [Symbol.asyncDispose]: () => new Promise<void>((r) => srv.close(() => r())) };
}

describe("vbus up ports", () => {
  it("defaults to NATS's and Milvus's own ports", () => {
    expect(DEFAULT_NATS_PORT).toBe(4222);
    expect(DEFAULT_MILVUS_PORT).toBe(19530);
  });

  it("reads a port flag: a number or 0, anything else is bad input naming the flag", () => {
    expect(portOf("--port", "4223")).toBe(4223);
    expect(portOf("--port", "0")).toBe(0);
    for (const bad of ["", "abc", "-1", "65536", "1.5"]) {
      expect(() => portOf("--port", bad)).toThrow(VbError);
      expect(() => portOf("--port", bad)).toThrow(/^--port .*: give a port number, or 0 for a free one/);
    }
  });

  it("names a taken NATS port and the flag to choose another", async () => {
    await using held = await occupy("127.0.0.1");
    const err = await checkUpPorts({ nats: held.port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VbError);
    expect((err as VbError).code).toBe(ErrorCode.ServiceUnavailable);
    expect((err as VbError).message).toContain(`NATS port ${held.port} is taken`);
    expect((err as VbError).message).toContain("--port 0");
  });

  it("names a taken Milvus port and the flag to choose another", async () => {
    await using held = await occupy("0.0.0.0");
    const err = await checkUpPorts({ milvus: held.port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VbError);
    expect((err as VbError).message).toContain(`Milvus port ${held.port} is taken`);
    expect((err as VbError).message).toContain("--milvus-port");
  });

  it("passes free ports and leaves port 0 (a free one) unchecked", async () => {
    let free: number;
    {
      await using held = await occupy("127.0.0.1");
      free = held.port;
    }
    await expect(checkUpPorts({ nats: free, milvus: 0 })).resolves.toBeUndefined();
    await expect(checkUpPorts({ nats: 0 })).resolves.toBeUndefined();
  });
});

/**
 * The fixed ports of `vbus up`: NATS on 4222 (`--port`) and Milvus on 19530 (`--milvus-port`), each
 * checked before anything starts so that a port in use gets one clear line naming it and the flag.
 * Programs and tests that start a standalone or a nats-server themselves get free ports instead.
 */
import { ErrorCode, VbError } from "../protocol/errors.ts";
import { DEFAULT_NATS_PORT } from "../actors/control/locate.ts";
import { DEFAULT_MILVUS_PORT } from "../actors/front/server.ts";
import { portIsFree } from "./nats_server.ts";

export { DEFAULT_NATS_PORT, DEFAULT_MILVUS_PORT };

/** A port flag's value: a port number, or 0 for a free one. */
export function portOf(flag: string, v: string): number {
  const port = Number(v);
  if (v.trim() === "" || !Number.isInteger(port) || port < 0 || port > 65_535) throw VbError.invalid(`${flag} ${v}: give a port number, or 0 for a free one`);
  return port;
}

/**
 * Throws when a port `vbus up` is about to serve is in use: NATS on loopback, Milvus on every interface
 * (where the front door listens). Port 0 (a free one) and absent ports are not checked.
 */
export async function checkUpPorts(ports: { nats?: number | undefined; milvus?: number | undefined }): Promise<void> {
  if (ports.nats && !(await portIsFree(ports.nats))) {
    throw new VbError(
      ErrorCode.ServiceUnavailable,
      `NATS port ${ports.nats} is taken (another nats-server or vbus up?): choose another with --port N, or --port 0 for a free one`,
    );
  }
  if (ports.milvus && !((await portIsFree(ports.milvus, "::")) || (await portIsFree(ports.milvus, "0.0.0.0")))) {
    throw new VbError(
      ErrorCode.ServiceUnavailable,
      `Milvus port ${ports.milvus} is taken: choose another with --milvus-port N, --milvus-port 0 for a free one, or --milvus-port off`,
    );
  }
}

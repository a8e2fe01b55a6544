/**
 * Process configuration: defaults for the embedded standalone, overridden by environment variables
 * (`VB_*`) and then by command-line flags. One object, passed down to every actor a process hosts.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { ClusterConfig } from "../actors/env.ts";

export interface VbConfig {
  /** Subject prefix; every subject, stream and bucket lives under it. */
  prefix: string;
  /** Where standalone keeps its nats-server store and the filesystem object store. */
  dataDir: string;
  /** NATS server URL(s); when absent, standalone starts its own nats-server. */
  natsUrl?: string;
  /** Client port of the nats-server standalone starts (absent or 0: a free one; `vbus up`: 4222). */
  natsPort?: number;
  /** Object store spec: a path / `file:///path`, or `s3://KEY:SECRET@host:port/bucket?ssl=false`. */
  objectStore?: string;
  /** Max NATS payload for a nats-server standalone starts (bytes). */
  maxPayload: number;
  /** Datanodes standalone hosts. */
  datanodes?: number;
  /** Querynodes standalone hosts. */
  querynodes?: number;
  /** Cluster settings (seal policy, channel counts, heartbeats). */
  cluster?: Partial<ClusterConfig>;
}

export function defaultConfig(env: NodeJS.ProcessEnv = process.env): VbConfig {
  return {
    prefix: env.VB_PREFIX ?? "vb",
    dataDir: resolve(env.VB_DATA_DIR ?? ".vbus"),
    ...(env.VB_NATS_URL ? { natsUrl: env.VB_NATS_URL } : {}),
    ...(env.VB_OBJECT_STORE ? { objectStore: env.VB_OBJECT_STORE } : {}),
    maxPayload: Number(env.VB_MAX_PAYLOAD ?? 8 * 1024 * 1024),
    ...(env.VB_SLOW_QUERY_MS ? { cluster: { slowQueryMs: Number(env.VB_SLOW_QUERY_MS) } } : {}),
  };
}

/** The software's version (package.json's), which discovery gives as every service's version. */
export const VB_VERSION: string = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

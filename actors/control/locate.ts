/**
 * Where a client finds a cluster when it is not told: `VB_NATS_URL`, else the runfile a local `vbus up`
 * wrote (`<VB_DATA_DIR or .vbus>/vbus.json`: its NATS URL and subject prefix), else the NATS port `vbus up`
 * serves by default. The typed client's `connect()` and the `vbus` commands use it alike.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

/** The runfile's name in the data directory (ops/runfile.ts writes it). */
export const RUNFILE = "vbus.json";
/** The NATS client port `vbus up` serves by default. */
export const DEFAULT_NATS_PORT = 4222;
export const DEFAULT_NATS_URL = `nats://127.0.0.1:${DEFAULT_NATS_PORT}`;

export interface LocateOptions {
  /** NATS server URL(s): when given, nothing is looked up */
  servers?: string | string[] | undefined;
  /** subject prefix (default: the runfile's, else `VB_PREFIX`, else `vb`) */
  prefix?: string | undefined;
  /** data directory of a local `vbus up` (default `VB_DATA_DIR`, else `.vbus` in the working directory) */
  dataDir?: string | undefined;
}

export interface Located {
  servers: string | string[];
  prefix: string;
  /** where the servers came from (`from VB_NATS_URL`), for an error that says where it looked */
  from: string;
  /** false when nothing named them: the default port */
  found: boolean;
}

/** The cluster to connect to (see the module's comment). */
export function locateCluster(opts: LocateOptions = {}, env: NodeJS.ProcessEnv = process.env): Located {
  const prefix = opts.prefix ?? env.VB_PREFIX ?? "vb";
  if (opts.servers !== undefined && opts.servers.length > 0) return { servers: opts.servers, prefix, from: "as given", found: true };
  if (env.VB_NATS_URL) return { servers: env.VB_NATS_URL, prefix, from: "from VB_NATS_URL", found: true };
  const dataDir = resolve(opts.dataDir ?? env.VB_DATA_DIR ?? ".vbus");
  const file = join(dataDir, RUNFILE);
  let text: string | undefined;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    // no local `vbus up` here
  }
  if (text !== undefined) {
    let run: { natsUrl?: unknown; prefix?: unknown } = {};
    try {
      run = JSON.parse(text) as typeof run;
    } catch {
      // being rewritten, or damaged: as if absent
    }
    if (typeof run.natsUrl === "string" && run.natsUrl) {
      return { servers: run.natsUrl, prefix: opts.prefix ?? (typeof run.prefix === "string" ? run.prefix : prefix), from: `from the runfile ${file}`, found: true };
    }
  }
  return { servers: DEFAULT_NATS_URL, prefix, from: `the default: no VB_NATS_URL, no runfile ${file}`, found: false };
}

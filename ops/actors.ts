/**
 * `vbus actors`: every actor of a cluster, found through NATS service discovery (`$SRV.INFO`, answered by
 * each process for the actors it hosts: runtime/discovery.ts).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { discover, SERVICE_NAME_PREFIX, type ServiceInfo } from "../runtime/discovery.ts";

/** One actor as `vbus actors --json` prints it: its endpoint's metadata after the fixed fields. */
export interface ListedActor {
  kind: string;
  address: string;
  /** the process hosting it (`<hostname>:<pid>`) */
  process: string;
  /** the actor's node: its own `node` when it shows one, else its process's node id */
  node: string;
  [meta: string]: string;
}

export interface ListActorsOptions {
  /** the cluster's subject prefix: processes of other clusters on the same NATS are left out */
  prefix: string;
  /** only this kind (`segment`, `querynode`, ...) */
  kind?: string;
  quietMs?: number;
  maxMs?: number;
}

/** Asks every process of the cluster for its actors; sorted by kind, then address. */
export async function listActors(nc: NatsConnection, opts: ListActorsOptions): Promise<ListedActor[]> {
  const infos = await discover<ServiceInfo>(nc, "INFO", {
    ...(opts.kind ? { name: SERVICE_NAME_PREFIX + opts.kind } : {}),
    ...(opts.quietMs !== undefined ? { quietMs: opts.quietMs } : {}),
    ...(opts.maxMs !== undefined ? { maxMs: opts.maxMs } : {}),
  });
  const out: ListedActor[] = [];
  for (const info of infos) {
    if (info.type !== "io.nats.micro.v1.info_response" || !info.name.startsWith(SERVICE_NAME_PREFIX)) continue;
    const svc = info.metadata ?? {};
    if (svc.prefix !== opts.prefix) continue;
    for (const e of info.endpoints ?? []) {
      const { kind, ...meta } = e.metadata ?? {};
      out.push({
        kind: kind ?? info.name.slice(SERVICE_NAME_PREFIX.length),
        address: e.subject,
        process: svc.process ?? info.id,
        node: meta.node ?? svc.node ?? "",
        ...meta,
      });
    }
  }
  return out.sort((a, b) => a.kind.localeCompare(b.kind) || a.address.localeCompare(b.address, undefined, { numeric: true }));
}

const COLUMNS = ["kind", "address", "process", "node"] as const;
/** Shown when any listed actor has them (segments: what they hold). */
const EXTRA_COLUMNS = ["collection", "rows", "indexes"] as const;

/** A plain text table, one actor a line. */
export function formatActors(actors: ListedActor[]): string {
  if (actors.length === 0) return "no actors found\n";
  const columns: string[] = [...COLUMNS, ...EXTRA_COLUMNS.filter((c) => actors.some((a) => a[c] !== undefined))];
  const rows = [columns.map((c) => c.toUpperCase()), ...actors.map((a) => columns.map((c) => a[c] ?? ""))];
  const widths = columns.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!))).join("  ").trimEnd() + "\n").join("");
}

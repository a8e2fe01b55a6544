/**
 * The typed client of the native API, for programs that speak NATS: `connect({servers})` (or `connect()`,
 * which finds a local `vbus up`) returns a client with one method per verb (`createCollection`, `insert`,
 * `flush`, ...) whose failures are `VbError`s with Milvus's codes. Big inserts are sent in chunks that fit the NATS payload limit.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { encode } from "../../protocol/codec.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { PROXY, PROXY_VERBS, type InsertReq, type InsertRes, type ProxyApi } from "../../protocol/messages/proxy.ts";
import { Subjects } from "../../protocol/subjects.ts";
import { ask, flushOutbox, type AskOptions } from "../../runtime/ask.ts";
import type { Trace } from "../../runtime/trace.ts";
import { connectNats } from "../../runtime/transport.ts";
import { locateCluster } from "./locate.ts";

export interface ConnectOptions {
  /**
   * NATS server URL(s) of the cluster. Default: `VB_NATS_URL`, else the one a local `vbus up` wrote in its
   * runfile (`<dataDir>/vbus.json`), else `nats://127.0.0.1:4222`.
   */
  servers?: string | string[];
  /** subject prefix of the Vectorbus cluster (default: the runfile's, else `VB_PREFIX`, else `vb`) */
  prefix?: string;
  /** where to look for the runfile of a local `vbus up` (default `VB_DATA_DIR`, else `.vbus`) */
  dataDir?: string;
  /** default deadline of a call (default 60 s) */
  timeoutMs?: number;
  /** a connection name the server shows */
  name?: string;
}

/**
 * How a client's asks reach the proxy: over NATS (the default), or through the actor host of a process
 * that also hosts the proxy (`host.ask`), which hands them over in process (see ActorHost.ask).
 */
export type ProxyAsker = <R>(address: string, type: string, body: unknown, opts: AskOptions) => Promise<R>;

export interface ClientOfOptions extends Omit<ConnectOptions, "servers"> {
  /** the asks' way to the proxy (default: over `nc`); reads go with `share: true` */
  asker?: ProxyAsker;
}

export interface CallOptions {
  timeoutMs?: number;
  /** the hop of a traced request this call is made for: the envelope carries its traceparent */
  trace?: Trace;
}

export interface InsertOptions extends CallOptions {
  /** called after each chunk with the rows sent so far */
  onProgress?: (sent: number, total: number) => void;
}

type Verb = keyof ProxyApi & string;
type Methods = {
  [K in Verb as Uncapitalize<K>]: (req: ProxyApi[K][0], opts?: CallOptions) => Promise<ProxyApi[K][1]>;
};

export interface VectorbusClient extends Methods, AsyncDisposable {
  readonly nc: NatsConnection;
  /** any verb by name */
  call<V extends Verb>(verb: V, req: ProxyApi[V][0], opts?: CallOptions): Promise<ProxyApi[V][1]>;
  insert(req: InsertReq, opts?: InsertOptions): Promise<InsertRes>;
  upsert(req: InsertReq, opts?: InsertOptions): Promise<InsertRes>;
  close(): Promise<void>;
}

/** Verbs that change nothing: the client asks them again after a lost connection. */
const READS: ReadonlySet<string> = new Set(
  PROXY_VERBS.filter((v) => /^(Search|Query|Get|Describe|Has|List)/.test(v)),
);

const lower = (s: string) => s[0]!.toLowerCase() + s.slice(1);

/** Wraps an open NATS connection (the caller keeps owning it). */
export function clientOf(nc: NatsConnection, opts: ClientOfOptions = {}): VectorbusClient {
  const address = new Subjects(opts.prefix ?? "vb").proxy();
  const defaultTimeout = opts.timeoutMs ?? 60_000;
  const asker = opts.asker;
  const once = <V extends Verb>(verb: V, req: ProxyApi[V][0], timeoutMs: number, trace: Trace | undefined) => {
    const o: AskOptions = trace ? { timeoutMs, trace } : { timeoutMs };
    if (!asker) return ask<ProxyApi[V][1]>(nc, address, `${PROXY}.${verb}`, req ?? {}, o);
    if (READS.has(verb)) o.share = true;
    return asker<ProxyApi[V][1]>(address, `${PROXY}.${verb}`, req ?? {}, o);
  };
  const call = async <V extends Verb>(verb: V, req: ProxyApi[V][0], o: CallOptions = {}): Promise<ProxyApi[V][1]> => {
    const deadline = Date.now() + (o.timeoutMs ?? defaultTimeout);
    for (let attempt = 0; ; attempt++) {
      try {
        return await once(verb, req, Math.max(1, deadline - Date.now()), o.trace);
      } catch (err) {
        // a read that was lost with the connection (NATS restarting), or that found no proxy for a
        // moment, is asked again until its deadline; writes are not (one may have landed)
        const again =
          READS.has(verb) && err instanceof VbError && err.code === ErrorCode.ServiceUnavailable && err.retriable && deadline - Date.now() > 100;
        if (!again) throw err;
        await new Promise((r) => setTimeout(r, Math.min(1_000, 50 * 2 ** attempt, Math.max(0, deadline - Date.now() - 50))));
      }
    }
  };

  const chunked = async (verb: "Insert" | "Upsert", req: InsertReq, o: InsertOptions = {}): Promise<InsertRes> => {
    if (!req.rows || !Array.isArray(req.rows)) return call(verb, req, o);
    const rows = req.rows;
    const limit = Math.floor((nc.info?.max_payload ?? 1024 * 1024) * 0.8);
    const sample = rows.slice(0, Math.min(32, rows.length));
    const perRow = Math.max(1, encode(sample).byteLength / Math.max(1, sample.length));
    let chunk = Math.max(1, Math.floor(limit / perRow));
    const ids: (bigint | string)[] = [];
    let bigIds: BigInt64Array | undefined;
    let timestamp = 0n;
    let sent = 0;
    const parts: InsertRes[] = [];
    while (sent < rows.length) {
      const part = rows.slice(sent, sent + chunk);
      const body = { ...req, rows: part };
      if (encode(body).byteLength > limit && chunk > 1) {
        chunk = Math.max(1, Math.floor(chunk / 2));
        continue;
      }
      const res = await call(verb, body, o);
      parts.push(res);
      if (res.timestamp > timestamp) timestamp = res.timestamp;
      sent += part.length;
      o.onProgress?.(sent, rows.length);
    }
    if (parts.length === 1) return parts[0]!;
    if (parts.every((p) => p.ids instanceof BigInt64Array)) {
      bigIds = new BigInt64Array(rows.length);
      let off = 0;
      for (const p of parts) {
        bigIds.set(p.ids as BigInt64Array, off);
        off += p.ids.length;
      }
      return { insertCount: rows.length, ids: bigIds, timestamp };
    }
    for (const p of parts) ids.push(...(p.ids as string[]));
    return { insertCount: rows.length, ids: ids as string[], timestamp };
  };

  const client = {
    nc,
    call,
    close: async () => {
      flushOutbox(nc);
      if (!nc.isClosed()) await nc.close();
    },
  } as Record<string, unknown>;
  for (const verb of PROXY_VERBS) client[lower(verb)] = (req: unknown, o?: CallOptions) => call(verb, req as never, o);
  client.insert = (req: InsertReq, o?: InsertOptions) => chunked("Insert", req, o);
  client.upsert = (req: InsertReq, o?: InsertOptions) => chunked("Upsert", req, o);
  return client as unknown as VectorbusClient;
}

/**
 * Connects to the NATS servers of a Vectorbus cluster and returns a typed client that owns the connection.
 * Without `servers` it finds the cluster as `vbus` does (see `locateCluster`).
 */
export async function connect(opts: ConnectOptions = {}): Promise<VectorbusClient> {
  const where = locateCluster(opts);
  let nc: NatsConnection;
  try {
    nc = await connectNats(where.servers, { name: opts.name ?? "vectorbus-client", maxReconnectAttempts: 10 });
  } catch (err) {
    const hint = where.found ? "is it running?" : `start one with "npx vbus up", or pass servers (or set VB_NATS_URL)`;
    throw new VbError(ErrorCode.ServiceUnavailable, `cannot connect to NATS at ${String(where.servers)} (${where.from}): ${(err as Error).message}; ${hint}`, {
      cause: err,
      retriable: true,
    });
  }
  const c = clientOf(nc, { ...opts, prefix: where.prefix });
  return Object.assign(c, { [Symbol.asyncDispose]: () => c.close() });
}

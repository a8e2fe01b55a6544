/**
 * The console's JSON API: what the page polls (`state`) and the playground's search, both gathered from
 * the native API the CLI uses — the proxy's verbs through the typed client, querycoord's GetStatus (via
 * the proxy), each live querynode's distribution (`querynode.GetDist`, as `vbus status` asks datacoord
 * directly), datacoord's status, and the processes and the proxy's request counts from NATS service
 * discovery.
 */
import { ErrorCode, VbError } from "../../../protocol/errors.ts";
import { asNodeId } from "../../../protocol/ids.ts";
import type { QueryNodeDist } from "../../../protocol/messages/querynode.ts";
import type { CollectionInfo } from "../../../protocol/meta.ts";
import { Subjects } from "../../../protocol/subjects.ts";
import { ask } from "../../../runtime/ask.ts";
import { discover, SERVICE_NAME_PREFIX, type ServiceInfo, type ServiceStats } from "../../../runtime/discovery.ts";
import { DATACOORD_GET_STATUS, type DatacoordStatus } from "../../datacoord/status.ts";
import type { VectorbusClient } from "../../control/client.ts";

/** What the console reads: the typed client and the cluster's subject prefix (for querynodes and datacoord). */
export interface ConsoleSource {
  client: VectorbusClient;
  prefix: string;
}

/** Milvus's name of the one resource group there is while the native API has none. */
export const DEFAULT_RESOURCE_GROUP = "__default_resource_group";

const STEP_TIMEOUT_MS = 5_000;

/** The message of whatever was thrown, for a field that says why a part of the state is missing. */
const why = (err: unknown) => VbError.from(err).message;

/** Counts the console's own calls to the proxy, so the page can leave them out of the request rate. */
export class ConsoleCalls {
  count = 0;
  wrap<T>(p: () => Promise<T>): Promise<T> {
    this.count++;
    return p();
  }
}

/** Everything the page draws, in one reply (bigints are sent as decimal strings). */
export async function clusterState(src: ConsoleSource, calls: ConsoleCalls) {
  const { client } = src;
  const subjects = new Subjects(src.prefix);
  const opts = { timeoutMs: STEP_TIMEOUT_MS };
  // the proxy's counts first, with the console's own calls up to that moment: the page subtracts those
  const [proxyStats, processes] = await Promise.all([proxyRequests(src), actorProcesses(src)]);
  const consoleCalls = calls.count;
  const at = Date.now();
  const [status, dc] = await Promise.all([
    calls.wrap(() => client.getStatus({}, opts)).then((s) => ({ ok: s }), (err: unknown) => ({ error: why(err) })),
    ask<DatacoordStatus>(client.nc, subjects.datacoord(), DATACOORD_GET_STATUS, {}, opts).then(
      ({ segments, vchannels, indexes, builds }) => ({ segments, vchannels, indexes, builds }),
      (err: unknown) => ({ error: why(err) }),
    ),
  ]);
  const st = "ok" in status ? status.ok : undefined;
  const nodes = st?.nodes ?? [];
  const [dists, listed, groups] = await Promise.all([
    Promise.all(
      nodes.map((n) =>
        n.alive
          ? ask<QueryNodeDist>(client.nc, subjects.querynode(asNodeId(n.nodeId)), "querynode.GetDist", {}, opts).catch(() => undefined)
          : Promise.resolve(undefined),
      ),
    ),
    listCollections(src, calls).then((ok) => ({ ok }), (err: unknown) => ({ error: why(err) })),
    resourceGroups(src, nodes.map((n) => n.nodeId)),
  ]);
  const collections = "ok" in listed ? listed.ok : [];
  const loaded = new Map((st?.collections ?? []).map((c) => [String(c.collectionId), c]));
  return {
    at,
    prefix: src.prefix,
    ...("error" in status ? { statusError: status.error } : {}),
    ...("error" in listed ? { collectionsError: listed.error } : {}),
    datacoord: dc,
    proxy: { ...proxyStats, consoleCalls },
    processes,
    resourceGroups: groups,
    nodes: nodes.map((n, i) => {
      const d = dists[i];
      return {
        ...n,
        segmentList: (d?.segments ?? []).map((s) => ({ ...s, indexed: s.indexIds.length > 0 })),
        delegatorList: (d?.delegators ?? []).map(({ collectionId, vchannel, replicaId, serviceable, targetVersion, tSafe }) => ({
          collectionId,
          vchannel,
          replicaId,
          serviceable,
          targetVersion,
          tSafe,
        })),
        loading: d?.loading ?? [],
      };
    }),
    moves: st?.moves ?? [],
    collections: collections.map((c) => {
      const l = loaded.get(String(c.collectionId));
      return { ...c, replicas: l?.replicas ?? [] };
    }),
  };
}

/** Every collection of every database with its schema, indexes, rows and load progress. */
async function listCollections(src: ConsoleSource, calls: ConsoleCalls) {
  const { client } = src;
  const opts = { timeoutMs: STEP_TIMEOUT_MS };
  const dbs = (await calls.wrap(() => client.listDatabases({}, opts))).databases;
  const out = [];
  for (const dbName of dbs) {
    const names = (await calls.wrap(() => client.listCollections({ dbName }, opts))).collections;
    const infos = await Promise.all(
      names.map(async (collectionName) => {
        const ref = { dbName, collectionName };
        const info = await calls.wrap(() => client.describeCollection(ref, opts)).catch(() => undefined);
        if (!info) return undefined;
        const [indexes, load, stats] = await Promise.all([
          calls.wrap(() => client.describeIndex(ref, opts)).then((r) => r.indexes, () => []),
          // not loaded (101) is a state to show; any other failure is said beside it
          calls.wrap(() => client.getLoadingProgress(ref, opts)).then(
            (r) => ({ ...r, error: undefined as string | undefined }),
            (err: unknown) => {
              const e = VbError.from(err);
              return { progress: 0, state: "NotLoad" as const, blockers: [], error: e.code === ErrorCode.CollectionNotLoaded ? undefined : e.message };
            },
          ),
          calls.wrap(() => client.getCollectionStatistics(ref, opts)).catch(() => undefined),
        ]);
        return {
          dbName,
          name: collectionName,
          collectionId: info.collectionId,
          schema: schemaOf(info),
          shardsNum: info.shardsNum,
          vchannels: info.vchannels,
          partitions: info.partitions.map((p) => p.name),
          aliases: info.aliases,
          consistencyLevel: info.consistencyLevel,
          indexes,
          load,
          rows: stats?.rowCount,
          flushedRows: stats?.flushedRows,
          flushedSegments: stats?.segments,
        };
      }),
    );
    for (const c of infos) if (c) out.push(c);
  }
  return out;
}

function schemaOf(info: CollectionInfo) {
  return {
    description: info.schema.description ?? "",
    enableDynamicField: info.schema.enableDynamicField === true,
    fields: info.schema.fields.filter((f) => !f.isDynamic),
  };
}

/**
 * The resource groups with their nodes, from querycoord's ListResourceGroups and DescribeResourceGroup;
 * a querycoord without them (or one that does not answer) shows Milvus's default group holding every node.
 */
async function resourceGroups(src: ConsoleSource, nodes: string[]): Promise<{ name: string; nodes: string[]; capacity?: number }[]> {
  const qc = new Subjects(src.prefix).querycoord();
  const opts = { timeoutMs: STEP_TIMEOUT_MS };
  try {
    const { names } = await ask<{ names: string[] }>(src.client.nc, qc, "querycoord.ListResourceGroups", {}, opts);
    return await Promise.all(
      names.map(async (name) => {
        const { group } = await ask<{ group: { name: string; nodes: string[]; capacity: number } }>(src.client.nc, qc, "querycoord.DescribeResourceGroup", { name }, opts);
        return { name, nodes: group.nodes, capacity: group.capacity };
      }),
    );
  } catch {
    return [{ name: DEFAULT_RESOURCE_GROUP, nodes }];
  }
}

/** The kinds of actor a process is listed with on the console (segments and delegators are in the picture). */
const PROCESS_KINDS = ["rootcoord", "datacoord", "querycoord", "datanode", "querynode", "proxy"] as const;

/**
 * The processes of the cluster and the coordinators, nodes and proxies each hosts, from NATS service
 * discovery (`$SRV.INFO.vectorbus-<kind>`): a process that does not answer is not listed.
 */
async function actorProcesses(src: ConsoleSource): Promise<{ process: string; node: string; actors: { kind: string; address: string }[] }[]> {
  const answers = await Promise.all(
    PROCESS_KINDS.map((kind) => discover<ServiceInfo>(src.client.nc, "INFO", { name: `${SERVICE_NAME_PREFIX}${kind}`, quietMs: 100, maxMs: 1_000 }).catch(() => [])),
  );
  const byProcess = new Map<string, { process: string; node: string; actors: { kind: string; address: string }[] }>();
  for (const info of answers.flat()) {
    if (info.metadata?.prefix !== src.prefix) continue;
    const process = info.metadata.process ?? info.id;
    let p = byProcess.get(process);
    if (!p) byProcess.set(process, (p = { process, node: info.metadata.node ?? "", actors: [] }));
    const kind = info.name.slice(SERVICE_NAME_PREFIX.length);
    for (const e of info.endpoints) p.actors.push({ kind, address: e.subject });
  }
  return [...byProcess.values()].sort((a, b) => a.node.localeCompare(b.node) || a.process.localeCompare(b.process));
}

/** The proxy actors' request and error counts (every verb, since they started), from `$SRV.STATS`. */
async function proxyRequests(src: ConsoleSource): Promise<{ requests: number; errors: number; proxies: number } | { error: string }> {
  try {
    const stats = await discover<ServiceStats>(src.client.nc, "STATS", { name: `${SERVICE_NAME_PREFIX}proxy`, quietMs: 100, maxMs: 1_000 });
    const mine = stats.filter((s) => s.metadata?.prefix === src.prefix);
    let requests = 0;
    let errors = 0;
    for (const s of mine) {
      for (const e of s.endpoints) {
        requests += e.num_requests;
        errors += e.num_errors;
      }
    }
    return { requests, errors, proxies: mine.length };
  } catch (err) {
    return { error: why(err) };
  }
}

export interface PlaygroundSearch {
  dbName?: string;
  collectionName: string;
  /** the query vector; or `id`, a row whose vector is searched with */
  vector?: number[];
  id?: string | number;
  annsField?: string;
  filter?: string;
  limit?: number;
}

/** The playground's search: the vector (given, or the row's), the filter and limit, hits with their scalar fields. */
export async function playgroundSearch(src: ConsoleSource, calls: ConsoleCalls, req: PlaygroundSearch) {
  const { client } = src;
  if (typeof req.collectionName !== "string" || req.collectionName === "") {
    throw new VbError(ErrorCode.ParameterInvalid, `search: field "collectionName" is missing; pick a collection`);
  }
  const ref = { ...(req.dbName ? { dbName: req.dbName } : {}), collectionName: req.collectionName };
  const info = await calls.wrap(() => client.describeCollection(ref));
  const fields = info.schema.fields;
  const vectors = fields.filter((f) => f.type === "FloatVector");
  const anns = req.annsField ? vectors.find((f) => f.name === req.annsField) : vectors[0];
  if (!anns) throw new VbError(ErrorCode.ParameterInvalid, `search: collection "${req.collectionName}" has no FloatVector field ${req.annsField ? `named "${req.annsField}"` : ""}`);
  const pk = fields.find((f) => f.isPrimaryKey)!;
  let vector: number[];
  if (req.vector !== undefined) {
    if (!Array.isArray(req.vector) || req.vector.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
      throw new VbError(ErrorCode.ParameterInvalid, `search: field "vector" must be a JSON array of numbers`);
    }
    vector = req.vector;
  } else if (req.id !== undefined && String(req.id).trim() !== "") {
    const text = String(req.id).trim();
    if (pk.type !== "VarChar" && !/^-?\d+$/.test(text)) {
      throw new VbError(ErrorCode.ParameterInvalid, `search: the primary key "${pk.name}" is an integer; "${text}" is not one`);
    }
    const ids = pk.type === "VarChar" ? [text] : [BigInt(text)];
    const rows = await calls.wrap(() => client.query({ ...ref, ids, outputFields: [anns.name], consistencyLevel: "Strong" }));
    const row = rows.rows[0];
    if (!row) throw new VbError(ErrorCode.ParameterInvalid, `search: no row with ${pk.name} = ${text} in "${req.collectionName}"`);
    vector = Array.from(row[anns.name] as ArrayLike<number>);
  } else {
    throw new VbError(ErrorCode.ParameterInvalid, `search: give a vector (a JSON array) or a row's id`);
  }
  const limit = req.limit === undefined ? 10 : Number(req.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 16_384) throw new VbError(ErrorCode.ParameterInvalid, `search: "limit" must be an integer from 1 to 16384`);
  const outputFields = fields.filter((f) => !f.isDynamic && f.type !== "FloatVector" && !f.isPrimaryKey).map((f) => f.name);
  const started = Date.now();
  const res = await calls.wrap(() =>
    client.search({
      ...ref,
      data: [vector],
      annsField: anns.name,
      limit,
      outputFields,
      ...(req.filter && req.filter.trim() !== "" ? { filter: req.filter } : {}),
    }),
  );
  const tookMs = Date.now() - started;
  const hits = res.results[0]!;
  const ids = Array.from(hits.ids as ArrayLike<bigint | string>, String);
  return {
    annsField: anns.name,
    pkField: pk.name,
    vector,
    outputFields,
    tookMs,
    hits: ids.map((id, i) => ({ id, score: hits.scores[i]!, fields: hits.entities[i] ?? {} })),
  };
}

/** JSON text of a reply: bigints as decimal strings, typed arrays as arrays. */
export function consoleJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === "bigint") return v.toString();
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number | bigint>, (x) => (typeof x === "bigint" ? x.toString() : x));
    return v;
  });
}

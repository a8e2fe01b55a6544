/**
 * What every Vectorbus actor gets from the process that hosts it: the bus, the names on it, the object
 * store, the cluster settings. One `ClusterEnv` per process; actors keep a reference, never a copy.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Subjects } from "../protocol/subjects.ts";
import type { SealPolicy } from "../protocol/messages/datacoord.ts";
import type { ObjectStore } from "../runtime/object_store.ts";
import { DmlLog } from "../runtime/dml_log.ts";
import { KvMeta } from "../runtime/kv_meta.ts";

export interface ClusterConfig {
  /** number of physical DML streams `VB_DML_<n>` vchannels are spread over */
  dmlChannelNum: number;
  /** shards of a collection when CreateCollection does not say */
  defaultShardsNum: number;
  sealPolicy: SealPolicy;
  /** a datanode or querynode whose last heartbeat is older than this is down (ms) */
  heartbeatAvailableMs: number;
  heartbeatIntervalMs: number;
  /** rows of one InsertMsg at most (big inserts are split so each message fits the payload limit) */
  maxRowsPerMessage: number;
  /**
   * A coordinator (rootcoord, datacoord, querycoord) runs only while its process holds the role's lease:
   * a standby process takes over this long after the leader stops refreshing it (at once when it resigns).
   */
  coordinatorLeaseMs: number;
  /**
   * Searches and queries at least this slow (ms, at the proxy) are logged with the time spent at each
   * hop, as one JSON line (`VB_SLOW_QUERY_MS`; negative: none).
   */
  slowQueryMs: number;
}

export const DEFAULT_CLUSTER_CONFIG: ClusterConfig = {
  dmlChannelNum: 4,
  defaultShardsNum: 1,
  // A segment is searched through its own graph, so a query costs about one graph search per segment:
  // segments seal by size (128 MiB of rows, ~240k vectors of 128 dims), not at a small row count. The
  // datanode holds a growing segment in memory up to this size.
  sealPolicy: { maxRows: 1_000_000, maxBytes: 128 * 1024 * 1024, idleMs: 10 * 60_000 },
  // a node is down 3 s after its last heartbeat (sooner when a probe finds its process gone)
  heartbeatAvailableMs: 3_000,
  heartbeatIntervalMs: 1_000,
  maxRowsPerMessage: 4_096,
  coordinatorLeaseMs: 10_000,
  slowQueryMs: 1_000,
};

export interface ClusterEnv {
  /** The control connection: asks, replies, heartbeats, the feed, KV meta, publishes. */
  nc: NatsConnection;
  /**
   * The connection bulk data is read on (DML consumption by datanodes and delegators): its own queue
   * on the server and its own socket, so a backlog being read never delays control traffic. `nc` when
   * the process has only one.
   */
  dataNc: NatsConnection;
  subjects: Subjects;
  objectStore: ObjectStore;
  config: ClusterConfig;
  dml: DmlLog;
  /** opens (and caches) a KV bucket under the cluster's prefix: `meta("collections")` */
  meta(name: string): Promise<KvMeta>;
}

export function createClusterEnv(
  nc: NatsConnection,
  objectStore: ObjectStore,
  opts: { prefix?: string; config?: Partial<ClusterConfig>; dataNc?: NatsConnection } = {},
): ClusterEnv {
  const dataNc = opts.dataNc ?? nc;
  const subjects = new Subjects(opts.prefix ?? "vb");
  const buckets = new Map<string, Promise<KvMeta>>();
  return {
    nc,
    dataNc,
    subjects,
    objectStore,
    config: { ...DEFAULT_CLUSTER_CONFIG, ...opts.config },
    dml: new DmlLog(nc, { readNc: dataNc }),
    meta(name: string) {
      let b = buckets.get(name);
      if (!b) {
        b = KvMeta.open(nc, subjects.bucket(name), { history: 1 });
        b.catch(() => buckets.delete(name));
        buckets.set(name, b);
      }
      return b;
    },
  };
}

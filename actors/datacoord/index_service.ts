/**
 * datacoord's index service (Milvus's datacoord `index_service.go`, IndexCoord folded into datacoord):
 * index definitions (CreateIndex, DescribeIndex with build progress, DropIndex, GetIndexInfos), one
 * build per (Flushed L1 segment, index) given to the datanodes with the fewest builds in flight and
 * given out again when it fails or its datanode is lost (IndexBuilt, heartbeats), and the garbage
 * collection of the files of dropped indexes and removed segments.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { DatanodeHeartbeat } from "../../protocol/messages/datacoord.ts";
import { indexFileKey, type IndexInfo, type IndexLoadInfo } from "../../protocol/messages/indexes.ts";
import type { CollectionInfo } from "../../protocol/meta.ts";
import type { DeferredReply, PipeResult } from "../../runtime/actor.ts";
import { after } from "../continuations.ts";
import { publishEvent } from "../events.ts";
import { validateIndexParams } from "../index/index_params.ts";
import type { DatacoordCluster } from "./cluster.ts";
import { I, type DatacoordCore } from "./core.ts";
import { collectIndexGarbage, type IndexGcTarget } from "./gc.ts";
import { assigned, failed, failedForGood, finished, indexProgress, isDue, lost, missingBuilds, planBuilds, rearmed } from "./index_builds.ts";
import type { BuildRecord } from "./index_meta.ts";
import { bigintOf, boolOf, indexNameOf, intOf, list, nodeIdOf, obj, optionalStringOf, stringOf } from "./requests.ts";

interface CreateIndexReq {
  collectionId: bigint;
  fieldName: string;
  indexName: string | undefined;
  indexType: unknown;
  metricType: unknown;
  params: unknown;
}

function sameParams(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

export class IndexService {
  /** build records a garbage-collection task is removing */
  private readonly indexGcPending = new Set<bigint>();
  private indexGcRetries = 0;

  constructor(
    private readonly core: DatacoordCore,
    private readonly cluster: DatacoordCluster,
  ) {}

  createIndex(body: unknown, deadline: number): DeferredReply<IndexInfo> {
    const b = obj(body, "CreateIndex");
    const req: CreateIndexReq = {
      collectionId: bigintOf(b.collectionId, "collectionId"),
      fieldName: stringOf(b.fieldName, "fieldName"),
      indexName: indexNameOf(b.indexName, "indexName"),
      indexType: b.indexType,
      metricType: b.metricType,
      params: b.params,
    };
    if (this.core.collections.wasDropped(req.collectionId)) {
      throw new VbError(ErrorCode.CollectionNotFound, `collection ${req.collectionId} was dropped`);
    }
    // the schema comes from rootcoord (asked off the mailbox); the check and the write run in it
    const work = Promise.all([
      this.core.askRootcoord("DescribeCollection", { collectionId: req.collectionId }),
      this.core.allocTimestamp(deadline, `CreateIndex on collection ${req.collectionId}`),
    ]);
    return this.core.ctx.reenterAfter(work, ([info, ts]) => this.commitCreateIndex(req, info, ts));
  }

  private async commitCreateIndex(req: CreateIndexReq, info: CollectionInfo, createdTs: bigint): Promise<IndexInfo> {
    if (info.state !== "Created" || this.core.collections.wasDropped(info.collectionId)) {
      throw new VbError(ErrorCode.CollectionNotFound, `collection "${info.name}" (${info.collectionId}) is being dropped`);
    }
    const field = info.schema.fields.find((f) => f.name === req.fieldName && !f.isDynamic);
    if (!field) {
      const vectors = info.schema.fields.filter((f) => f.type === "FloatVector").map((f) => `"${f.name}"`);
      throw VbError.invalid(`fieldName: collection "${info.name}" has no field "${req.fieldName}"; its vector fields are ${vectors.join(", ")}`);
    }
    const spec = validateIndexParams(req.indexType, req.metricType, req.params, field.type, field.dim ?? 0);
    const indexes = this.core.indexMeta.indexesOf(info.collectionId);
    const existing = indexes.find((i) => i.fieldId === field.fieldId);
    if (existing) {
      const same =
        existing.indexType === spec.indexType &&
        existing.metricType === spec.metric &&
        sameParams(existing.params, { ...spec.params }) &&
        (req.indexName === undefined || req.indexName === existing.indexName);
      if (!same) {
        throw VbError.invalid(
          `fieldName: field "${field.name}" already has index "${existing.indexName}" (${existing.indexType}, ${existing.metricType}, ` +
            `${JSON.stringify(existing.params)}); a field has one index: drop it first to index the field differently (vbus index drop ${info.name} --name ${existing.indexName}, or DropIndex)`,
        );
      }
      // the same index again: nothing to create, but builds that failed for good get another round
      const now = Date.now();
      for (const b of this.core.indexMeta.buildsOfIndex(existing.indexId)) if (failedForGood(b)) await this.core.indexMeta.saveBuild(rearmed(b, now));
      this.core.ctx.self(I.ScheduleBuilds);
      return existing;
    }
    const indexName = req.indexName ?? field.name;
    const taken = indexes.find((i) => i.indexName === indexName);
    if (taken) {
      throw VbError.invalid(`indexName: "${indexName}" already names the index of field "${taken.fieldName}"; choose another name`);
    }
    await this.cluster.addCollection(info);
    const index: IndexInfo = {
      indexId: await this.core.ids.take(),
      collectionId: info.collectionId,
      fieldId: field.fieldId!,
      fieldName: field.name,
      indexName,
      indexType: spec.indexType,
      metricType: spec.metric,
      params: { ...spec.params },
      createdTs,
    };
    await this.core.indexMeta.saveIndex(index);
    this.core.ctx.log.info(
      { collection: String(index.collectionId), index: String(index.indexId), name: indexName, type: index.indexType, metric: index.metricType },
      "index created",
    );
    void publishEvent(this.core.env, { kind: "index.created", index }).catch((err: unknown) =>
      this.core.ctx.log.warn({ index: String(index.indexId), err: String(err) }, "index.created event not published"),
    );
    this.core.ctx.self(I.ScheduleBuilds);
    return index;
  }

  /** The collection's indexes named by a request: the one named, or all of them; 700 when there is none. */
  private indexesNamed(collectionId: bigint, indexName: string | undefined): IndexInfo[] {
    const all = this.core.indexMeta.indexesOf(collectionId);
    const out = indexName === undefined ? all : all.filter((i) => i.indexName === indexName);
    if (out.length > 0) return out;
    const coll = this.core.collectionLabel(collectionId);
    throw new VbError(
      ErrorCode.IndexNotFound,
      indexName === undefined
        ? `collection ${coll} has no index (700): create one first (vbus index create ${this.core.collections.get(collectionId)?.name ?? "<name>"} --field <vector field>, or CreateIndex)`
        : `index "${indexName}" not found on collection ${coll} (700)${all.length ? `: its indexes are ${all.map((i) => `"${i.indexName}"`).join(", ")}` : ""}`,
      { retriable: false },
    );
  }

  describeIndex(body: unknown): { indexes: ReturnType<typeof indexProgress>[] } {
    const b = obj(body, "DescribeIndex");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const indexes = this.indexesNamed(collectionId, optionalStringOf(b.indexName, "indexName"));
    const segments = this.core.segments.ofCollection(collectionId);
    return { indexes: indexes.map((i) => indexProgress(i, segments, (s) => this.core.indexMeta.build(s, i))) };
  }

  async dropIndex(body: unknown): Promise<DeferredReply<null>> {
    const b = obj(body, "DropIndex");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const indexName = optionalStringOf(b.indexName, "indexName");
    const named = this.indexesNamed(collectionId, indexName);
    if (named.length > 1) {
      throw VbError.invalid(`indexName: collection ${this.core.collectionLabel(collectionId)} has ${named.length} indexes (${named.map((i) => `"${i.indexName}"`).join(", ")}): name the one to drop (vbus index drop ${this.core.collections.get(collectionId)?.name ?? "<name>"} --name <index>, or DropIndex's indexName)`);
    }
    const index = named[0]!;
    await this.core.indexMeta.removeIndex(index);
    this.core.ctx.log.info({ collection: String(collectionId), index: String(index.indexId), name: index.indexName }, "index dropped; removing its files");
    void publishEvent(this.core.env, { kind: "index.dropped", collectionId, indexId: index.indexId }).catch((err: unknown) =>
      this.core.ctx.log.warn({ index: String(index.indexId), err: String(err) }, "index.dropped event not published"),
    );
    // answered once the files are gone (a failure is retried later: the index is dropped either way)
    const gc = this.startIndexGc([{ collectionId, indexId: index.indexId }]);
    return this.core.ctx.reenter(gc.then(() => null));
  }

  getIndexInfos(body: unknown): { indexes: IndexInfo[]; builds: IndexLoadInfo[] } {
    const b = obj(body, "GetIndexInfos");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const want =
      b.segmentIds === undefined ? undefined : new Set(list(b.segmentIds, "segmentIds").map((v, i) => bigintOf(v, `segmentIds[${i}]`)));
    const indexes = this.core.indexMeta.indexesOf(collectionId);
    const builds: IndexLoadInfo[] = [];
    for (const index of indexes) {
      for (const r of this.core.indexMeta.buildsOfIndex(index.indexId)) {
        if (r.state !== "Finished" || r.fileKey === undefined || (want && !want.has(r.segmentId))) continue;
        const seg = this.core.segments.get(r.segmentId);
        if (!seg || seg.state === "Dropped") continue;
        builds.push({
          segmentId: r.segmentId,
          fieldId: index.fieldId,
          indexId: index.indexId,
          buildId: r.buildId,
          fileKey: r.fileKey,
          indexType: index.indexType,
          metricType: index.metricType,
          memorySize: r.memorySize ?? 0,
        });
      }
    }
    builds.sort((x, y) => (x.segmentId < y.segmentId ? -1 : x.segmentId > y.segmentId ? 1 : 0));
    return { indexes, builds };
  }

  async indexBuilt(body: unknown): Promise<null> {
    const b = obj(body, "IndexBuilt");
    const buildId = bigintOf(b.buildId, "buildId");
    const nodeId = nodeIdOf(b.nodeId, "nodeId");
    const ok = boolOf(b.ok, "ok");
    const rec = this.core.indexMeta.buildById(buildId);
    if (!rec || this.isIndexGarbage(rec)) {
      // the index was dropped (or its segment removed) while the datanode built it: its file is garbage
      const key = ok ? optionalStringOf(b.fileKey, "fileKey") : undefined;
      if (key !== undefined && key.startsWith("index_files/") && key.split("/")[5] === String(buildId)) {
        void this.core.env.objectStore.delete(key).catch((err: unknown) => this.core.ctx.log.warn({ key, err: String(err) }, "stray index file not removed"));
      }
      return null;
    }
    if (rec.state === "Finished") return null; // a repeated report
    if (rec.nodeId !== nodeId) {
      throw new VbError(ErrorCode.NodeNotMatch, `build ${buildId} is assigned to datanode ${rec.nodeId ?? "(none)"}, not ${nodeId}: drop it`, {
        retriable: false,
      });
    }
    const fields = { collection: String(rec.collectionId), segment: String(rec.segmentId), index: String(rec.indexId), node: nodeId };
    if (ok) {
      const expected = indexFileKey(rec.collectionId, rec.partitionId, rec.segmentId, rec.indexId, rec.buildId);
      const fileKey = stringOf(b.fileKey, "fileKey");
      if (fileKey !== expected) throw VbError.invalid(`fileKey: build ${buildId} writes "${expected}", not "${fileKey}"`);
      const done = finished(rec, { fileKey, serializedSize: intOf(b.serializedSize, "serializedSize"), memorySize: intOf(b.memorySize, "memorySize") });
      await this.core.indexMeta.saveBuild(done);
      this.core.ctx.log.info({ ...fields, rows: rec.numRows, bytes: done.serializedSize }, "segment indexed");
      void publishEvent(this.core.env, { kind: "segment.indexed", collectionId: rec.collectionId, segmentId: rec.segmentId, indexId: rec.indexId }).catch(
        (err: unknown) => this.core.ctx.log.warn({ ...fields, err: String(err) }, "segment.indexed event not published"),
      );
    } else if (rec.state === "InProgress") {
      const reason = optionalStringOf(b.failReason, "failReason") ?? "the datanode gave no reason";
      const next = failed(rec, `datanode ${nodeId}: ${reason}`, Date.now());
      await this.core.indexMeta.saveBuild(next);
      if (failedForGood(next)) this.core.ctx.log.error({ ...fields, attempts: next.attempts, reason }, "index build failed for good");
      else this.core.ctx.log.warn({ ...fields, attempts: next.attempts, reason, retryInMs: next.retryAt! - Date.now() }, "index build failed; retrying");
    }
    this.core.ctx.self(I.ScheduleBuilds); // a slot is free
    return null;
  }

  /** A build whose index was dropped or whose segment is gone. */
  private isIndexGarbage(b: BuildRecord): boolean {
    const seg = this.core.segments.get(b.segmentId);
    return !this.core.indexMeta.index(b.indexId) || !seg || seg.state === "Dropped";
  }

  async scheduleBuildsSafely(): Promise<void> {
    try {
      await this.scheduleBuilds();
    } catch (err) {
      this.core.ctx.log.error({ err: String(err) }, "scheduling index builds failed; retrying on the next tick");
    }
  }

  /**
   * Gives out the builds that are due: a record for every (Flushed L1 segment, live index) that has
   * none, then Unissued builds and Failed ones whose retry time came, to the live datanodes with the
   * fewest builds in flight (at most BUILDS_PER_NODE each).
   */
  private async scheduleBuilds(): Promise<void> {
    if (!this.core.feedReady) return;
    const missing = missingBuilds(
      [...this.core.indexMeta.allIndexes()],
      (c) => this.core.segments.ofCollection(c),
      (s, i) => this.core.indexMeta.build(s, i) !== undefined,
    );
    const records: BuildRecord[] = [];
    for (const { segment, index } of missing) {
      records.push({
        segmentId: segment.segmentId,
        collectionId: segment.collectionId,
        partitionId: segment.partitionId,
        indexId: index.indexId,
        buildId: await this.core.ids.take(),
        state: "Unissued",
        numRows: segment.numRows,
        attempts: 0,
        lost: 0,
      });
    }
    await Promise.all(records.map((r) => this.core.indexMeta.saveBuild(r)));
    const now = Date.now();
    const inFlight = new Map<string, number>();
    for (const n of this.core.channels.liveNodes(now, this.core.env.config.heartbeatAvailableMs)) inFlight.set(n.nodeId, 0);
    if (inFlight.size === 0) return;
    const due: BuildRecord[] = [];
    for (const b of this.core.indexMeta.allBuilds()) {
      if (b.state === "InProgress" && b.nodeId !== undefined && inFlight.has(b.nodeId)) inFlight.set(b.nodeId, inFlight.get(b.nodeId)! + 1);
      else if (isDue(b, now) && !this.isIndexGarbage(b) && !this.indexGcPending.has(b.buildId) && this.core.collections.has(b.collectionId)) due.push(b);
    }
    if (due.length === 0) return;
    due.sort((x, y) => (x.buildId < y.buildId ? -1 : x.buildId > y.buildId ? 1 : 0));
    const plan = planBuilds(
      due.map((b) => b.buildId),
      inFlight,
    );
    for (const b of due) {
      const nodeId = plan.get(b.buildId);
      if (nodeId === undefined) continue;
      const next = assigned(b, nodeId, now);
      await this.core.indexMeta.saveBuild(next);
      this.tellBuild(next);
      this.core.ctx.log.info(
        { collection: String(b.collectionId), segment: String(b.segmentId), index: String(b.indexId), build: String(b.buildId), node: nodeId, retry: b.state === "Failed" },
        "index build given to a datanode",
      );
    }
  }

  private tellBuild(b: BuildRecord): void {
    const index = this.core.indexMeta.index(b.indexId);
    const segment = this.core.segments.get(b.segmentId);
    const coll = this.core.collections.get(b.collectionId);
    if (!index || !segment || !coll || b.nodeId === undefined) return;
    this.core.tellDatanode(b.nodeId, "BuildIndex", {
      buildId: b.buildId,
      collectionId: b.collectionId,
      segment,
      schema: coll.schema,
      index,
      fileKey: indexFileKey(b.collectionId, b.partitionId, b.segmentId, b.indexId, b.buildId),
    });
    this.core.channels.nodes.get(b.nodeId)?.sentAt.set(`build:${b.buildId}`, Date.now());
  }

  /** Builds whose datanode stopped heartbeating are lost: they are given out again after a backoff. */
  private async checkLostBuilds(now: number): Promise<void> {
    const available = this.core.env.config.heartbeatAvailableMs;
    for (const b of [...this.core.indexMeta.allBuilds()]) {
      if (b.state !== "InProgress" || b.nodeId === undefined || this.core.channels.isAlive(b.nodeId, now, available)) continue;
      // a node not heard of since datacoord started gets the same grace as its vchannels
      if (!this.core.channels.nodes.has(b.nodeId) && now < this.core.startedAt + available) continue;
      const next = lost(b, `datanode ${b.nodeId} was lost during the build (no heartbeat for ${available} ms)`, now);
      await this.core.indexMeta.saveBuild(next);
      this.core.ctx.log.warn(
        { collection: String(b.collectionId), segment: String(b.segmentId), build: String(b.buildId), node: b.nodeId, retryInMs: next.retryAt! - now },
        "index build lost with its datanode; it will be given out again",
      );
    }
  }

  /** Re-tells a datanode the builds its heartbeat does not list (a lost tell, or a restarted node). */
  reconcileBuilds(hb: DatanodeHeartbeat, now: number): void {
    if (!Array.isArray(hb.indexBuilds)) return;
    const node = this.core.channels.nodes.get(hb.nodeId);
    if (!node) return;
    const held = new Set(hb.indexBuilds.map(String));
    const gap = Math.max(1_000, 3 * this.core.env.config.heartbeatIntervalMs);
    for (const b of this.core.indexMeta.allBuilds()) {
      if (b.state !== "InProgress" || b.nodeId !== hb.nodeId || held.has(String(b.buildId))) continue;
      const at = node.sentAt.get(`build:${b.buildId}`) ?? b.assignedAt ?? 0;
      if (now - at < gap) continue;
      this.core.ctx.log.info({ build: String(b.buildId), node: hb.nodeId }, "datanode does not hold a build given to it; telling it again");
      this.tellBuild(b);
    }
  }

  /**
   * Removes the artifacts and records of builds whose index was dropped or whose segment is gone (off the
   * mailbox), and sweeps the artifacts of `dropped` indexes. The promise settles when the task is done
   * and never rejects; a failure is retried later.
   */
  startIndexGc(dropped: IndexGcTarget["dropped"] = []): Promise<void> {
    const builds = [...this.core.indexMeta.allBuilds()].filter((b) => !this.indexGcPending.has(b.buildId) && this.isIndexGarbage(b));
    if (builds.length === 0 && dropped.length === 0) return Promise.resolve();
    for (const b of builds) this.indexGcPending.add(b.buildId);
    const target: IndexGcTarget = { builds, dropped };
    const work = collectIndexGarbage(this.core.env.objectStore, this.core.indexMeta, target);
    after(this.core.ctx, work, (r) => this.onIndexGcDone(target, r));
    return work.then(
      () => undefined,
      () => undefined,
    );
  }

  private onIndexGcDone(target: IndexGcTarget, r: PipeResult<number>): void {
    for (const b of target.builds) this.indexGcPending.delete(b.buildId);
    if (!r.ok) {
      this.indexGcRetries++;
      this.core.ctx.log.warn({ builds: target.builds.length, err: String(r.error) }, "removing index files failed; retrying");
      this.core.retryLater(`index-gc:${this.indexGcRetries}`, this.indexGcRetries, I.IndexGc, target.dropped);
      return;
    }
    this.indexGcRetries = 0;
    for (const b of target.builds) this.core.indexMeta.forgetBuild(b);
    if (r.value > 0 || target.builds.length > 0) {
      this.core.ctx.log.info({ builds: target.builds.length, objects: r.value }, "index files removed");
    }
  }

  /** Removes the indexes of a dropped collection and collects their files. */
  async dropCollection(collectionId: bigint): Promise<void> {
    const indexes = this.core.indexMeta.indexesOf(collectionId);
    for (const i of indexes) await this.core.indexMeta.removeIndex(i);
    if (indexes.length > 0) this.core.ctx.log.info({ collection: String(collectionId), indexes: indexes.length }, "indexes of a dropped collection removed");
    void this.startIndexGc(indexes.map((i) => ({ collectionId, indexId: i.indexId })));
  }

  /** A tick's index work: builds lost with their datanode, builds due, garbage found since the last one. */
  async tick(now: number): Promise<void> {
    try {
      await this.checkLostBuilds(now);
    } catch (err) {
      this.core.ctx.log.error({ err: String(err) }, "checking index builds failed");
    }
    await this.scheduleBuildsSafely();
    // (a failed collection backs off on its own timer)
    if (this.indexGcRetries === 0) void this.startIndexGc();
  }
}

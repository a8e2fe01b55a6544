/**
 * A datanode's index-build role (Milvus's IndexNode, folded into the datanode): BuildIndex from datacoord
 * runs off the mailbox — the segment's vector column is read, the index built in a worker thread
 * (index_builder.ts), the artifact written to the key datacoord gave — and the outcome is reported with
 * datacoord.IndexBuilt, retried until datacoord answers. The heartbeat lists the builds the node holds,
 * so datacoord re-tells one the node never got or forgot.
 */
import { VbError } from "../../protocol/errors.ts";
import type { Req, Res } from "../../protocol/messages/api.ts";
import type { DatacoordApi, DatanodeApi } from "../../protocol/messages/datacoord.ts";
import type { IndexInfo } from "../../protocol/messages/indexes.ts";
import type { SegmentInfo } from "../../protocol/meta.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import type { ActorContext, PipeResult } from "../../runtime/actor.ts";
import { after } from "../continuations.ts";
import type { ClusterEnv } from "../env.ts";
import { estimateIndexMemory } from "../index/memory.ts";
import { readSegment } from "../storage/insert_log.ts";
import { I, type AskDatacoord, type RetryLater } from "./channel.ts";
import { buildParamsOf, IndexBuilder } from "./index_builder.ts";
import { bigintOf, obj, stringOf } from "./requests.ts";
import { dnBuildIndexLatency } from "../metrics.ts";

/** An index build this node holds: running, or reporting its outcome to datacoord. */
interface Build {
  buildId: bigint;
  collectionId: bigint;
  segmentId: bigint;
  indexId: bigint;
  phase: "building" | "reporting";
  report?: Req<DatacoordApi, "IndexBuilt">;
  reportRetries: number;
}

interface BuildOrder {
  segment: SegmentInfo;
  schema: CollectionSchema;
  index: IndexInfo;
  fileKey: string;
}

export class IndexBuildService {
  private readonly builds = new Map<bigint, Build>();
  private readonly builder = new IndexBuilder();
  private closed = false;

  constructor(
    private readonly ctx: ActorContext,
    private readonly env: ClusterEnv,
    private readonly nodeId: string,
    private readonly askDatacoord: AskDatacoord,
    private readonly retryLater: RetryLater,
  ) {}

  /** The builds this node holds, for its heartbeat. */
  held(): bigint[] {
    return [...this.builds.keys()];
  }

  /** The builds this node holds, for GetStatus. */
  status(): NonNullable<Res<DatanodeApi, "GetStatus">["indexBuilds"]> {
    return [...this.builds.values()].map((b) => ({ buildId: b.buildId, segmentId: b.segmentId, indexId: b.indexId, phase: b.phase }));
  }

  /** Stops the worker threads; builds in flight are dropped (datacoord gives them out again). */
  async close(): Promise<void> {
    this.closed = true;
    await this.builder.close();
    this.builds.clear();
  }

  buildIndex(body: unknown): null {
    const b = obj(body, "BuildIndex");
    const buildId = bigintOf(b.buildId, "buildId");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const segment = obj(b.segment, "segment") as unknown as SegmentInfo;
    const schema = obj(b.schema, "schema") as unknown as CollectionSchema;
    const index = obj(b.index, "index") as unknown as IndexInfo;
    const fileKey = stringOf(b.fileKey, "fileKey");
    bigintOf(segment.segmentId, "segment.segmentId");
    bigintOf(index.indexId, "index.indexId");
    if (!Array.isArray(schema.fields)) throw VbError.invalid("schema.fields must be a list");
    if (!fileKey.startsWith("index_files/")) throw VbError.invalid(`fileKey "${fileKey}": index artifacts live under index_files/`);
    if (segment.collectionId !== collectionId || index.collectionId !== collectionId) {
      throw VbError.invalid(`segment and index must belong to collection ${collectionId}`);
    }
    if (this.builds.has(buildId) || this.closed) return null; // told again while it runs
    this.builds.set(buildId, { buildId, collectionId, segmentId: segment.segmentId, indexId: index.indexId, phase: "building", reportRetries: 0 });
    this.ctx.log.info(
      { collection: String(collectionId), segment: String(segment.segmentId), build: String(buildId), type: index.indexType, rows: segment.numRows },
      "building index",
    );
    const started = performance.now();
    const work = this.runBuild({ segment, schema, index, fileKey });
    const labels = (status: string) => ({ node_id: this.nodeId, index_type: index.indexType, status });
    work.then(
      () => dnBuildIndexLatency.observe(labels("success"), performance.now() - started),
      () => dnBuildIndexLatency.observe(labels("fail"), performance.now() - started),
    );
    after(this.ctx, work, (r) => this.onBuilt(buildId, fileKey, r));
    return null;
  }

  /** Reads the segment's vectors, builds the index in a worker thread, writes the artifact (off the mailbox). */
  private async runBuild(order: BuildOrder): Promise<{ serializedSize: number; memorySize: number }> {
    const { segment, schema, index } = order;
    const field = schema.fields.find((f) => f.fieldId === index.fieldId);
    if (!field || field.type !== "FloatVector" || !field.dim) {
      throw VbError.invalid(`index.fieldId: ${index.fieldId} is not a FloatVector field of collection ${index.collectionId}`);
    }
    // only the vector column is decoded
    const data = await readSegment(this.env.objectStore, segment, { ...schema, fields: [field] });
    const vectors = data.columns[0]!.data as Float32Array;
    const params = buildParamsOf(index);
    const bytes = await this.builder.build({ vectors, dim: field.dim, metric: index.metricType, indexType: index.indexType, params });
    await this.env.objectStore.put(order.fileKey, bytes);
    return { serializedSize: bytes.byteLength, memorySize: estimateIndexMemory(index.indexType, data.numRows, field.dim, params) };
  }

  private onBuilt(buildId: bigint, fileKey: string, r: PipeResult<{ serializedSize: number; memorySize: number }>): void {
    const build = this.builds.get(buildId);
    if (!build || build.phase !== "building") return;
    build.phase = "reporting";
    const fields = { collection: String(build.collectionId), segment: String(build.segmentId), build: String(build.buildId) };
    if (r.ok) {
      build.report = { buildId: build.buildId, nodeId: this.nodeId, ok: true, fileKey, ...r.value };
      this.ctx.log.info({ ...fields, bytes: r.value.serializedSize }, "index built");
    } else {
      const e = VbError.from(r.error);
      build.report = { buildId: build.buildId, nodeId: this.nodeId, ok: false, failReason: `${e.codeName} (${e.code}): ${e.message}` };
      this.ctx.log.warn({ ...fields, err: e.message }, "index build failed");
    }
    this.sendReport(build.buildId);
  }

  sendReport(buildId: bigint): void {
    const build = this.builds.get(buildId);
    if (!build?.report || this.closed) return;
    after(this.ctx, this.askDatacoord("IndexBuilt", build.report), (r) => this.onReported(buildId, r));
  }

  private onReported(buildId: bigint, r: PipeResult<unknown>): void {
    const build = this.builds.get(buildId);
    if (!build) return;
    if (r.ok) {
      this.builds.delete(buildId);
      return;
    }
    const err = VbError.from(r.error);
    if (!err.retriable) {
      // datacoord gave the build to another node, or no longer has it: nothing more to do here
      this.ctx.log.warn({ build: String(buildId), err: err.message }, "datacoord refused an index build report; dropping the build");
      this.builds.delete(buildId);
      return;
    }
    build.reportRetries++;
    this.retryLater(`report:${buildId}`, build.reportRetries, I.Report, buildId);
  }
}

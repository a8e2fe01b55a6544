/**
 * A sealed segment as an actor (Milvus's LocalSegment behind the Segment interface), at
 * `vb.seg.<node>.<segment>`, a child of the querynode that loaded it. It owns the segment: columns,
 * primary-key lookup, delete stamps, COSINE norms and vector indexes change only in its mailbox.
 *
 * Reads (Search, Query) start in the mailbox and run off it (`reenter`): the scans run on the search
 * threads over columns that never change and delete stamps that only move to earlier deletes, so
 * reads of one segment run side by side while deletes arrive. COSINE norms are computed once, on a
 * search thread, and stored back in the mailbox before the read that needed them goes on.
 *
 * Its data outlives the actor instance: a crash restarts the actor over the same columns (no read of
 * the object store) once they are found intact; when they are not, it stops for good and its
 * querynode releases it, which the distribution shows, and querycoord places it again.
 *
 * Memory is the querynode's to account: an index loads through the querynode (LoadIndex asks it),
 * which attaches the loaded handle here (AttachIndex) and books the bytes the reply names.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { IndexLoadInfo } from "../../protocol/messages/indexes.ts";
import { QUERYNODE, type QueryResult, type SearchResult } from "../../protocol/messages/querynode.ts";
import type { SegmentDescription } from "../../protocol/messages/segment.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { Actor, type Message } from "../../runtime/actor.ts";
import { querySources, readContext, searchResultOf, type ReadContext } from "./read_kernel.ts";
import { bodyOf, invalid, requiredId, requiredInteger } from "../request_fields.ts";
import { checkIndexLoadInfo, checkQuerySpec, checkSearchSpec, pkColumn } from "./requests.ts";
import type { SealedSegment } from "./sealed_segment.ts";
import { searchSealed } from "./sealed_search.ts";
import type { IndexHandle, SearchThreads } from "./search_threads.ts";
import { segmentTestHooks } from "./test_hooks.ts";
import { observedSegmentRead } from "./read_metrics.ts";

export interface SealedSegmentDeps {
  nodeId: string;
  /** the querynode that loaded it (and accounts its memory) */
  querynode: string;
  threads: SearchThreads;
}

const LOAD_INDEX_TIMEOUT_MS = 120_000;

export class SealedSegmentActor extends Actor {
  private readonly read: ReadContext;
  private readonly id: string;

  constructor(
    private readonly seg: SealedSegment,
    private readonly deps: SealedSegmentDeps,
  ) {
    super();
    this.read = readContext(seg.schema);
    this.id = String(seg.segmentId);
  }

  override preStart(): void {
    if (this.ctx.restarts === 0) return;
    const damage = segmentTestHooks.refuseRestart.has(this.id) ? "its columns are damaged (test hook)" : damageOf(this.seg);
    if (damage) throw new Error(`segment ${this.id} cannot start again: ${damage}`);
    this.ctx.log.info({ segment: this.id, restarts: this.ctx.restarts }, "segment actor restarted over its data in memory");
  }

  override receive(msg: Message): unknown {
    switch (msg.type) {
      case "segment.Search":
        return observedSegmentRead(msg, this.deps.nodeId, "Sealed", () => this.search(msg.body));
      case "segment.Query":
        return observedSegmentRead(msg, this.deps.nodeId, "Sealed", () => this.query(msg.body));
      case "segment.ApplyDelete":
        return this.applyDelete(msg.body);
      case "segment.LoadIndex":
        return this.loadIndex(msg.body);
      case "segment.AttachIndex":
        return this.attachIndex(msg.body);
      case "segment.ReleaseIndex":
        return this.releaseIndex(msg.body);
      case "segment.DropLostIndexes":
        return this.dropLostIndexes();
      case "segment.Describe":
        return describeSealed(this.seg, this.deps.nodeId, this.ctx.restarts);
      default:
        throw new VbError(ErrorCode.Unimplemented, `unknown request "${msg.type}": see SegmentApi for the verbs a segment serves`);
    }
  }

  private readPosition(b: Record<string, unknown>, verb: string): bigint {
    return requiredInteger(verb, b, "readPosition");
  }

  private checkCollection(collectionId: bigint, verb: string): void {
    if (collectionId !== this.seg.collectionId) {
      throw invalid(verb, `segment ${this.id} belongs to collection ${this.seg.collectionId}, not ${collectionId}`);
    }
  }

  private search(body: unknown): unknown {
    const verb = "segment.Search";
    const b = bodyOf(verb, body);
    const r = this.readPosition(b, verb);
    const spec = checkSearchSpec(b.spec, verb, this.seg.schema);
    this.checkCollection(spec.collectionId, verb);
    if (segmentTestHooks.crashOnSearch.delete(this.id)) throw new Error(`segment ${this.id}: crash injected by a test hook`);
    const run = () =>
      searchSealed(this.read, [this.seg], spec, r, this.deps.threads).then((hits): SearchResult => searchResultOf(this.read, hits, spec.outputFieldIds));
    if (spec.metric !== "COSINE" || this.seg.norms.has(spec.annsFieldId)) return this.ctx.reenter(run());
    // norms first (on a search thread), stored here, then the search
    const field = this.read.fieldIndex.get(spec.annsFieldId)!;
    const dim = this.seg.schema.fields[field]!.dim ?? 0;
    return this.ctx.reenterAfter(this.deps.threads.norms(this.seg.columns[field]!.data as Float32Array, dim), (norms) => {
      if (!this.seg.norms.has(spec.annsFieldId)) this.seg.norms.set(spec.annsFieldId, norms);
      return this.ctx.reenter(run());
    });
  }

  private query(body: unknown): unknown {
    const verb = "segment.Query";
    const b = bodyOf(verb, body);
    const r = this.readPosition(b, verb);
    const spec = checkQuerySpec(b.spec, verb, this.seg.schema);
    this.checkCollection(spec.collectionId, verb);
    return this.ctx.reenter(querySources(this.read, [this.seg], spec, r) as Promise<QueryResult>);
  }

  private applyDelete(body: unknown): { changed: number } {
    const verb = "segment.ApplyDelete";
    const b = bodyOf(verb, body);
    const pks = pkColumn(verb, b, "pks");
    const positions = b.positions;
    if (!(positions instanceof BigInt64Array) || positions.length !== pks.length) {
      throw invalid(verb, `"positions" must be a BigInt64Array with one position per pk (${pks.length})`);
    }
    const parts = b.partitionIds;
    if (parts !== undefined && (!(parts instanceof BigInt64Array) || parts.length !== pks.length)) {
      throw invalid(verb, `"partitionIds" must be a BigInt64Array with one partition per pk (${pks.length})`);
    }
    if ((pks instanceof BigInt64Array) !== (this.seg.pks instanceof BigInt64Array)) {
      throw invalid(verb, `"pks" are not of the collection's primary key type`);
    }
    return { changed: this.seg.applyDeletes(pks, positions, parts as BigInt64Array | undefined) };
  }

  /** From anywhere: the querynode loads the index (it accounts the memory) and attaches it here. */
  private loadIndex(body: unknown): unknown {
    const verb = "segment.LoadIndex";
    const info = checkIndexLoadInfo(bodyOf(verb, body).info, verb, "info");
    if (info.segmentId !== this.seg.segmentId) throw invalid(verb, `info.segmentId ${info.segmentId} is not this segment (${this.id})`);
    checkIndexField(this.seg.schema, info, verb);
    if (this.seg.indexes.get(info.indexId)?.info.buildId === info.buildId) return null;
    const work = this.ctx.ask<null>(
      this.deps.querynode,
      `${QUERYNODE}.LoadIndex`,
      { collectionId: this.seg.collectionId, infos: [info] },
      { timeoutMs: LOAD_INDEX_TIMEOUT_MS },
    );
    return this.ctx.reenter(work);
  }

  /**
   * From the querynode, in its process: an index it loaded on a search thread. Replaces an earlier build
   * of the same index; answers the bytes the segment no longer holds (the replaced build's).
   */
  private attachIndex(body: unknown): { releasedBytes: number } {
    const verb = "segment.AttachIndex";
    const b = bodyOf(verb, body);
    const handle = b.handle;
    if (!this.deps.threads.owns(handle)) throw invalid(verb, `"handle" must be an index loaded by this segment's querynode (send LoadIndex instead)`);
    const info = checkIndexLoadInfo(b.info, verb, "info");
    const mismatch =
      info.segmentId !== this.seg.segmentId
        ? `it is an index of segment ${info.segmentId}`
        : (indexMismatch(this.seg, info, handle) ?? (this.deps.threads.isLost(handle) ? "its search thread died" : undefined));
    if (mismatch) throw VbError.invalid(`index ${info.indexId} from ${info.fileKey} cannot serve segment ${this.id}: ${mismatch}`);
    const old = this.seg.indexes.get(info.indexId);
    if (old) this.deps.threads.release(old.handle);
    this.seg.indexes.set(info.indexId, { info, handle, memoryBytes: handle.info.memoryBytes });
    return { releasedBytes: old?.memoryBytes ?? 0 };
  }

  private releaseIndex(body: unknown): { memoryBytes: number } {
    const verb = "segment.ReleaseIndex";
    const indexId = requiredId(verb, bodyOf(verb, body), "indexId");
    const a = this.seg.indexes.get(indexId);
    if (!a) return { memoryBytes: 0 };
    this.seg.indexes.delete(indexId);
    this.deps.threads.release(a.handle);
    return { memoryBytes: a.memoryBytes };
  }

  /** The querynode lost a search thread: the indexes it held are gone. */
  private dropLostIndexes(): { lost: { indexId: bigint; memoryBytes: number }[] } {
    const lost: { indexId: bigint; memoryBytes: number }[] = [];
    for (const [id, a] of [...this.seg.indexes]) {
      if (!this.deps.threads.isLost(a.handle)) continue;
      this.seg.indexes.delete(id);
      lost.push({ indexId: id, memoryBytes: a.memoryBytes });
    }
    return { lost };
  }
}

/** What Describe answers for a sealed segment. */
export function describeSealed(seg: SealedSegment, nodeId: string, restarts: number): SegmentDescription {
  let memoryBytes = seg.memoryBytes;
  const indexes = [...seg.indexes.values()].map((a) => {
    memoryBytes += a.memoryBytes;
    return {
      indexId: a.info.indexId,
      buildId: a.info.buildId,
      fieldId: a.info.fieldId,
      indexType: a.info.indexType,
      metricType: a.info.metricType,
      memoryBytes: a.memoryBytes,
    };
  });
  return {
    segment: String(seg.segmentId),
    state: "Sealed",
    collectionId: seg.collectionId,
    partitionId: seg.partitionId,
    vchannel: seg.vchannel,
    nodeId,
    rows: seg.numRows - seg.deletedRows,
    insertedRows: seg.numRows,
    deletedRows: seg.deletedRows,
    memoryBytes,
    startPosition: seg.startPosition,
    endPosition: seg.endPosition,
    indexes,
    restarts,
  };
}

/** Why a segment's data in memory cannot serve (a column of the wrong length), or undefined. */
function damageOf(seg: SealedSegment): string | undefined {
  const n = seg.numRows;
  if (seg.positions.length !== n) return `positions hold ${seg.positions.length} rows, not ${n}`;
  if (seg.deletedAt.length !== n) return `delete stamps hold ${seg.deletedAt.length} rows, not ${n}`;
  if (seg.pks.length !== n) return `primary keys hold ${seg.pks.length} rows, not ${n}`;
  for (let i = 0; i < seg.columns.length; i++) {
    const f = seg.schema.fields[i]!;
    const d = seg.columns[i]!.data as { length: number };
    const want = f.type === "FloatVector" ? n * (f.dim ?? 0) : n;
    if (d.length !== want) return `column "${f.name}" holds ${d.length} values, not ${want}`;
  }
  return undefined;
}

/** 1100 unless the index is on a FloatVector field of the schema. */
export function checkIndexField(schema: CollectionSchema, i: IndexLoadInfo, verb: string): void {
  const f = schema.fields.find((x) => x.fieldId === i.fieldId);
  if (!f || f.type !== "FloatVector") {
    throw invalid(verb, `index ${i.indexId} of segment ${i.segmentId}: field ${i.fieldId} is not a FloatVector field of "${schema.name}"`);
  }
}

/** Why a loaded index cannot serve a segment's field, or undefined when it can. */
export function indexMismatch(seg: SealedSegment, i: IndexLoadInfo, h: IndexHandle): string | undefined {
  const f = seg.schema.fields.find((x) => x.fieldId === i.fieldId);
  if (h.info.rows !== seg.numRows) return `it covers ${h.info.rows} rows, the segment holds ${seg.numRows}`;
  if (h.info.dim !== (f?.dim ?? 0)) return `it has dim ${h.info.dim}, field ${i.fieldId} has dim ${f?.dim}`;
  if (h.info.metric !== i.metricType) return `it was built for ${h.info.metric}, the index says ${i.metricType}`;
  return undefined;
}

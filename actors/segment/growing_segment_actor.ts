/**
 * A growing segment as an actor: the rows of one partition that a delegator consumed from its vchannel
 * and no sealed segment holds yet, at `vb.seg.<node>.g<replica>-<vchannel>-<partition>`. It is a child of
 * its delegator, in the delegator's process, and only its delegator feeds it: inserts, deletes (in
 * channel order) and the drop of rows the sealed segments now answer for arrive as the parent's
 * private messages (`segment.internal.*`), in order with the reads the delegator sends it.
 *
 * Reads run off the mailbox over a snapshot of the batch list (see growing.ts: a batch never changes but
 * for delete stamps, which never affect a read that started before them). A read names the position
 * ranges its pinned sealed view answers for (`covered`); rows there are skipped.
 */
import { ALL_PARTITIONS, type PkColumn } from "../../protocol/dml.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { CoveredRange, SegmentDescription } from "../../protocol/messages/segment.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { Actor, type Message } from "../../runtime/actor.ts";
import { GrowingRows, type GrowingBatch } from "./growing.ts";
import { querySources, readContext, searchResultOf, searchSources, type ReadContext, type RowSource } from "./read_kernel.ts";
import { bodyOf, invalid, requiredInteger } from "../request_fields.ts";
import { checkQuerySpec, checkSearchSpec, pkColumn } from "./requests.ts";
import { observedSegmentRead } from "./read_metrics.ts";

/** What the delegator tells its growing segments. */
export const GROWING = {
  Insert: "segment.internal.Insert",
  Delete: "segment.internal.Delete",
  Drop: "segment.internal.Drop",
  Sweep: "segment.internal.Sweep",
} as const;

export interface GrowingSegmentOptions {
  name: string;
  nodeId: string;
  collectionId: bigint;
  vchannel: string;
  partitionId: bigint;
  schema: CollectionSchema;
}

/** A delete of the channel: pks at one position, in one partition or every one (-1). */
export interface GrowingDelete {
  pks: PkColumn;
  position: bigint;
  partitionId: bigint;
}

/** Rows of dropped batches whose keys leave the index in one turn of the mailbox (a few ms). */
const SWEEP_ROWS = 20_000;

export class GrowingSegmentActor extends Actor {
  private readonly rows = new GrowingRows();
  private readonly read: ReadContext;

  constructor(private readonly opts: GrowingSegmentOptions) {
    super();
    this.read = readContext(opts.schema);
  }

  override receive(msg: Message): unknown {
    switch (msg.type) {
      case GROWING.Insert:
        this.rows.add(msg.body as Omit<GrowingBatch, "deletedAt" | "positions">);
        return;
      case GROWING.Delete: {
        const d = msg.body as GrowingDelete;
        this.rows.applyDelete(d.pks, d.position, d.partitionId);
        return;
      }
      case GROWING.Drop: {
        const positions = msg.body as ReadonlySet<bigint>;
        if (this.rows.dropWhere((b) => positions.has(b.position)) > 0) this.sweep();
        return;
      }
      case GROWING.Sweep:
        return this.sweep();
      case "segment.Search":
        return observedSegmentRead(msg, this.opts.nodeId, "Growing", () => this.search(msg.body));
      case "segment.Query":
        return observedSegmentRead(msg, this.opts.nodeId, "Growing", () => this.query(msg.body));
      case "segment.ApplyDelete":
        return this.applyDelete(msg.body);
      case "segment.Describe":
        return this.describe();
      case "segment.LoadIndex":
      case "segment.ReleaseIndex":
        throw VbError.invalid(`${msg.type}: ${this.opts.name} is a growing segment; indexes are built for sealed segments only`);
      default:
        throw new VbError(ErrorCode.Unimplemented, `unknown request "${msg.type}": see SegmentApi for the verbs a segment serves`);
    }
  }

  /** Takes the dropped rows' keys out of the pk index a chunk a turn of the mailbox. */
  private sweep(): void {
    if (this.rows.sweep(SWEEP_ROWS)) this.ctx.self(GROWING.Sweep);
  }

  private args(body: unknown, verb: string): { b: Record<string, unknown>; r: bigint; covered: (src: RowSource) => boolean } {
    const b = bodyOf(verb, body);
    const r = requiredInteger(verb, b, "readPosition");
    return { b, r, covered: coveredBy(b.covered, verb) };
  }

  private checkCollection(collectionId: bigint, verb: string): void {
    if (collectionId !== this.opts.collectionId) {
      throw invalid(verb, `${this.opts.name} belongs to collection ${this.opts.collectionId}, not ${collectionId}`);
    }
  }

  private search(body: unknown): unknown {
    const verb = "segment.Search";
    const { b, r, covered } = this.args(body, verb);
    const spec = checkSearchSpec(b.spec, verb, this.opts.schema);
    this.checkCollection(spec.collectionId, verb);
    const batches = this.rows.snapshot();
    return this.ctx.reenter(
      searchSources(this.read, batches, spec, r, covered).then((hits) => searchResultOf(this.read, hits, spec.outputFieldIds)),
    );
  }

  private query(body: unknown): unknown {
    const verb = "segment.Query";
    const { b, r, covered } = this.args(body, verb);
    const spec = checkQuerySpec(b.spec, verb, this.opts.schema);
    this.checkCollection(spec.collectionId, verb);
    return this.ctx.reenter(querySources(this.read, this.rows.snapshot(), spec, r, covered));
  }

  /** A delete from anywhere: one position per pk. */
  private applyDelete(body: unknown): { changed: number } {
    const verb = "segment.ApplyDelete";
    const b = bodyOf(verb, body);
    const pks = pkColumn(verb, b, "pks");
    const positions = b.positions;
    if (!(positions instanceof BigInt64Array) || positions.length !== pks.length) {
      throw invalid(verb, `"positions" must be a BigInt64Array with one position per pk (${pks.length})`);
    }
    if ((pks instanceof BigInt64Array) !== this.read.int64Pk) throw invalid(verb, `"pks" are not of the collection's primary key type`);
    let changed = 0;
    for (let i = 0; i < pks.length; i++) {
      const one: PkColumn = pks instanceof BigInt64Array ? pks.subarray(i, i + 1) : [pks[i]!];
      changed += this.rows.applyDelete(one, positions[i]!, ALL_PARTITIONS);
    }
    return { changed };
  }

  private describe(): SegmentDescription {
    const batches = this.rows.snapshot();
    let deleted = 0;
    for (const batch of batches) for (let i = 0; i < batch.numRows; i++) if (batch.deletedAt[i] !== 0n) deleted++;
    return {
      segment: this.opts.name,
      state: "Growing",
      collectionId: this.opts.collectionId,
      partitionId: this.opts.partitionId,
      vchannel: this.opts.vchannel,
      nodeId: this.opts.nodeId,
      rows: this.rows.numRows - deleted,
      insertedRows: this.rows.numRows,
      deletedRows: deleted,
      memoryBytes: this.rows.numBytes,
      startPosition: batches[0]?.position ?? 0n,
      endPosition: batches[batches.length - 1]?.position ?? 0n,
      indexes: [],
      restarts: this.ctx.restarts,
    };
  }
}

/** The rows a read skips: those in the position ranges it names (1100 for a malformed list). */
function coveredBy(v: unknown, verb: string): (src: RowSource) => boolean {
  if (v === undefined || v === null) return () => false;
  if (!Array.isArray(v)) throw invalid(verb, `"covered" must be a list of {partitionId, start, end}`);
  const byPartition = new Map<bigint, { start: bigint; end: bigint }[]>();
  for (const [i, x] of (v as unknown[]).entries()) {
    const c = x as CoveredRange;
    if (typeof c !== "object" || c === null || typeof c.partitionId !== "bigint" || typeof c.start !== "bigint" || typeof c.end !== "bigint") {
      throw invalid(verb, `covered[${i}] must be {partitionId, start, end} of bigint`);
    }
    let l = byPartition.get(c.partitionId);
    if (!l) byPartition.set(c.partitionId, (l = []));
    l.push({ start: c.start, end: c.end });
  }
  return (src) => {
    const l = byPartition.get(src.partitionId);
    if (!l) return false;
    const p = (src as GrowingBatch).position;
    return l.some((x) => x.start <= p && p <= x.end);
  };
}

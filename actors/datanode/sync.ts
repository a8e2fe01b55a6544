/**
 * Writing a sealed segment's objects (the datanode's "sync"): an L1 segment becomes an insert log and a
 * stats log, an L0 segment a delta log. It runs off the actor's mailbox (the actor starts it with
 * `pipeToSelf` and gets the object refs back as a message); keys depend only on the segment's ids, so a
 * retried or replayed write overwrites the same objects.
 */
import type { PkColumn } from "../../protocol/dml.ts";
import type { BinlogRef } from "../../protocol/meta.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import type { ObjectStore } from "../../runtime/object_store.ts";
import { encodeDeltaLog, type DeltaData } from "../storage/delta_log.ts";
import { ALL_FIELDS, encodeInsertLog, type SegmentData } from "../storage/insert_log.ts";
import { deltaLogKey, insertLogKey, statsLogKey, type SegmentKeyParts } from "../storage/layout.ts";
import { computeStats, encodeStats } from "../storage/stats_log.ts";

export interface WrittenSegment {
  numRows: number;
  binlogs: BinlogRef[];
  deltalogs: BinlogRef[];
  statslogs: string[];
  /** bytes of the objects written */
  memorySize: number;
}

const yieldTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Writes an L1 segment's insert log and stats log. A segment without rows writes nothing. */
export async function writeInsertSegment(
  store: ObjectStore,
  header: SegmentKeyParts,
  schema: CollectionSchema,
  rows: () => SegmentData & { pks: PkColumn },
): Promise<WrittenSegment> {
  await yieldTurn();
  const data = rows();
  if (data.numRows === 0) return { numRows: 0, binlogs: [], deltalogs: [], statslogs: [], memorySize: 0 };
  const insertLog = encodeInsertLog(header, schema, data);
  const stats = encodeStats(computeStats(schema, data.columns, data.pks, data.numRows));
  const key = insertLogKey(header);
  const statsKey = statsLogKey(header);
  await Promise.all([store.put(key, insertLog), store.put(statsKey, stats)]);
  return {
    numRows: data.numRows,
    binlogs: [{ fieldId: ALL_FIELDS, key, rows: data.numRows, bytes: insertLog.byteLength }],
    deltalogs: [],
    statslogs: [statsKey],
    memorySize: insertLog.byteLength,
  };
}

/** Writes an L0 segment's delta log. */
export async function writeDeltaSegment(store: ObjectStore, header: SegmentKeyParts, deletes: () => DeltaData): Promise<WrittenSegment> {
  await yieldTurn();
  const d = deletes();
  if (d.numRows === 0) return { numRows: 0, binlogs: [], deltalogs: [], statslogs: [], memorySize: 0 };
  const bytes = encodeDeltaLog(header, d);
  const key = deltaLogKey(header);
  await store.put(key, bytes);
  return {
    numRows: d.numRows,
    binlogs: [],
    deltalogs: [{ fieldId: 0, key, rows: d.numRows, bytes: bytes.byteLength }],
    statslogs: [],
    memorySize: bytes.byteLength,
  };
}

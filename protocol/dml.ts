/**
 * What travels on a DML channel (a JetStream stream `VB_DML_<n>`, subject `vb.dml.<n>.<vchannel>`).
 * The stream sequence of a message is its position, which within a vchannel is the version of every
 * row it carries (DESIGN §3). An upsert is a delete and an insert of the same keys in one message:
 * the delete applies first, so the new rows (at the same position) stay visible and older ones do not.
 */
import type { Column } from "./schema.ts";

/** Primary keys of a batch: Int64 pks as a BigInt64Array, VarChar pks as strings. */
export type PkColumn = BigInt64Array | string[];

export interface InsertMsg {
  k: "insert";
  collectionId: bigint;
  partitionId: bigint;
  /** hybrid timestamp from the TSO */
  ts: bigint;
  numRows: number;
  /** primary keys of the rows, in row order (also present among `columns`) */
  pks: PkColumn;
  /** every field of the schema (the dynamic field `$meta` included when enabled), in schema order */
  columns: Column[];
}

export interface DeleteMsg {
  k: "delete";
  collectionId: bigint;
  /** -1n: every partition */
  partitionId: bigint;
  ts: bigint;
  pks: PkColumn;
}

export interface UpsertMsg {
  k: "upsert";
  collectionId: bigint;
  partitionId: bigint;
  ts: bigint;
  numRows: number;
  pks: PkColumn;
  columns: Column[];
}

export type DmlMsg = InsertMsg | DeleteMsg | UpsertMsg;

export const ALL_PARTITIONS = -1n;

export function isDmlMsg(v: unknown): v is DmlMsg {
  if (typeof v !== "object" || v === null) return false;
  const k = (v as DmlMsg).k;
  return k === "insert" || k === "delete" || k === "upsert";
}

export function pkCount(pks: PkColumn): number {
  return pks.length;
}

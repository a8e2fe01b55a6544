/**
 * What a DML message of a vchannel must be to be applied, for every reader of the channel — the datanode
 * that cuts it into segments and the delegator that serves its growing rows — so that both skip the same
 * messages and the sealed copies agree with what was served. A message is decoded (protocol/codec.ts) and
 * checked against the collection's schema, per protocol/dml.ts: its kind, its collection, a bigint ts and
 * partitionId (an insert's partition ≥ 0, a delete's ≥ 0 or -1 for all), its pks, and for an insert or
 * upsert `numRows` and one column per field, in schema order. What fails is a VbError 1100 naming the
 * field; the caller skips the message.
 */
import { decode } from "../../protocol/codec.ts";
import { ALL_PARTITIONS, isDmlMsg, type DmlMsg } from "../../protocol/dml.ts";
import { VbError } from "../../protocol/errors.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { checkColumn, checkPks } from "./columns.ts";

/** Decodes a DML message and checks it (see `checkDml`). */
export function decodeDml(data: Uint8Array, collectionId: bigint, schema: CollectionSchema): DmlMsg {
  let msg: unknown;
  try {
    msg = decode<unknown>(data);
  } catch (err) {
    throw VbError.invalid(`not a DML message: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  return checkDml(msg, collectionId, schema);
}

/** Checks a decoded DML message against the collection's schema; returns it, or throws 1100 naming the field. */
export function checkDml(msg: unknown, collectionId: bigint, schema: CollectionSchema): DmlMsg {
  if (!isDmlMsg(msg)) throw VbError.invalid("k: not a DML message (k must be insert, delete or upsert)");
  if (msg.collectionId !== collectionId) {
    throw VbError.invalid(`collectionId: a message of collection ${String(msg.collectionId)} on a vchannel of collection ${collectionId}`);
  }
  if (typeof msg.ts !== "bigint") throw VbError.invalid("ts: a DML message needs a bigint timestamp");
  if (typeof msg.partitionId !== "bigint") throw VbError.invalid("partitionId must be a bigint");
  const pkField = schema.fields.find((f) => f.isPrimaryKey);
  if (!pkField) throw VbError.invalid(`schema "${schema.name}" has no primary key`);
  if (msg.k === "delete") {
    if (msg.partitionId < 0n && msg.partitionId !== ALL_PARTITIONS) {
      throw VbError.invalid(`partitionId: a delete names a partition (≥ 0) or all of them (-1), got ${msg.partitionId}`);
    }
    checkPks(pkField, msg.pks);
    return msg;
  }
  if (msg.partitionId < 0n) throw VbError.invalid(`partitionId: an ${msg.k} needs a partition, got ${msg.partitionId}`);
  const n = msg.numRows;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw VbError.invalid(`numRows must be an integer ≥ 0, got ${String(n)}`);
  checkPks(pkField, msg.pks, n);
  if (!Array.isArray(msg.columns)) throw VbError.invalid("columns must be a list");
  schema.fields.forEach((f, i) => {
    const col = checkColumn(f, msg.columns[i], n);
    if (col.fieldId !== f.fieldId) throw VbError.invalid(`columns[${i}]: field id ${col.fieldId} where the schema has "${f.name}" (${f.fieldId})`);
  });
  if (msg.columns.length !== schema.fields.length) {
    throw VbError.invalid(`columns: ${msg.columns.length} columns for the ${schema.fields.length} fields of the schema`);
  }
  return msg;
}

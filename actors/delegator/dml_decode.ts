/**
 * What a delegator takes from a DML message of its vchannel: the message decoded and checked against
 * the collection's schema (kind, collection, partition, pks, one column per field in schema order). A
 * message that fails is skipped by the delegator (and logged): it cannot be applied, and the datanode
 * skips it the same way, so the sealed copies agree.
 */
import { decode } from "../../protocol/codec.ts";
import { ALL_PARTITIONS, isDmlMsg, type DmlMsg } from "../../protocol/dml.ts";
import { VbError } from "../../protocol/errors.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { checkColumn, checkPks } from "../storage/columns.ts";

export function decodeDml(data: Uint8Array, collectionId: bigint, schema: CollectionSchema): DmlMsg {
  const msg = decode<unknown>(data);
  if (!isDmlMsg(msg)) throw VbError.invalid("not a DML message (k must be insert, delete or upsert)");
  if (msg.collectionId !== collectionId) {
    throw VbError.invalid(`message of collection ${String(msg.collectionId)} on a channel of collection ${collectionId}`);
  }
  if (typeof msg.partitionId !== "bigint") throw VbError.invalid("partitionId must be a bigint");
  if (typeof msg.ts !== "bigint") throw VbError.invalid("ts must be a bigint");
  const pkField = schema.fields.find((f) => f.isPrimaryKey)!;
  if (msg.k === "delete") {
    checkPks(pkField, msg.pks);
    if (msg.partitionId < 0n && msg.partitionId !== ALL_PARTITIONS) throw VbError.invalid(`partitionId: ${msg.partitionId}`);
    return msg;
  }
  if (msg.partitionId < 0n) throw VbError.invalid(`partitionId: an ${msg.k} needs a partition, got ${msg.partitionId}`);
  if (typeof msg.numRows !== "number" || !Number.isSafeInteger(msg.numRows) || msg.numRows < 0) {
    throw VbError.invalid("numRows must be an integer ≥ 0");
  }
  checkPks(pkField, msg.pks, msg.numRows);
  if (!Array.isArray(msg.columns) || msg.columns.length !== schema.fields.length) {
    throw VbError.invalid(`columns: ${Array.isArray(msg.columns) ? msg.columns.length : 0} columns for ${schema.fields.length} fields`);
  }
  schema.fields.forEach((f, i) => {
    const col = checkColumn(f, msg.columns[i], msg.numRows);
    if (col.fieldId !== f.fieldId) throw VbError.invalid(`columns[${i}]: field id ${col.fieldId} where the schema has ${f.fieldId}`);
  });
  return msg;
}

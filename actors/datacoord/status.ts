/**
 * datacoord.GetStatus: what datacoord holds and what it could not read. `undecodableRecords` lists the
 * values in its KV buckets that did not decode as records at start (or since): they are ignored, so a
 * segment, a channel assignment, a checkpoint or an index they held reads as absent until repaired.
 *
 * (The request and reply belong with DatacoordApi in protocol/messages/datacoord.ts; they live here until
 * that file's owner moves them.)
 */
import type { UndecodableRecord } from "../../runtime/kv_meta.ts";

export const DATACOORD_GET_STATUS = "datacoord.GetStatus";

export interface DatacoordStatus {
  segments: number;
  vchannels: number;
  indexes: number;
  builds: number;
  /** values in datacoord's KV buckets that are not records: bucket, key, and why */
  undecodableRecords: UndecodableRecord[];
}

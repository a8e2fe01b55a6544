/**
 * Milvus's reply status from a VbError: `code` is the error's code (Vectorbus's codes are Milvus's
 * `merr` numbers), `error_code` the legacy enum Milvus derives from it (merr's oldCode), `reason` the
 * message. The SDKs read `code` first, then `error_code`.
 */
import { ErrorCode, VbError } from "../../../protocol/errors.ts";

export interface MilvusStatus {
  code: number;
  error_code: string;
  reason: string;
  retriable: boolean;
  detail: string;
}

const LEGACY: ReadonlyMap<number, string> = new Map<number, string>([
  [ErrorCode.ServiceNotReady, "NotReadyServe"],
  [ErrorCode.CollectionNotFound, "CollectionNotExists"],
  [ErrorCode.ParameterInvalid, "IllegalArgument"],
  [ErrorCode.NodeNotMatch, "NodeIDNotMatch"],
  [ErrorCode.PartitionNotFound, "MetaFailed"],
  [ErrorCode.ReplicaNotFound, "MetaFailed"],
  [ErrorCode.ReplicaNotAvailable, "NoReplicaAvailable"],
  [ErrorCode.ChannelNotAvailable, "NoReplicaAvailable"],
  [ErrorCode.NodeNotAvailable, "NoReplicaAvailable"],
  [ErrorCode.MemoryLimitExceeded, "InsufficientMemoryToLoad"],
  [ErrorCode.RateLimit, "RateLimit"],
  [ErrorCode.QuotaExceeded, "ForceDeny"],
  [ErrorCode.IndexNotFound, "IndexNotExist"],
  [ErrorCode.SegmentNotFound, "SegmentNotFound"],
  [ErrorCode.MetricNotFound, "MetricNotFound"],
  [ErrorCode.PrivilegeNotPermitted, "PermissionDenied"],
]);

export function okStatus(): MilvusStatus {
  return { code: 0, error_code: "Success", reason: "", retriable: false, detail: "" };
}

export function errorStatus(err: unknown): MilvusStatus {
  const e = VbError.from(err);
  return {
    code: e.code,
    error_code: LEGACY.get(e.code) ?? "UnexpectedError",
    reason: e.message,
    retriable: e.retriable,
    detail: e.codeName,
  };
}

/** What a call Vectorbus does not serve answers (Milvus's ErrServiceUnimplemented, code 10). */
export function unimplemented(method: string): VbError {
  return new VbError(ErrorCode.Unimplemented, `service unimplemented: ${method} is not implemented by Vectorbus's Milvus front door`);
}

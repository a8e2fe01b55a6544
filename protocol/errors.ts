/**
 * The one error class of Vectorbus. Codes follow Milvus's `pkg/util/merr` so that the REST and gRPC
 * front doors can map an error one to one, and clients written against Milvus see the numbers they know.
 */

export const ErrorCode = {
  Success: 0,
  ServiceNotReady: 1,
  ServiceUnavailable: 2,
  MemoryLimitExceeded: 3,
  RequestLimitExceeded: 4,
  ServiceInternal: 5,
  DiskLimitExceeded: 7,
  RateLimit: 8,
  QuotaExceeded: 9,
  Unimplemented: 10,
  TimeTickLongDelay: 11,
  ResourceInsufficient: 12,
  CollectionNotFound: 100,
  CollectionNotLoaded: 101,
  CollectionNumLimitExceeded: 102,
  CollectionNotFullyLoaded: 103,
  CollectionLoaded: 104,
  CollectionIllegalSchema: 105,
  CollectionOnRecovering: 106,
  PartitionNotFound: 200,
  PartitionNotLoaded: 201,
  PartitionNotFullyLoaded: 202,
  ResourceGroupNotFound: 300,
  ReplicaNotFound: 400,
  ReplicaNotAvailable: 401,
  ChannelNotFound: 500,
  ChannelLack: 501,
  ChannelReduplicate: 502,
  ChannelNotAvailable: 503,
  SegmentNotFound: 600,
  SegmentNotLoaded: 601,
  SegmentLack: 602,
  SegmentReduplicate: 603,
  SegmentLoadFailed: 604,
  IndexNotFound: 700,
  IndexNotSupported: 701,
  IndexDuplicate: 702,
  DatabaseNotFound: 800,
  DatabaseNumLimitExceeded: 801,
  DatabaseInvalidName: 802,
  NodeNotFound: 901,
  NodeOffline: 902,
  NodeLack: 903,
  NodeNotMatch: 904,
  NodeNotAvailable: 905,
  IoKeyNotFound: 1000,
  IoFailed: 1001,
  IoUnexpectEOF: 1002,
  ParameterInvalid: 1100,
  ParameterMissing: 1101,
  ParameterTooLarge: 1102,
  MetricNotFound: 1200,
  MqTopicNotFound: 1300,
  MqInternal: 1302,
  PrivilegeNotAuthenticated: 1400,
  PrivilegeNotPermitted: 1401,
  AliasNotFound: 1600,
  AliasCollectionNameConflict: 1601,
  AliasAlreadyExist: 1602,
  FieldNotFound: 1700,
  FieldInvalidName: 1701,
  OperationNotSupported: 3000,
  Canceled: 10000,
  Timeout: 10001,
  Unexpected: 65535,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;
export type ErrorCodeValue = (typeof ErrorCode)[ErrorCodeName];

/** Codes whose failures go away by themselves: a caller may retry them. */
const RETRIABLE_BY_DEFAULT = new Set<number>([
  ErrorCode.ServiceNotReady,
  ErrorCode.ServiceUnavailable,
  ErrorCode.RequestLimitExceeded,
  ErrorCode.RateLimit,
  ErrorCode.ResourceInsufficient,
  ErrorCode.CollectionNotFullyLoaded,
  ErrorCode.CollectionOnRecovering,
  ErrorCode.PartitionNotFullyLoaded,
  ErrorCode.IoUnexpectEOF,
  ErrorCode.Timeout,
]);

const NAME_BY_CODE = new Map<number, string>(Object.entries(ErrorCode).map(([k, v]) => [v, k]));

/** What crosses the wire inside a failed reply. */
export interface WireError {
  code: number;
  message: string;
  retriable: boolean;
}

export interface VbErrorOptions {
  retriable?: boolean;
  cause?: unknown;
}

export class VbError extends Error {
  override readonly name = "VbError";
  readonly code: number;
  readonly retriable: boolean;

  constructor(code: number, message: string, options: VbErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? RETRIABLE_BY_DEFAULT.has(code);
  }

  /** The symbolic name of the code (`CollectionNotFound`), or `Code<n>` for a code we do not know. */
  get codeName(): string {
    return NAME_BY_CODE.get(this.code) ?? `Code${this.code}`;
  }

  toWire(): WireError {
    return { code: this.code, message: this.message, retriable: this.retriable };
  }

  static fromWire(w: WireError, cause?: unknown): VbError {
    return new VbError(w.code, w.message, { retriable: w.retriable, cause });
  }

  /** Wraps anything thrown into a VbError; a VbError passes through unchanged. */
  static from(err: unknown): VbError {
    if (err instanceof VbError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new VbError(ErrorCode.Unexpected, `unexpected error: ${message}`, { cause: err });
  }

  static invalid(message: string, cause?: unknown): VbError {
    return new VbError(ErrorCode.ParameterInvalid, message, { cause });
  }
}

export function isVbError(err: unknown, code?: number): err is VbError {
  return err instanceof VbError && (code === undefined || err.code === code);
}

/** How a message names a collection: `"books" (69)` by name with its id, or the id alone when the name is not known. */
export function collectionLabel(collectionId: bigint | number, name?: string): string {
  return name ? `"${name}" (${collectionId})` : String(collectionId);
}

/** 101 for a read or a wait on a collection that is not loaded; the hint names the CLI command and the API call. */
export function collectionNotLoaded(collectionId: bigint | number, name?: string): VbError {
  return new VbError(
    ErrorCode.CollectionNotLoaded,
    `collection ${collectionLabel(collectionId, name)} is not loaded (101): load it first (vbus load ${name ?? "<name>"}, or LoadCollection)`,
  );
}

/**
 * An error from a component that knew the collection by id only (`collection 69 ...`), with its name
 * put in (`collection "books" (69) ...`) by a caller that knows it; the code, retriable flag and cause
 * stay. Anything else passes through unchanged.
 */
export function namingCollection(err: unknown, collectionId: bigint | number, name: string): unknown {
  if (!(err instanceof VbError)) return err;
  const byId = new RegExp(`\\bcollection ${String(collectionId)}(?!\\d)`, "g");
  if (!byId.test(err.message)) return err;
  const message = err.message.replace(byId, `collection ${collectionLabel(collectionId, name)}`).replaceAll("vbus load <name>", `vbus load ${name}`);
  return new VbError(err.code, message, { retriable: err.retriable, cause: err });
}

/**
 * Memory accounting of a querynode: the bytes of its loaded segments' columns and vector indexes and of the
 * loads in progress (reserved at their estimate), against the node's limit. A load that would pass the
 * limit is refused before it reads anything (Milvus's segment loader checks the same way).
 */
import { totalmem } from "node:os";
import { ErrorCode, VbError } from "../../protocol/errors.ts";

/** `VB_QN_MEMORY_LIMIT` (bytes) when set, else 80 % of the machine's memory. */
export function defaultMemoryLimit(): number {
  const env = process.env.VB_QN_MEMORY_LIMIT;
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (Number.isFinite(n) && n > 0) return Math.floor(n);
  }
  return Math.floor(totalmem() * 0.8);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export class MemoryBudget {
  private used = 0;
  private reserved = 0;

  constructor(readonly limit: number) {}

  get usedBytes(): number {
    return this.used;
  }

  /** What is neither used nor reserved. */
  get freeBytes(): number {
    return Math.max(0, this.limit - this.used - this.reserved);
  }

  /** Reserves `bytes` for a load of `what`, or throws 3 (MemoryLimitExceeded) saying why. */
  reserve(bytes: number, what: string, nodeId: string): void {
    if (this.used + this.reserved + bytes > this.limit) {
      throw new VbError(
        ErrorCode.MemoryLimitExceeded,
        `querynode ${nodeId} cannot load ${what}: it needs ${formatBytes(bytes)} (${bytes} bytes) and the node has ` +
          `${formatBytes(this.freeBytes)} (${this.freeBytes} bytes) free of its limit ${formatBytes(this.limit)}: ` +
          `release collections, add querynodes, or raise VB_QN_MEMORY_LIMIT`,
        { retriable: false },
      );
    }
    this.reserved += bytes;
  }

  /** A reserved load finished: its reservation becomes `actual` bytes in use (0 when it failed). */
  settle(reservedBytes: number, actual: number): void {
    this.reserved = Math.max(0, this.reserved - reservedBytes);
    this.used += actual;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

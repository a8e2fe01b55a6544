/**
 * Ordered, retried writes to one KV bucket. The actor changes its state in memory inside its mailbox and
 * queues the matching KV writes here; they reach the bucket in the order they were queued (the last
 * write of a key wins), each retried a few times on a transient failure. A job that must not answer
 * before its change is stored awaits the promises its writes returned.
 */
import { encode } from "../../../protocol/codec.ts";
import type { KvMeta } from "../../../runtime/kv_meta.ts";
import type { Logger } from "../../../runtime/logger.ts";

export interface MetaWriter {
  /** queues a put; the promise settles when it is stored (or failed for good) */
  put(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  /** settles when every write queued so far has settled */
  flush(): Promise<void>;
}

/** A value already encoded (`encode`): a writer stores its bytes as they are rather than encoding it again. */
export class Encoded {
  constructor(readonly bytes: Uint8Array) {}
}

const ATTEMPTS = 4;

export class KvWriter implements MetaWriter {
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly kv: KvMeta,
    private readonly log: Logger,
  ) {}

  put(key: string, value: unknown): Promise<void> {
    const bytes = value instanceof Encoded ? value.bytes : encode(value);
    return this.enqueue(`put ${key}`, async () => {
      await this.kv.put(key, bytes);
    });
  }

  delete(key: string): Promise<void> {
    return this.enqueue(`delete ${key}`, () => this.kv.delete(key));
  }

  flush(): Promise<void> {
    return this.tail;
  }

  private enqueue(what: string, op: () => Promise<void>): Promise<void> {
    const p = this.tail.then(async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await op();
        } catch (err) {
          if (attempt >= ATTEMPTS) {
            this.log.error({ err, bucket: this.kv.bucket, op: what }, "KV write failed for good");
            throw err;
          }
          await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
        }
      }
    });
    this.tail = p.catch(() => undefined);
    p.catch(() => undefined); // a caller that does not await must not see an unhandled rejection
    return p;
  }
}

/** A writer that stores nothing: for tests of the in-memory managers. */
export class NullWriter implements MetaWriter {
  put(): Promise<void> {
    return Promise.resolve();
  }
  delete(): Promise<void> {
    return Promise.resolve();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
}

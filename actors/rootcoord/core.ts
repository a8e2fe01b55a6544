/** What rootcoord's request handlers work with: the meta table, the allocators, the event outbox. */
import type { Logger } from "../../runtime/logger.ts";
import type { ClusterEnv } from "../env.ts";
import type { EventOutbox } from "./event_outbox.ts";
import type { IdAllocator } from "./id_allocator.ts";
import type { MetaTable } from "./meta_table.ts";
import type { TimestampOracle } from "./tso.ts";

export interface RootcoordCore {
  readonly env: ClusterEnv;
  readonly meta: MetaTable;
  readonly ids: IdAllocator;
  readonly tso: TimestampOracle;
  readonly events: EventOutbox;
  readonly log: Logger;
  /** asks for a `rootcoord` retry of unfinished work (events, drops) a little later */
  retryLater(): void;
}

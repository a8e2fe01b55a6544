/**
 * ReleaseCollection / ReleasePartitions (Milvus's job_release.go). Releasing removes the load from
 * meta and its targets at once (reads get 101 from then on); the checkers then tell the querynodes to
 * drop what they hold. With `wait`, the caller is answered once the distribution shows nothing of the
 * collection any more (or after `releaseWaitMs`). Releasing the last loaded partitions releases the
 * collection.
 */
import type { QuerycoordCore } from "../core.ts";
import { Job, type JobStep } from "./job.ts";

export class ReleaseJob extends Job {
  readonly kind: string;

  constructor(
    collectionId: bigint,
    private readonly opts: { partitionIds?: bigint[]; wait: boolean; why: string },
  ) {
    super(collectionId);
    this.kind = opts.partitionIds ? "ReleasePartitions" : "ReleaseCollection";
  }

  start(core: QuerycoordCore): JobStep {
    const c = core.meta.collection(this.collectionId);
    if (!c) return { stored: Promise.resolve() };
    const drop = this.opts.partitionIds;
    if (drop) {
      const remaining = c.partitionIds.filter((p) => !drop.includes(p));
      if (remaining.length === c.partitionIds.length) return { stored: Promise.resolve() };
      if (remaining.length > 0) {
        core.log.info({ collection: this.collectionId, partitions: drop.map(String) }, `releasing partitions (${this.opts.why})`);
        const writes = [
          core.meta.putCollection({
            ...c,
            loadType: "Partition",
            partitionIds: remaining,
            loadedPartitionIds: c.loadedPartitionIds.filter((p) => !drop.includes(p)),
          }),
          core.targets.removePartitions(this.collectionId, drop),
        ];
        core.requestTarget(this.collectionId);
        core.kick();
        return { stored: Promise.all(writes) };
      }
    }
    core.log.info({ collection: this.collectionId }, `releasing collection (${this.opts.why})`);
    const stored = core.forgetCollection(this.collectionId);
    core.kick();
    return { stored };
  }

  override finished(core: QuerycoordCore): void {
    if (!this.opts.wait || this.opts.partitionIds) {
      this.resolve(null);
      return;
    }
    core.waitReleased(this.collectionId, () => this.resolve(null));
  }
}

/**
 * Channel checkpoints: per vchannel, the position at or before which every message is in a Flushed
 * segment (KV bucket `channel_checkpoints`, key the vchannel). A checkpoint only moves forward: a late or
 * repeated report of an older one changes nothing.
 */
import type { ChannelCheckpoint } from "../../protocol/meta.ts";
import type { KvMeta } from "../../runtime/kv_meta.ts";

export const CHECKPOINTS_BUCKET = "channel_checkpoints";

export class ChannelCheckpoints {
  private readonly map = new Map<string, ChannelCheckpoint>();

  private constructor(private readonly kv: KvMeta) {}

  static async open(kv: KvMeta): Promise<ChannelCheckpoints> {
    const c = new ChannelCheckpoints(kv);
    const isCheckpoint = (v: unknown) => typeof (v as ChannelCheckpoint).position === "bigint" && typeof (v as ChannelCheckpoint).vchannel === "string";
    for (const { value } of (await kv.records<ChannelCheckpoint>(isCheckpoint)).values()) c.map.set(value.vchannel, value);
    return c;
  }

  /** The checkpoint of a vchannel; position 0 (its very start) when none was recorded. */
  get(vchannel: string): ChannelCheckpoint {
    return this.map.get(vchannel) ?? { vchannel, position: 0n, ts: 0n };
  }

  /** Moves a checkpoint forward (KV first); returns whether it moved. */
  async advance(cp: ChannelCheckpoint): Promise<boolean> {
    const cur = this.map.get(cp.vchannel);
    if (cur && cur.position >= cp.position) return false;
    const next = { vchannel: cp.vchannel, position: cp.position, ts: cp.ts };
    await this.kv.putValue(cp.vchannel, next);
    this.map.set(cp.vchannel, next);
    return true;
  }

  async remove(vchannel: string): Promise<void> {
    if (!this.map.has(vchannel)) return;
    await this.kv.delete(vchannel);
    this.map.delete(vchannel);
  }
}

/**
 * Traced requests over a real nats-server: a traceparent in the envelope starts a hop in the receiving
 * host, the actor passes it on in its own asks (to another process, and in process encoded and shared),
 * and the replies bring every hop back to the first asker, errors included; an untraced ask gets no hops.
 */
import { describe, expect, it } from "vitest";
import { decode, encode } from "../../protocol/codec.ts";
import type { Envelope, Hop, Reply } from "../../protocol/envelope.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { Actor, type Message } from "../../runtime/actor.ts";
import { ask } from "../../runtime/ask.ts";
import { parseTraceparent, startTrace } from "../../runtime/trace.ts";
import { testHost, uniquePrefix } from "../harness/index.ts";

/** Asks each of `next` with the request's trace (encoded or shared, by the body), then answers. */
class Relay extends Actor {
  constructor(private readonly next: string[]) {
    super();
  }
  override receive(msg: Message): unknown {
    const b = msg.body as { fail?: boolean; share?: boolean };
    if (msg.type === "t.Leaf") {
      if (b.fail) throw new VbError(ErrorCode.ParameterInvalid, "leaf refused");
      return { leaf: this.ctx.address, traced: msg.trace !== undefined };
    }
    const trace = msg.trace;
    return this.ctx.reenter(Promise.all(this.next.map((a) => this.ctx.ask(a, "t.Leaf", b, { ...(trace ? { trace } : {}), share: b.share === true }))));
  }
}

describe("traced envelopes on a real nats-server", () => {
  it("brings back the hops of every actor a traced request reached, across processes and in process", async () => {
    const prefix = uniquePrefix("tr");
    await using a = await testHost();
    await using b = await testHost();
    const remoteLeaf = `${prefix}.leaf.remote`;
    const localLeaf = `${prefix}.leaf.local`;
    const relay = `${prefix}.relay.1`;
    await b.spawn({ address: remoteLeaf, create: () => new Relay([]) });
    await a.spawn({ address: localLeaf, create: () => new Relay([]) });
    await a.spawn({ address: relay, create: () => new Relay([remoteLeaf, localLeaf]) });

    for (const share of [false, true]) {
      const root = startTrace("test", undefined);
      const res = await ask<{ leaf: string; traced: boolean }[]>(b.nc, relay, "t.Relay", { share }, { timeoutMs: 5_000, trace: root });
      expect(res.map((r) => r.leaf)).toEqual([remoteLeaf, localLeaf]);
      expect(res.every((r) => r.traced)).toBe(true);
      const hops: Hop[] = root.hops;
      expect(hops.map((h) => h.actor).sort()).toEqual([localLeaf, relay, remoteLeaf].sort());
      const relayHop = hops.find((h) => h.actor === relay)!;
      expect(relayHop.parent).toBe(root.spanId);
      for (const h of hops.filter((x) => x !== relayHop)) {
        expect(h.parent).toBe(relayHop.span);
        expect(h.type).toBe("t.Leaf");
      }
      for (const h of hops) expect(h.ms).toBeGreaterThanOrEqual(h.queueMs);
      expect(new Set(hops.map((h) => h.span)).size).toBe(3);
    }
  });

  it("brings back hops with an error reply, and none to an untraced ask", async () => {
    const prefix = uniquePrefix("tr");
    await using a = await testHost();
    await using b = await testHost();
    const leaf = `${prefix}.leaf.1`;
    await a.spawn({ address: leaf, create: () => new Relay([]) });

    const root = startTrace("test", undefined);
    const err = await ask(b.nc, leaf, "t.Leaf", { fail: true }, { timeoutMs: 5_000, trace: root }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VbError);
    expect((err as VbError).code).toBe(ErrorCode.ParameterInvalid);
    expect(root.hops.map((h) => h.actor)).toEqual([leaf]);

    // on the wire: a traced request carries `c`, its reply `h`; an untraced one neither
    const traced: Envelope = { t: "t.Leaf", d: Date.now() + 5_000, b: {}, c: root.traceparent };
    const reply = decode((await b.nc.request(leaf, encode(traced), { timeout: 5_000 })).data) as Reply;
    expect(reply.ok).toBe(true);
    expect(reply.h?.[0]?.parent).toBe(parseTraceparent(root.traceparent)!.spanId);
    const plain: Envelope = { t: "t.Leaf", d: Date.now() + 5_000, b: {} };
    const untraced = decode((await b.nc.request(leaf, encode(plain), { timeout: 5_000 })).data) as Reply;
    expect(untraced).toEqual({ ok: true, body: { leaf, traced: false } });
    // a traceparent that does not parse is ignored: the request is served untraced
    const bad = decode((await b.nc.request(leaf, encode({ ...plain, c: "not a traceparent" }), { timeout: 5_000 })).data) as Reply;
    expect(bad).toEqual({ ok: true, body: { leaf, traced: false } });
  });
});

import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decode, encode } from "../../protocol/codec.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { Actor, ACTOR_STOPPED, type ActorStopped, type Message, type PipeResult } from "../../runtime/actor.ts";
import { ask, tell } from "../../runtime/ask.ts";
import { ActorHost } from "../../runtime/host.ts";
import { connectTest, testHost, uniquePrefix, waitFor } from "../harness/index.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const newHost = testHost;

/** A promise and the functions that settle it. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function askError(p: Promise<unknown>): Promise<VbError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected the ask to fail");
}

class Counter extends Actor {
  inFlight = 0;
  maxInFlight = 0;
  n = 0;
  override async receive(msg: Message): Promise<unknown> {
    if (msg.type === "counter.Stats") return { max: this.maxInFlight, n: this.n };
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const before = this.n;
    await new Promise((r) => setImmediate(r));
    this.n = before + 1;
    this.inFlight--;
    return this.n;
  }
}

describe("actor runtime on a real nats-server", () => {
  it("answers 1,000 concurrent asks to one actor, handling them strictly one at a time", async () => {
    await using host = await newHost();
    const addr = `${uniquePrefix()}.counter`;
    await host.spawn({ address: addr, create: () => new Counter() });
    const replies = await Promise.all(
      Array.from({ length: 1000 }, () => host.ask<number>(addr, "counter.Inc", null, { timeoutMs: 30_000 })),
    );
    expect(new Set(replies).size).toBe(1000);
    expect(Math.min(...replies)).toBe(1);
    expect(Math.max(...replies)).toBe(1000);
    const stats = await host.ask<{ max: number; n: number }>(addr, "counter.Stats");
    expect(stats).toEqual({ max: 1, n: 1000 });
  });

  it("routes one wildcard subscription to many actors of a kind", async () => {
    await using host = await newHost();
    const p = uniquePrefix();
    for (let i = 0; i < 50; i++) {
      await host.spawn({ address: `${p}.seg.n1.${i}`, route: `${p}.seg.n1.*`, create: () => new Counter() });
    }
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => host.ask<number>(`${p}.seg.n1.${i}`, "c.Inc")));
    expect(replies).toEqual(Array.from({ length: 50 }, () => 1));
    const missing = await askError(host.ask(`${p}.seg.n1.999`, "c.Inc"));
    expect(missing.code).toBe(ErrorCode.ServiceUnavailable);
    expect(missing.retriable).toBe(true);
  });

  it("fails fast with a retriable no-responders error when no actor is at the address", async () => {
    await using host = await newHost();
    const err = await askError(host.ask(`${uniquePrefix()}.nobody`, "x.Ping", null, { timeoutMs: 20_000 }));
    expect(err.code).toBe(ErrorCode.ServiceUnavailable);
    expect(err.retriable).toBe(true);
    expect(err.message).toMatch(/no responders/);
  });

  it("times out an ask to a slow actor at its deadline, drops the late reply and keeps serving", async () => {
    await using host = await newHost();
    const addr = `${uniquePrefix()}.slow`;
    const handled: string[] = [];
    await host.spawn({
      address: addr,
      create: () =>
        new (class extends Actor {
          override async receive(msg: Message) {
            handled.push(msg.type);
            if (msg.type === "slow.Sleep") await sleep(msg.body as number);
            return msg.type;
          }
        })(),
    });
    const err = await askError(host.ask(addr, "slow.Sleep", 600, { timeoutMs: 150 }));
    expect(err.code).toBe(ErrorCode.Timeout);
    expect(err.retriable).toBe(true);
    // queued behind the sleeper with a deadline that passes while it waits: dropped, never handled
    const late = await askError(host.ask(addr, "slow.Expired", null, { timeoutMs: 100 }));
    expect(late.code).toBe(ErrorCode.Timeout);
    // the actor finishes its sleep, its late reply goes nowhere, and it answers the next ask
    expect(await host.ask(addr, "slow.Ping", null, { timeoutMs: 5_000 })).toBe("slow.Ping");
    expect(handled).toEqual(["slow.Sleep", "slow.Ping"]);
  });

  it("restarts a crashed actor under the same address, and stops it and tells its parent after too many crashes", async () => {
    await using host = await newHost();
    const p = uniquePrefix();
    const parentAddr = `${p}.parent`;
    const childAddr = `${p}.child`;
    const told: ActorStopped[] = [];
    await host.spawn({
      address: parentAddr,
      create: () =>
        new (class extends Actor {
          override receive(msg: Message) {
            if (msg.type === ACTOR_STOPPED) told.push(msg.body as ActorStopped);
          }
        })(),
    });
    let instances = 0;
    await host.spawn({
      address: childAddr,
      parent: parentAddr,
      supervisor: { maxRestarts: 3, withinMs: 60_000, minBackoffMs: 5, maxBackoffMs: 20 },
      create: () => {
        const id = ++instances;
        return new (class extends Actor {
          override receive(msg: Message) {
            if (msg.type === "child.Crash") throw new Error("boom");
            if (msg.type === "child.Refuse") throw VbError.invalid("bad field x");
            return { id, restarts: this.ctx.restarts };
          }
        })();
      },
    });
    expect(await host.ask(childAddr, "child.Who")).toEqual({ id: 1, restarts: 0 });
    // a refusal is an answer, not a crash
    expect((await askError(host.ask(childAddr, "child.Refuse"))).code).toBe(ErrorCode.ParameterInvalid);
    expect(await host.ask(childAddr, "child.Who")).toEqual({ id: 1, restarts: 0 });

    const crash = await askError(host.ask(childAddr, "child.Crash"));
    expect(crash.code).toBe(ErrorCode.Unexpected);
    expect(crash.message).toMatch(/boom/);
    // the message sent right after the crash waits for the restart and is answered by the new instance
    expect(await host.ask(childAddr, "child.Who")).toEqual({ id: 2, restarts: 1 });

    for (let i = 0; i < 3; i++) await askError(host.ask(childAddr, "child.Crash"));
    await waitFor(() => told.length === 1, { what: "parent told of the stop" });
    expect(told[0]).toMatchObject({ address: childAddr, reason: "failed" });
    expect(host.has(childAddr)).toBe(false);
    const gone = await askError(host.ask(childAddr, "child.Who", null, { timeoutMs: 2_000 }));
    expect(gone.code).toBe(ErrorCode.ServiceUnavailable);
  });

  it("answers random bytes with error 1100 and keeps serving", async () => {
    await using host = await newHost();
    const addr = `${uniquePrefix()}.robust`;
    await host.spawn({ address: addr, create: () => new Counter() });
    for (let i = 0; i < 200; i++) {
      const bytes = randomBytes(1 + (i % 64));
      const reply = decode<{ ok: boolean; error?: { code: number; message: string } }>(
        (await host.nc.request(addr, bytes, { timeout: 5_000 })).data,
      );
      expect(reply.ok).toBe(false);
      expect(reply.error?.code).toBe(1100);
    }
    // a well-formed msgpack value that is not an envelope
    const notEnvelope = decode<{ ok: boolean; error?: { code: number } }>(
      (await host.nc.request(addr, encode({ hello: 1 }), { timeout: 5_000 })).data,
    );
    expect(notEnvelope.error?.code).toBe(1100);
    expect(await host.ask(addr, "counter.Inc")).toBe(1);
  });

  it("delivers timers and pipe-to-self results to the mailbox, and cancels timers on stop", async () => {
    await using host = await newHost();
    const addr = `${uniquePrefix()}.timers`;
    const seen: string[] = [];
    let ticks = 0;
    await host.spawn({
      address: addr,
      create: () =>
        new (class extends Actor {
          override preStart() {
            this.ctx.timers.startPeriodic("tick", 10, "t.Tick");
            this.ctx.timers.startSingle("once", 30, "t.Once", "hello");
          }
          override receive(msg: Message) {
            if (msg.type === "t.Tick") ticks++;
            if (msg.type === "t.Once") seen.push(`once:${String(msg.body)}`);
            if (msg.type === "t.Work") {
              this.ctx.pipeToSelf(sleep(20).then(() => 42), "t.WorkDone");
              this.ctx.pipeToSelf(Promise.reject(new Error("nope")), "t.WorkDone");
              return "started";
            }
            if (msg.type === "t.WorkDone") {
              const r = msg.body as PipeResult<number>;
              seen.push(r.ok ? `done:${r.value}` : `failed:${(r.error as Error).message}`);
            }
          }
        })(),
    });
    expect(await host.ask(addr, "t.Work")).toBe("started");
    await waitFor(() => seen.length === 3 && ticks >= 3, { what: "timers and piped work" });
    expect(seen.sort()).toEqual(["done:42", "failed:nope", "once:hello"]);
    await host.stopActor(addr);
    const after = ticks;
    await sleep(50);
    expect(ticks).toBe(after);
  });

  it("drains queued messages on a graceful stop, then refuses new ones", async () => {
    await using host = await newHost();
    const addr = `${uniquePrefix()}.drain`;
    let stoppedAfter = -1;
    let handled = 0;
    await host.spawn({
      address: addr,
      create: () =>
        new (class extends Actor {
          override async receive() {
            await sleep(2);
            return ++handled;
          }
          override postStop() {
            stoppedAfter = handled;
          }
        })(),
    });
    const pending = Array.from({ length: 50 }, () => host.ask<number>(addr, "d.Work"));
    await waitFor(() => handled >= 1, { what: "first message handled" });
    await host.stop();
    const results = await Promise.allSettled(pending);
    const answered = results.filter((r) => r.status === "fulfilled").length;
    expect(answered).toBe(stoppedAfter);
    expect(answered).toBeGreaterThan(0);
  });

  it("answers a deferred reply later without holding the mailbox", async () => {
    await using host = await newHost();
    const addr = `${uniquePrefix()}.front`;
    const order: string[] = [];
    await host.spawn({
      address: addr,
      create: () =>
        new (class extends Actor {
          override receive(msg: Message) {
            if (msg.type === "f.Slow") {
              return this.ctx.reenter(sleep(300).then(() => (order.push("slow"), "slow-done")));
            }
            if (msg.type === "f.Fail") return this.ctx.reenter(Promise.reject(VbError.invalid("bad thing")));
            order.push("fast");
            return "fast-done";
          }
        })(),
    });
    const slow = host.ask(addr, "f.Slow");
    const fast = await host.ask(addr, "f.Fast");
    expect(fast).toBe("fast-done");
    expect(order).toEqual(["fast"]);
    expect(await slow).toBe("slow-done");
    expect((await askError(host.ask(addr, "f.Fail"))).code).toBe(ErrorCode.ParameterInvalid);
    expect(await host.ask(addr, "f.Fast")).toBe("fast-done");
  });

  it("delivers an ask between actors of one host without nats-server, with the replies, errors and isolation of one over NATS", async () => {
    await using host = await newHost();
    const addr = `${uniquePrefix()}.keeper`;
    class Keeper extends Actor {
      items: number[] = [];
      override receive(msg: Message): unknown {
        if (msg.type === "k.Add") {
          const body = msg.body as { xs: number[] };
          body.xs.push(99); // changes the actor's copy only
          this.items.push(...body.xs);
          return this.items;
        }
        if (msg.type === "k.Fail") throw new VbError(ErrorCode.CollectionNotFound, "no such collection");
        if (msg.type === "k.Slow") return new Promise((r) => setTimeout(() => r("late"), 300));
        return this.items;
      }
    }
    await host.spawn({ address: addr, create: () => new Keeper() });
    // a plain subscriber on the address counts what crosses nats-server
    await using spy = await connectTest();
    let crossed = 0;
    const spySub = spy.subscribe(addr, { callback: () => void crossed++ });
    await spy.flush();

    const body = { xs: [1, 2] };
    const reply = await host.ask<number[]>(addr, "k.Add", body);
    expect(reply).toEqual([1, 2, 99]);
    expect(body.xs).toEqual([1, 2]);
    reply.push(7); // the asker's copy
    expect(await host.ask(addr, "k.Get")).toEqual([1, 2, 99]);
    const err = await askError(host.ask(addr, "k.Fail"));
    expect([err.code, err.message]).toEqual([ErrorCode.CollectionNotFound, "no such collection"]);
    expect((await askError(host.ask(addr, "k.Slow", null, { timeoutMs: 50 }))).code).toBe(ErrorCode.Timeout);
    host.tell(addr, "k.Add", { xs: [5] });
    await waitFor(async () => (await host.ask<number[]>(addr, "k.Get")).length === 5, { what: "the local tell" });
    expect(crossed).toBe(0);

    // the same actor asked from another connection: over NATS, with the same answers
    expect(await ask(spy, addr, "k.Get", null)).toEqual([1, 2, 99, 5, 99]);
    expect((await askError(ask(spy, addr, "k.Fail", null))).code).toBe(ErrorCode.CollectionNotFound);
    expect(crossed).toBe(2);

    // once the actor is gone the address answers as an empty one does
    spySub.unsubscribe();
    await spy.flush();
    await host.stopActor(addr);
    expect((await askError(host.ask(addr, "k.Get", null, { timeoutMs: 5_000 }))).code).toBe(ErrorCode.ServiceUnavailable);
  });

  it("hands a shared ask's body and reply over without copies in process, with the errors and timeouts of any ask", async () => {
    await using host = await newHost();
    const addr = `${uniquePrefix()}.echo`;
    class Echo extends Actor {
      override receive(msg: Message): unknown {
        if (msg.type === "e.Fail") throw new VbError(ErrorCode.IndexNotFound, "no index here", { retriable: true });
        if (msg.type === "e.Slow") return new Promise((r) => setTimeout(() => r("late"), 300));
        if (msg.type === "e.Later") return this.ctx.reenter(Promise.resolve({ later: msg.body }));
        return { got: msg.body };
      }
    }
    await host.spawn({ address: addr, create: () => new Echo() });
    const body = { queries: new Float32Array([1, 2, 3]), k: 10n };
    const reply = await host.ask<{ got: typeof body }>(addr, "e.Echo", body, { share: true });
    expect(reply.got).toBe(body); // the same object: nothing was encoded
    expect((await host.ask<{ later: typeof body }>(addr, "e.Later", body, { share: true })).later).toBe(body);
    const copied = await host.ask<{ got: typeof body }>(addr, "e.Echo", body);
    expect(copied.got).not.toBe(body);
    expect(copied.got).toEqual(body);
    const err = await askError(host.ask(addr, "e.Fail", null, { share: true }));
    expect([err.code, err.message, err.retriable]).toEqual([ErrorCode.IndexNotFound, "no index here", true]);
    expect((await askError(host.ask(addr, "e.Slow", null, { share: true, timeoutMs: 50 }))).code).toBe(ErrorCode.Timeout);
    await host.stopActor(addr);
    expect((await askError(host.ask(addr, "e.Echo", body, { share: true, timeoutMs: 5_000 }))).code).toBe(ErrorCode.ServiceUnavailable);
  });
  it("stops a spawned child with its parent, before the parent's postStop, and tells the parent when a child stops", async () => {
    await using host = await newHost();
    const p = uniquePrefix();
    const parentAddr = `${p}.parent`;
    const events: string[] = [];
    const told: ActorStopped[] = [];
    class Child extends Actor {
      constructor(readonly name: string) {
        super();
      }
      override receive(msg: Message) {
        if (msg.type === "child.Stop") this.ctx.stop();
        return { name: this.name, parent: this.ctx.parent };
      }
      override postStop() {
        events.push(`${this.name}.postStop`);
      }
    }
    await host.spawn({
      address: parentAddr,
      create: () =>
        new (class extends Actor {
          override receive(msg: Message) {
            if (msg.type === ACTOR_STOPPED) told.push(msg.body as ActorStopped);
            if (msg.type === "parent.Spawn") {
              const name = msg.body as string;
              return this.ctx.spawn({ address: `${p}.child.${name}`, create: () => new Child(name) });
            }
            if (msg.type === "parent.Children") return [...this.ctx.children()].sort();
          }
          override postStop() {
            events.push(`parent.postStop (children alive: ${[...this.ctx.children()].filter((a) => host.has(a)).length})`);
          }
        })(),
    });
    expect(await host.ask(parentAddr, "parent.Spawn", "a")).toBe(`${p}.child.a`);
    expect(await host.ask(parentAddr, "parent.Spawn", "b")).toBe(`${p}.child.b`);
    expect(await host.ask(`${p}.child.a`, "child.Who")).toEqual({ name: "a", parent: parentAddr });
    expect(host.actors().find((a) => a.address === `${p}.child.a`)?.parent).toBe(parentAddr);
    expect(await host.ask(parentAddr, "parent.Children")).toEqual([`${p}.child.a`, `${p}.child.b`]);

    // a child that stops on its own: its parent gets actor.Stopped in its mailbox and forgets it
    await host.ask(`${p}.child.b`, "child.Stop");
    await waitFor(() => told.length === 1, { what: "actor.Stopped at the parent" });
    expect(told[0]).toEqual({ address: `${p}.child.b`, reason: "stopped" });
    expect(await host.ask(parentAddr, "parent.Children")).toEqual([`${p}.child.a`]);
    expect(events).toEqual(["b.postStop"]);

    // the parent stops: its child first, then the parent's own postStop
    await host.stopActor(parentAddr);
    expect(events).toEqual(["b.postStop", "a.postStop", "parent.postStop (children alive: 0)"]);
    expect(host.has(`${p}.child.a`)).toBe(false);
    expect((await askError(host.ask(`${p}.child.a`, "child.Who", null, { timeoutMs: 2_000 }))).code).toBe(ErrorCode.ServiceUnavailable);
  });

  it("runs a reenterAfter continuation inside the mailbox and answers the ask with what it returns or throws", async () => {
    await using host = await newHost();
    const addr = `${uniquePrefix()}.reenter`;
    const work = deferred<number>();
    const gate = deferred<void>();
    const log: string[] = [];
    let failures: string[] = [];
    class Reenter extends Actor {
      n = 0;
      override receive(msg: Message): unknown {
        switch (msg.type) {
          case "r.Inc":
            log.push(`inc at ${this.n}`);
            return ++this.n;
          case "r.Add":
            // the mailbox is free while `work` runs; the continuation holds it, as a receive does
            return this.ctx.reenterAfter(work.promise, async (v) => {
              const before = this.n;
              log.push(`continue at ${before}`);
              await gate.promise;
              this.n = before + v;
              log.push(`continued to ${this.n}`);
              return this.n;
            });
          case "r.Recover":
            return this.ctx.reenterAfter(
              Promise.reject(new Error("disk gone")),
              () => "unreachable",
              (err) => {
                failures.push((err as Error).message);
                this.n = 100;
                return "recovered";
              },
            );
          case "r.Refuse":
            return this.ctx.reenterAfter(Promise.resolve(1), () => {
              throw VbError.invalid("field x is bad");
            });
          case "r.FailUnhandled":
            return this.ctx.reenterAfter(Promise.reject(new VbError(ErrorCode.CollectionNotFound, "no such collection")), () => "unreachable");
          case "r.OnErrorRefuses":
            return this.ctx.reenterAfter(Promise.reject(new Error("io")), () => "unreachable", () => {
              failures.push("refused");
              throw new VbError(ErrorCode.IndexNotFound, "no index");
            });
          case "r.Get":
            return this.n;
        }
      }
    }
    await host.spawn({ address: addr, create: () => new Reenter() });
    const added = host.ask<number>(addr, "r.Add", null, { timeoutMs: 30_000 });
    // served while the work is pending
    expect(await host.ask(addr, "r.Inc")).toBe(1);
    work.resolve(5);
    await waitFor(() => log.includes("continue at 1"), { what: "the continuation to start" });
    const inc = host.ask<number>(addr, "r.Inc");
    await sleep(50); // a chance for the Inc to interleave with the continuation, if the mailbox let it
    expect(log).toEqual(["inc at 0", "continue at 1"]);
    gate.resolve();
    expect(await added).toBe(6);
    expect(await inc).toBe(7);
    expect(log).toEqual(["inc at 0", "continue at 1", "continued to 6", "inc at 6"]);

    // the work fails: onError runs in the mailbox, changes state, and its value is the answer
    expect(await host.ask(addr, "r.Recover")).toBe("recovered");
    expect(failures).toEqual(["disk gone"]);
    expect(await host.ask(addr, "r.Get")).toBe(100);
    // what a continuation throws is the answer; without onError the work's error is
    expect((await askError(host.ask(addr, "r.Refuse"))).code).toBe(ErrorCode.ParameterInvalid);
    const unhandled = await askError(host.ask(addr, "r.FailUnhandled"));
    expect([unhandled.code, unhandled.message]).toEqual([ErrorCode.CollectionNotFound, "no such collection"]);
    failures = [];
    expect((await askError(host.ask(addr, "r.OnErrorRefuses"))).code).toBe(ErrorCode.IndexNotFound);
    expect(failures).toEqual(["refused"]);
    // refusals are not crashes: the same instance keeps its state
    expect(await host.ask(addr, "r.Get")).toBe(100);
  });

  it("refuses an internal message from any sender but the actor itself with 1100, before receive sees it", async () => {
    await using host = await newHost();
    const addr = `${uniquePrefix()}.private`;
    const received: string[] = [];
    await host.spawn({
      address: addr,
      create: () =>
        new (class extends Actor {
          override receive(msg: Message) {
            received.push(msg.type);
            if (msg.type === "x.Poke") {
              this.ctx.self("x.internal.Foo", { from: "self" });
              this.ctx.timers.startSingle("t", 1, "x.internal.Tick");
            }
            return msg.type;
          }
        })(),
    });
    await using outsider = await connectTest();
    for (const type of ["x.internal.Foo", ACTOR_STOPPED, "actor.Continue"]) {
      const err = await askError(ask(outsider, addr, type, { address: "forged", reason: "stopped" }));
      expect(err.code).toBe(ErrorCode.ParameterInvalid);
      expect(err.message).toContain(type);
      // another actor of the same host is an outsider too
      expect((await askError(host.ask(addr, type, null))).code).toBe(ErrorCode.ParameterInvalid);
    }
    // a tell (no reply) is dropped the same way; the ask after it on the same connection comes after it
    tell(outsider, addr, "x.internal.Foo", { from: "outside" });
    expect(await ask(outsider, addr, "x.Ping", null)).toBe("x.Ping");
    expect(received).toEqual(["x.Ping"]);

    // the actor's own self-messages and timers of an internal type do reach it
    expect(await host.ask(addr, "x.Poke")).toBe("x.Poke");
    await waitFor(() => received.includes("x.internal.Tick"), { what: "the internal timer" });
    expect(received).toEqual(["x.Ping", "x.Poke", "x.internal.Foo", "x.internal.Tick"]);
    const stats = host.actors().find((a) => a.address === addr)!;
    expect(stats.errors).toBe(7); // the six refused asks and the refused tell
    expect(stats.requests).toBe(7 + 2); // and x.Ping, x.Poke (the actor's own messages are not requests)
    expect(stats.lastError).toContain("is internal to");
  });
});

/** Takes asks and never answers them (its work never ends), but keeps taking messages. */
class Silent extends Actor {
  override receive(_msg: Message): unknown {
    return this.ctx.reenter(new Promise<never>(() => undefined));
  }
}

describe("an ask whose receiver dies while it works", () => {
  it("fails within about a second (the probe finds nobody), not at its deadline, and a live slow receiver is left alone", async () => {
    await using a = await newHost();
    const ncB = await connectTest();
    const b = new ActorHost(ncB);
    const prefix = uniquePrefix("probe");
    const dying = `${prefix}.dying`;
    const slow = `${prefix}.slow`;
    await b.spawn({ address: dying, create: () => new Silent() });
    await b.spawn({ address: slow, create: () => new Silent() });
    // the server has both subscriptions before the asks go out (they come from another connection)
    await ncB.flush();
    const toDying = askError(a.ask(dying, "silent.Work", {}, { timeoutMs: 30_000 }));
    let slowSettled = false;
    const toSlow = a.ask(slow, "silent.Work", {}, { timeoutMs: 4_000 }).catch((err: unknown) => {
      slowSettled = true;
      return err;
    });
    await sleep(700);
    const killedAt = Date.now();
    // the dying actor's process goes away (as a SIGKILL would take its connection)
    await b.stopActor(dying).catch(() => undefined);
    const err = await toDying;
    expect(err.code).toBe(ErrorCode.ServiceUnavailable);
    expect(err.retriable).toBe(true);
    expect(err.message).toContain("went away before it answered");
    expect(Date.now() - killedAt).toBeLessThan(20_000); // its deadline is 30 s
    // the live one is probed too, answers the probe, and its ask waits for its own deadline
    await sleep(1_000);
    expect(slowSettled).toBe(false);
    const slowErr = (await toSlow) as VbError;
    expect(slowErr.code).toBe(ErrorCode.Timeout);
    await b.stop();
    await ncB.close();
  });
});

/**
 * The runtime benchmark: actor ask against plain NATS request/reply, and the DML log's publish against
 * plain JetStream publish, all on one nats-server started for the run, with the same payload.
 *
 * Prints `{ask_seq_per_s, ask_concurrent_per_s, raw_request_seq_per_s, raw_request_concurrent_per_s,
 * ask_vs_raw_concurrent, dml_publish_per_s, raw_js_publish_per_s, ...}`. `raw_request_*` is nats.js's
 * own `request`; `bare_inbox_*` is the least a request/reply can cost (one inbox subscription, no
 * envelope, no actor), so `ask_vs_bare_inbox_concurrent` is what the actor layer itself costs.
 */
import { jetstream } from "@nats-io/jetstream";
import { encode } from "../protocol/codec.ts";
import { Actor, type Message } from "../runtime/actor.ts";
import { ActorHost } from "../runtime/host.ts";
import { connectNats } from "../runtime/transport.ts";
import { DmlLog } from "../runtime/dml_log.ts";
import { ensureStream } from "../runtime/streams.ts";
import { startNatsServer } from "../ops/nats_server.ts";
import { option, rateConcurrent, rateSequential, report, round } from "./util.ts";

class Echo extends Actor {
  override receive(msg: Message): unknown {
    return msg.body;
  }
}

export async function main(args: string[]): Promise<void> {
  const seqN = option(args, "seq", 5_000);
  const concN = option(args, "concurrent", 50_000);
  const inFlight = option(args, "in-flight", 100);
  const pubN = option(args, "publish", 50_000);

  await using server = await startNatsServer();
  const serverNc = await connectNats(server.url, { name: "bench-server" });
  const clientNc = await connectNats(server.url, { name: "bench-client" });
  const body = { id: 123456789n, ts: 460_000_000_000_000_000n, vec: new Float32Array(16).fill(0.5) };
  const rawPayload = encode({ t: "bench.Echo", d: Date.now() + 60_000, b: body });

  // Plain NATS request/reply: an echo responder, the same bytes as an actor's envelope.
  const rawSub = serverNc.subscribe("bench.raw", { callback: (_e, m) => void m.respond(m.data) });
  // One actor behind the process host.
  const host = new ActorHost(serverNc);
  await host.spawn({ address: "bench.actor", create: () => new Echo() });
  const client = new ActorHost(clientNc);
  await serverNc.flush();

  const rawReq = () => clientNc.request("bench.raw", rawPayload, { timeout: 10_000 });
  // The least request/reply can cost: one inbox subscription, an id per request, no envelope, no
  // actor, no timeouts (what the runtime's own request multiplexer does, minus the actor around it).
  const inbox = `_INBOX.bench${Date.now()}`;
  const waiting = new Map<string, () => void>();
  let nextId = 0;
  clientNc.subscribe(`${inbox}.*`, {
    callback: (_e, m) => {
      const id = m.subject.slice(inbox.length + 1);
      waiting.get(id)?.();
      waiting.delete(id);
    },
  });
  const bareReq = () =>
    new Promise<void>((resolve) => {
      const id = String(nextId++);
      waiting.set(id, resolve);
      clientNc.publish("bench.raw", rawPayload, { reply: `${inbox}.${id}` });
    });
  const askReq = () => client.ask("bench.actor", "bench.Echo", body, { timeoutMs: 10_000 });
  // warm up both paths
  await rateConcurrent(2_000, inFlight, rawReq);
  await rateConcurrent(2_000, inFlight, askReq);
  await rateConcurrent(2_000, inFlight, bareReq);

  // alternate the two sides over several rounds and keep the medians, so drift on the machine (other
  // processes, GC) hits both sides alike
  const rounds = option(args, "rounds", 5);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rawSeq: number[] = [];
  const askSeq: number[] = [];
  const rawConc: number[] = [];
  const askConc: number[] = [];
  const bareConc: number[] = [];
  for (let r = 0; r < rounds; r++) {
    bareConc.push(await rateConcurrent(concN / rounds, inFlight, bareReq));
    rawSeq.push(await rateSequential(seqN / rounds, rawReq));
    askSeq.push(await rateSequential(seqN / rounds, askReq));
    rawConc.push(await rateConcurrent(concN / rounds, inFlight, rawReq));
    askConc.push(await rateConcurrent(concN / rounds, inFlight, askReq));
  }
  const raw_request_seq_per_s = median(rawSeq);
  const ask_seq_per_s = median(askSeq);
  const raw_request_concurrent_per_s = median(rawConc);
  const ask_concurrent_per_s = median(askConc);
  const bare_inbox_concurrent_per_s = median(bareConc);

  // JetStream: a bare stream published to with concurrent awaited acks, against the DML log's batches.
  const js = jetstream(clientNc);
  const jsm = await js.jetstreamManager();
  await ensureStream(jsm, { name: "BENCH_RAW", subjects: ["bench.rawjs.>"] });
  const dml = new DmlLog(clientNc);
  await dml.ensureChannel("BENCH_DML", "bench.dml.>");
  const raw_js_publish_per_s = await rateConcurrent(pubN, 256, () => js.publish("bench.rawjs.v0", rawPayload));
  const batch = Array.from({ length: pubN }, () => ({ subject: "bench.dml.v0", payload: rawPayload }));
  const t0 = performance.now();
  await dml.publishBatch(batch);
  const dml_publish_per_s = pubN / ((performance.now() - t0) / 1000);

  rawSub.unsubscribe();
  await client.stop();
  await host.stop();
  await clientNc.close();
  await serverNc.close();

  report(args, {
    ask_seq_per_s: round(ask_seq_per_s),
    ask_concurrent_per_s: round(ask_concurrent_per_s),
    raw_request_seq_per_s: round(raw_request_seq_per_s),
    raw_request_concurrent_per_s: round(raw_request_concurrent_per_s),
    ask_vs_raw_seq: round(ask_seq_per_s / raw_request_seq_per_s, 3),
    ask_vs_raw_concurrent: round(ask_concurrent_per_s / raw_request_concurrent_per_s, 3),
    bare_inbox_concurrent_per_s: round(bare_inbox_concurrent_per_s),
    ask_vs_bare_inbox_concurrent: round(ask_concurrent_per_s / bare_inbox_concurrent_per_s, 3),
    dml_publish_per_s: round(dml_publish_per_s),
    raw_js_publish_per_s: round(raw_js_publish_per_s),
    in_flight: inFlight,
    rounds,
    payload_bytes: rawPayload.byteLength,
  });
}

/**
 * The runtime benchmark: actor ask against plain NATS request/reply, and the DML log's publish against
 * plain JetStream publish, all on one nats-server started for the run, with the same payload.
 *
 * Prints `{ask_seq_per_s, ask_concurrent_per_s, raw_request_seq_per_s, raw_request_concurrent_per_s,
 * ask_vs_raw_concurrent, dml_publish_per_s, raw_js_publish_per_s, ...}`.
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
  const askReq = () => client.ask("bench.actor", "bench.Echo", body, { timeoutMs: 10_000 });
  // warm up both paths
  await rateConcurrent(2_000, inFlight, rawReq);
  await rateConcurrent(2_000, inFlight, askReq);

  // interleave the runs so drift on the machine hits both sides alike
  const raw_request_seq_per_s = await rateSequential(seqN, rawReq);
  const ask_seq_per_s = await rateSequential(seqN, askReq);
  const raw_request_concurrent_per_s = await rateConcurrent(concN, inFlight, rawReq);
  const ask_concurrent_per_s = await rateConcurrent(concN, inFlight, askReq);

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
    dml_publish_per_s: round(dml_publish_per_s),
    raw_js_publish_per_s: round(raw_js_publish_per_s),
    in_flight: inFlight,
    payload_bytes: rawPayload.byteLength,
  });
}

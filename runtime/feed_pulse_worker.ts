/**
 * The worker of a FeedPulse (runtime/feed_pulse.ts): follows one filter of a feed, headers only, on a
 * connection of its own, and writes when the server stored each subject's newest message into the
 * shared times (a subject's slot is posted to the owner when first seen).
 */
import { parentPort, workerData } from "node:worker_threads";
import { Feed } from "./feed.ts";
import { PULSE_HEADER, type PulseWorkerMsg } from "./feed_pulse.ts";
import { errorText } from "./streams.ts";
import { connectNats } from "./transport.ts";

const { servers, stream, filter, capacity, shared } = workerData as {
  servers: string[];
  stream: string;
  filter: string;
  capacity: number;
  shared: SharedArrayBuffer;
};
const port = parentPort!;
const post = (m: PulseWorkerMsg) => port.postMessage(m);
const times = new Float64Array(shared);
const slots = new Map<string, number>();

try {
  const nc = await connectNats(servers, { name: "vb-feed-pulse" });
  const follower = await new Feed(nc).follow(
    stream,
    filter,
    (m) => {
      let slot = slots.get(m.subject);
      if (slot === undefined) {
        if (slots.size >= capacity) return;
        slots.set(m.subject, (slot = slots.size));
        post({ type: "slot", subject: m.subject, slot });
      }
      if (m.timestamp > times[PULSE_HEADER + slot]!) times[PULSE_HEADER + slot] = m.timestamp;
      if (!m.initial) {
        times[0] = m.timestamp;
        times[1] = Date.now();
        times[2] = times[2]! + 1;
      }
    },
    { headersOnly: true },
  );
  post({ type: "ready" });
  follower.done.then(
    () => post({ type: "failed", error: "following stopped" }),
    (err: unknown) => post({ type: "failed", error: errorText(err) }),
  );
} catch (err) {
  post({ type: "failed", error: errorText(err) });
}

/**
 * A publisher on a thread of its own for test/integration/feed_pulse.test.ts: publishes `{ n }` on
 * `subject` every `everyMs` until told "stop", then posts how many it published.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Feed } from "../../runtime/feed.ts";
import { connectNats } from "../../runtime/transport.ts";

const { url, subject, everyMs } = workerData as { url: string; subject: string; everyMs: number };
const nc = await connectNats(url, { name: "test-feed-publisher" });
const feed = new Feed(nc);
let n = 0;
let stopped = false;
parentPort!.on("message", () => (stopped = true));
parentPort!.postMessage({ started: true });
while (!stopped) {
  await feed.publish(subject, new TextEncoder().encode(JSON.stringify({ n: ++n })));
  await new Promise((r) => setTimeout(r, everyMs));
}
await nc.close();
parentPort!.postMessage({ published: n });

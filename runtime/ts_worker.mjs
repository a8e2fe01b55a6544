// Boots a worker thread that runs a TypeScript module: registers tsx in the worker, then imports the
// module named by workerData.module (a file URL). Worker threads do not inherit the main thread's loader.
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.module);

/**
 * A querynode search thread (booted by runtime/ts_worker.mjs from search_threads.ts): answers the calls
 * of search_calls.ts, one at a time, with the indexes it loaded.
 */
import { serveCalls } from "../../runtime/worker_pool.ts";
import { SearchCalls } from "./search_calls.ts";

serveCalls(new SearchCalls().handlers());

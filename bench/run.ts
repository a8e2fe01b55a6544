/**
 * `npm run bench -- <name> [--json] [options]`: runs one benchmark, which prints one JSON line on stdout
 * (with --json) or a readable summary. Each benchmark starts the servers it needs and measures the raw
 * library or the physical limit beside Vectorbus in the same run.
 */
// benchmarks print their own JSON; the actors they start log only warnings unless asked
process.env.VB_LOG_LEVEL ??= "warn";

const BENCHES: Record<string, () => Promise<{ main(args: string[]): Promise<void> }>> = {
  runtime: () => import("./runtime.ts"),
  insert: () => import("./insert.ts"),
  search_kernel: () => import("./search_kernel.ts"),
  search: () => import("./search.ts"),
  vector_index: () => import("./vector_index.ts"),
  backlog: () => import("./backlog.ts"),
  segment_fanout: () => import("./segment_fanout.ts"),
  "querycoord-sim": () => import("./querycoord_sim.ts"),
};

const [name, ...rest] = process.argv.slice(2);
const load = name ? BENCHES[name] : undefined;
if (!load) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(BENCHES).join("|")}> [--json]\n`);
  process.exit(2);
}
const mod = await load();
await mod.main(rest);

/**
 * `vbus rg ...` (resource groups) and `vbus balance` (manual LoadBalance): the commands, registered on
 * the CLI's program by `ops/cli.ts`.
 */
import type { Command } from "commander";
import type { VectorbusClient } from "../actors/control/client.ts";
import { VbError } from "../protocol/errors.ts";
import type { ResourceGroupConfig } from "../protocol/messages/querycoord.ts";

export interface CliParts<O> {
  connOptions(cmd: Command): Command;
  client(opts: O): Promise<VectorbusClient>;
  print(value: unknown): void;
}

function count(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw VbError.invalid(`${flag} must be an integer ≥ 0, got "${text}"`);
  return n;
}

const list = (text: string | undefined) => (text === undefined ? undefined : text.split(",").map((s) => s.trim()).filter(Boolean));

interface ConfigFlags {
  requests?: string;
  limits?: string;
  transferFrom?: string;
  transferTo?: string;
}

/** The config the flags give, over `base` (a group's current config, or requests 0 and limits 0). */
function configOf(flags: ConfigFlags, base: ResourceGroupConfig): ResourceGroupConfig {
  const requests = count(flags.requests, "--requests") ?? base.requests.nodeNum;
  // a request above the old limit raises the limit with it, unless --limits says otherwise
  const limits = count(flags.limits, "--limits") ?? Math.max(base.limits.nodeNum, requests);
  const from = list(flags.transferFrom);
  const to = list(flags.transferTo);
  return {
    requests: { nodeNum: requests },
    limits: { nodeNum: limits },
    transferFrom: from ? from.map((resourceGroup) => ({ resourceGroup })) : (base.transferFrom ?? []),
    transferTo: to ? to.map((resourceGroup) => ({ resourceGroup })) : (base.transferTo ?? []),
  };
}

const configOptions = (cmd: Command) =>
  cmd
    .option("--requests <n>", "querynodes the group asks for (it takes them from groups over their limits, then over their requests)")
    .option("--limits <n>", "querynodes the group holds at most (default: at least --requests)")
    .option("--transfer-from <groups>", "comma-separated groups to take nodes from first")
    .option("--transfer-to <groups>", "comma-separated groups to give nodes to first");

/**
 * `--rg a:1,b:1` → one replica in a and one in b; `--rg a` → every replica in a. Returns the groups (a
 * name per replica, or one name) and the replica number they make (undefined for one name without count).
 */
export function parseRgOption(text: string): { resourceGroups: string[]; replicaNumber?: number } {
  const parts = text.split(",").map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw VbError.invalid(`--rg needs a group name, e.g. --rg rg_a:1,rg_b:1`);
  if (parts.length === 1 && !parts[0]!.includes(":")) return { resourceGroups: [parts[0]!] };
  const groups: string[] = [];
  for (const p of parts) {
    const [name, n = "1"] = p.split(":");
    const k = Number(n);
    if (!name || !Number.isInteger(k) || k < 1) throw VbError.invalid(`--rg: "${p}" is not <group>:<replicas>, e.g. rg_a:1`);
    for (let i = 0; i < k; i++) groups.push(name);
  }
  return { resourceGroups: groups, replicaNumber: groups.length };
}

export function registerResourceGroupCommands<O extends object>(program: Command, cli: CliParts<O>): void {
  const rg = program.command("rg").description("resource groups: querynodes by name, each replica of a collection on one group's nodes");

  configOptions(cli.connOptions(rg.command("create <name>")))
    .description("create a resource group (requests and limits 0 unless given)")
    .action(async (name: string, opts: O & ConfigFlags) => {
      await using vb = await cli.client(opts);
      const config = configOf(opts, { requests: { nodeNum: 0 }, limits: { nodeNum: 0 } });
      await vb.createResourceGroup({ resourceGroup: name, config });
      process.stdout.write(`created resource group "${name}" (requests ${config.requests.nodeNum}, limits ${config.limits.nodeNum})\n`);
    });

  configOptions(cli.connOptions(rg.command("update <name>")))
    .description("change a group's requests, limits and transfer preferences (what is not given stays)")
    .action(async (name: string, opts: O & ConfigFlags) => {
      await using vb = await cli.client(opts);
      const { resourceGroup: g } = await vb.describeResourceGroup({ resourceGroup: name });
      const config = configOf(opts, g.config);
      await vb.updateResourceGroups({ resourceGroups: { [name]: config } });
      const after = (await vb.describeResourceGroup({ resourceGroup: name })).resourceGroup;
      process.stdout.write(`updated resource group "${name}": requests ${config.requests.nodeNum}, limits ${config.limits.nodeNum}; nodes [${after.nodes.join(", ")}]\n`);
    });

  cli.connOptions(rg.command("drop <name>"))
    .description("drop a resource group (its limits must be 0 and no replica in it)")
    .action(async (name: string, opts: O) => {
      await using vb = await cli.client(opts);
      await vb.dropResourceGroup({ resourceGroup: name });
      process.stdout.write(`dropped resource group "${name}"\n`);
    });

  cli.connOptions(rg.command("list"))
    .description("the resource groups")
    .option("--json", "as JSON")
    .action(async (opts: O & { json?: boolean }) => {
      await using vb = await cli.client(opts);
      const { resourceGroups } = await vb.listResourceGroups({});
      if (opts.json) return cli.print(resourceGroups);
      for (const name of resourceGroups) {
        const { resourceGroup: g } = await vb.describeResourceGroup({ resourceGroup: name });
        process.stdout.write(`${name.padEnd(26)} requests ${String(g.config.requests.nodeNum).padStart(3)}  limits ${String(g.config.limits.nodeNum).padStart(7)}  nodes [${g.nodes.join(", ")}]\n`);
      }
    });

  cli.connOptions(rg.command("describe <name>"))
    .description("a group's config, nodes and the replicas in it")
    .option("--json", "as JSON")
    .action(async (name: string, opts: O & { json?: boolean }) => {
      await using vb = await cli.client(opts);
      const { resourceGroup: g } = await vb.describeResourceGroup({ resourceGroup: name });
      if (opts.json) return cli.print(g);
      const per = (l: { collectionName: string; count: number }[]) => (l.length ? l.map((x) => `${x.collectionName}: ${x.count}`).join(", ") : "none");
      const transfers = (l: { resourceGroup: string }[] | undefined) => (l && l.length ? l.map((t) => t.resourceGroup).join(", ") : "-");
      process.stdout.write(
        `resource group "${g.name}"\n` +
          `  requests ${g.config.requests.nodeNum}, limits ${g.config.limits.nodeNum}; transfer from ${transfers(g.config.transferFrom)}, to ${transfers(g.config.transferTo)}\n` +
          `  nodes (${g.numAvailableNode} available): ${g.nodes.join(", ") || "none"}\n` +
          `  replicas: ${per(g.numLoadedReplica)}\n` +
          `  nodes serving other groups' replicas: ${per(g.numOutgoingNode)}\n` +
          `  other groups' nodes serving its replicas: ${per(g.numIncomingNode)}\n`,
      );
    });

  cli.connOptions(rg.command("transfer-node <source> <target>"))
    .description("move querynodes from one group to another (the source asks for fewer, the target for more)")
    .option("--num <n>", "how many", "1")
    .action(async (source: string, target: string, opts: O & { num: string }) => {
      await using vb = await cli.client(opts);
      const { transfers } = await vb.transferNode({ sourceResourceGroup: source, targetResourceGroup: target, numNode: Number(opts.num) });
      const moved = transfers.filter((t) => t.from === source && t.to === target).map((t) => t.nodeId);
      process.stdout.write(`moved ${moved.length ? moved.join(", ") : "no node yet"} from "${source}" to "${target}"\n`);
      for (const t of transfers) if (!moved.includes(t.nodeId)) process.stdout.write(`  also ${t.nodeId}: ${t.from ?? "(new)"} → ${t.to}: ${t.reason}\n`);
    });

  cli.connOptions(rg.command("transfer-replica <source> <target>"))
    .description("move replicas of a collection from one group to another (their data is loaded on the target's nodes, then released)")
    .requiredOption("--collection <name>", "the collection")
    .option("--num <n>", "how many replicas", "1")
    .action(async (source: string, target: string, opts: O & { collection: string; num: string }) => {
      await using vb = await cli.client(opts);
      const { replicaIds } = await vb.transferReplica({
        collectionName: opts.collection,
        sourceResourceGroup: source,
        targetResourceGroup: target,
        numReplica: Number(opts.num),
      });
      process.stdout.write(`moving replica${replicaIds.length === 1 ? "" : "s"} ${replicaIds.join(", ")} of "${opts.collection}" from "${source}" to "${target}" (vbus status shows where they are)\n`);
    });

  cli.connOptions(program.command("balance"))
    .description("move sealed segments off a querynode to others of its replica (Milvus's LoadBalance)")
    .requiredOption("--from <node>", "the querynode to move segments off")
    .option("--to <nodes>", "comma-separated querynodes of the same replica to move them to (default: every other)")
    .option("--segments <ids>", "comma-separated segment ids (default: every sealed segment on --from)")
    .option("--collection <name>", "only this collection (default: every loaded one with a replica on --from)")
    .option("--no-wait", "plan the moves and return")
    .option("--timeout <s>", "how long to wait for the moves", "300")
    .action(async (opts: O & { from: string; to?: string; segments?: string; collection?: string; wait: boolean; timeout: string }) => {
      await using vb = await cli.client(opts);
      const segments = list(opts.segments)?.map((s) => {
        if (!/^\d+$/.test(s)) throw VbError.invalid(`--segments: "${s}" is not a segment id`);
        return BigInt(s);
      });
      const dst = list(opts.to);
      const timeoutMs = Number(opts.timeout) * 1000;
      const { moves } = await vb.loadBalance(
        {
          srcNode: opts.from,
          ...(dst && dst.length > 0 ? { dstNodes: dst } : {}),
          ...(segments && segments.length > 0 ? { sealedSegmentIds: segments } : {}),
          ...(opts.collection ? { collectionName: opts.collection } : {}),
          ...(opts.wait ? { wait: true, timeoutMs } : {}),
        },
        { timeoutMs: timeoutMs + 10_000 },
      );
      if (moves.length === 0) process.stdout.write(`nothing to move off ${opts.from}\n`);
      for (const m of moves) {
        const what = m.state === "moved" ? "moved" : m.state === "failed" ? `NOT moved: ${m.reason}` : "moving";
        process.stdout.write(`${m.collectionName} segment ${m.segmentId} (${m.rows} rows) ${m.from} → ${m.to}: ${what}\n`);
      }
      if (moves.some((m) => m.state === "failed")) process.exitCode = 1;
    });
}

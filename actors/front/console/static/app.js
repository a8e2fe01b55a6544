// The console page: polls /console/api/state every two seconds and draws it (nodes, the distribution,
// charts, collections), and runs the search playground. Plain ES modules, no build step.

import { DistributionView } from "./dist.js";
import { History, drawChart } from "./charts.js";
import { Playground } from "./playground.js";
import { bar, esc, mib } from "./html.js";

const POLL_MS = 2_000;
const $ = (sel) => document.querySelector(sel);

async function call(path, init) {
  const res = await fetch(`api/${path}`, init);
  let body;
  try {
    body = await res.json();
  } catch {
    throw new Error(`${res.status} ${res.statusText}`);
  }
  if (!res.ok) throw new Error(body.message ?? `${res.status} ${res.statusText}`);
  return body;
}
const post = (path, body) => call(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

// one colour per collection, kept for the page's life
const colours = new Map();
const colourOf = (collectionId) => {
  if (collectionId === undefined) return undefined;
  const key = String(collectionId);
  if (!colours.has(key)) colours.set(key, `hsl(${(colours.size * 137.5 + 200) % 360} 55% 52%)`);
  return colours.get(key);
};
const seriesColour = (_name, i) => `hsl(${(i * 137.5 + 20) % 360} 60% 45%)`;

const view = new DistributionView($("#distribution"));
const playground = new Playground($("#playground"), $("#pg-status"), $("#results"), post);
const qps = new History();
const latency = new History();
const rows = new History();
const memory = new History();
let previous;
let previousMetrics;

function drawNodes(state) {
  $("#cluster").textContent = `prefix ${state.prefix}`;
  $("#nodes tbody").innerHTML = state.nodes
    .map((n) => {
      const age = Math.max(0, state.at - n.lastHeartbeatMs);
      const pct = n.memoryLimitBytes > 0 ? (100 * n.memoryBytes) / n.memoryLimitBytes : 0;
      return `<tr data-node="${esc(n.nodeId)}"><td>${esc(n.nodeId)}</td><td class="state ${esc(n.state)}">${esc(n.state)}</td><td>${(age / 1000).toFixed(1)} s ago</td><td>${n.rows.toLocaleString()}</td><td>${n.segments}</td><td>${n.delegators}</td><td>${bar(pct, { warn: pct > 85 })} ${mib(n.memoryBytes)} / ${mib(n.memoryLimitBytes)}</td><td>${n.score ?? ""}</td></tr>`;
    })
    .join("") || `<tr><td colspan="8" class="muted">${esc(state.statusError ? `querycoord did not answer: ${state.statusError}` : "no querynode yet")}</td></tr>`;
  $("#resource-groups").textContent = `resource groups: ${state.resourceGroups.map((g) => `${g.name} [${g.nodes.join(", ")}]`).join(" · ")}`;
  $("#processes tbody").innerHTML =
    state.processes
      .map((p) => {
        const kinds = new Map();
        for (const a of p.actors) {
          // vb.dn.dn1 → dn1; a coordinator's or the proxy's address names only its kind
          const parts = a.address.split(".");
          if (!kinds.has(a.kind)) kinds.set(a.kind, []);
          if (parts.length > 2) kinds.get(a.kind).push(parts[parts.length - 1]);
        }
        const hosts = [...kinds].map(([k, ids]) => `${k}${ids.length ? ` ${ids.join(" ")}` : ""}`).join(" · ");
        return `<tr data-process="${esc(p.process)}"><td>${esc(p.process)}</td><td>${esc(p.node)}</td><td>${esc(hosts)}</td></tr>`;
      })
      .join("") || `<tr><td colspan="3" class="muted">no process answered service discovery</td></tr>`;
  const dc = state.datacoord;
  $("#datacoord").textContent = "error" in dc ? `datacoord: no answer (${dc.error})` : `datacoord: ${dc.segments} segments, ${dc.vchannels} vchannels, ${dc.indexes} indexes, ${dc.builds} index builds`;
}

function drawDistribution(state) {
  const names = new Map(state.collections.map((c) => [String(c.collectionId), c.dbName === "default" ? c.name : `${c.dbName}.${c.name}`]));
  const shown = new Set(state.nodes.flatMap((n) => [...n.segmentList.map((s) => String(s.collectionId)), ...n.delegatorList.map((d) => String(d.collectionId))]));
  $("#legend").innerHTML = [...shown].map((id) => `<span style="--c:${colourOf(id)}">${esc(names.get(id) ?? id)}</span>`).join("");
  view.render(state, colourOf);
  $("#moves").innerHTML = state.moves
    .map((m) => `<li>moving segment ${esc(m.segmentId)} of ${esc(names.get(String(m.collectionId)) ?? m.collectionId)} (${m.rows.toLocaleString()} rows): ${esc(m.from)} → ${esc(m.to)}</li>`)
    .join("");
}

function drawCollection(c) {
  const loadPct = c.load.state === "Loaded" ? 100 : c.load.progress;
  const fieldRows = c.schema.fields
    .map((f) => {
      const extra = [f.dim ? `dim ${f.dim}` : "", f.maxLength ? `max_length ${f.maxLength}` : "", f.elementType ? `of ${f.elementType}` : "", f.maxCapacity ? `capacity ${f.maxCapacity}` : ""].filter(Boolean).join(", ");
      const flags = [f.isPrimaryKey ? "primary key" : "", f.autoId ? "auto id" : "", f.nullable ? "nullable" : "", f.defaultValue !== undefined ? `default ${f.defaultValue}` : ""].filter(Boolean).join(", ");
      return `<tr><td>${esc(f.name)}</td><td>${esc(f.type)}${extra ? ` <span class="muted">(${esc(extra)})</span>` : ""}</td><td>${esc(flags)}</td></tr>`;
    })
    .join("");
  const indexRows = c.indexes.length
    ? c.indexes
        .map((i) => {
          const pct = i.totalRows > 0 ? (100 * i.indexedRows) / i.totalRows : 100;
          const params = Object.entries(i.params ?? {}).map(([k, v]) => `${k}=${v}`).join(" ");
          return `<tr data-index="${esc(i.indexName)}"><td>${esc(i.indexName)}</td><td>${esc(i.fieldName)}</td><td>${esc(i.indexType)} ${esc(i.metricType)} <span class="muted">${esc(params)}</span></td><td><span class="state ${esc(i.state)}">${esc(i.state)}</span> ${bar(pct, { warn: pct < 100, testid: `index-progress-${i.indexName}` })} <span class="muted">${i.indexedRows.toLocaleString()} / ${i.totalRows.toLocaleString()} rows${i.pendingBuilds ? `, ${i.pendingBuilds} builds pending` : ""}${i.failedBuilds.length ? `, ${i.failedBuilds.length} failed` : ""}</span></td></tr>`;
        })
        .join("")
    : `<tr><td colspan="4" class="muted">no index: searches are exact</td></tr>`;
  const replicas = c.replicas.length
    ? c.replicas
        .map(
          (r) =>
            `<li>replica ${esc(r.replicaId)} on ${esc(r.nodes.join(", ") || "no node")}<br><span class="muted">${r.shardLeaders
              .map((l) => `${esc(l.vchannel)} → ${esc(l.nodeId)}${l.serviceable ? "" : " (not serviceable)"}`)
              .join(" · ")}</span></li>`,
        )
        .join("")
    : `<li class="muted">not loaded</li>`;
  const blockers = c.load.blockers.map((b) => `<li>waiting on ${esc(b.kind)} ${esc(b.subject)}: ${esc(b.reason)}</li>`).join("");
  return `
    <div class="head">
      <h3><span class="swatch" style="background:${colourOf(c.collectionId)}"></span> ${esc(c.dbName === "default" ? c.name : `${c.dbName}.${c.name}`)}</h3>
      <span class="muted">id ${esc(c.collectionId)} · ${c.shardsNum} shard${c.shardsNum === 1 ? "" : "s"} · ${esc(c.consistencyLevel)} · partitions ${esc(c.partitions.join(", "))}</span>
      <span>${c.rows === undefined ? "" : `${c.rows.toLocaleString()} rows (${(c.flushedRows ?? 0).toLocaleString()} flushed in ${c.flushedSegments ?? 0} segments)`}</span>
      <span>load: <span class="state ${esc(c.load.state)}" data-testid="load-state">${esc(c.load.state)}</span> ${bar(loadPct, { warn: loadPct < 100, testid: "load-progress" })}</span>
    </div>
    ${c.load.error ? `<p class="muted">load progress unknown: ${esc(c.load.error)}</p>` : ""}
    ${blockers ? `<ul class="blockers">${blockers}</ul>` : ""}
    <div class="cols">
      <div><h4>schema${c.schema.enableDynamicField ? ` <span class="muted">(dynamic fields on)</span>` : ""}</h4><table class="grid"><tbody>${fieldRows}</tbody></table></div>
      <div><h4>indexes</h4><table class="grid"><tbody>${indexRows}</tbody></table><h4>replicas</h4><ul>${replicas}</ul></div>
    </div>`;
}

/** the HTML each collection's element was last given (redrawn only when it changes) */
const drawn = new WeakMap();

function drawCollections(state) {
  const host = $("#collections");
  const keep = new Set();
  for (const c of state.collections) {
    const key = `${c.dbName}/${c.name}`;
    keep.add(key);
    let div = [...host.children].find((d) => d.dataset.key === key);
    if (!div) {
      div = document.createElement("div");
      div.className = "collection";
      div.dataset.key = key;
      div.dataset.collection = c.name;
      host.appendChild(div);
    }
    const html = drawCollection(c);
    if (drawn.get(div) !== html) {
      div.innerHTML = html;
      drawn.set(div, html);
    }
  }
  for (const d of [...host.children]) if (!keep.has(d.dataset.key)) d.remove();
  if (state.collections.length === 0) {
    host.innerHTML = `<p class="muted">${esc(state.collectionsError ? `the collections could not be listed: ${state.collectionsError}` : "no collection yet")}</p>`;
  }
  playground.setCollections(state.collections);
}

/**
 * Search and query latency from /metrics (when this port serves it): per query type, the sums and
 * counts of the proxy's `vectorbus_proxy_sq_latency` histogram (ms), for a mean over each poll.
 */
let metricsMissing = 0;
async function metricsLatency() {
  // a port without /metrics is asked again every 30th poll only
  if (metricsMissing > 0 && metricsMissing++ % 30 !== 0) return undefined;
  try {
    const res = await fetch("/metrics");
    if (!res.ok) {
      metricsMissing = Math.max(1, metricsMissing);
      return undefined;
    }
    metricsMissing = 0;
    const byType = new Map();
    for (const line of (await res.text()).split("\n")) {
      const m = /^vectorbus_proxy_sq_latency_(sum|count)\{([^}]*)\}\s+(\S+)/.exec(line);
      if (!m) continue;
      const type = /query_type="([^"]*)"/.exec(m[2])?.[1] ?? "all";
      if (!byType.has(type)) byType.set(type, { sum: 0, count: 0 });
      byType.get(type)[m[1]] += Number(m[3]);
    }
    return byType;
  } catch {
    return undefined;
  }
}

function drawCharts(state, metrics) {
  const t = state.at;
  const p = state.proxy;
  if (previous && !("error" in p) && !("error" in previous.proxy)) {
    const dt = (t - previous.at) / 1000;
    const own = p.consoleCalls - previous.proxy.consoleCalls;
    if (dt > 0) {
      qps.add("requests", t, Math.max(0, p.requests - previous.proxy.requests - own) / dt);
      qps.add("errors", t, Math.max(0, p.errors - previous.proxy.errors) / dt);
    }
  }
  // a type that first shows up after an earlier read of /metrics had none of it before
  for (const [type, now] of previousMetrics ? (metrics ?? []) : []) {
    const before = previousMetrics.get(type) ?? { sum: 0, count: 0 };
    if (now.count > before.count) latency.add(type, t, (now.sum - before.sum) / (now.count - before.count));
  }
  $("#latency-source").textContent = metrics ? "(from /metrics)" : "(appears when this port serves /metrics)";
  const names = new Set(state.nodes.map((n) => n.nodeId));
  rows.keepOnly(names);
  memory.keepOnly(names);
  for (const n of state.nodes) {
    rows.add(n.nodeId, t, n.rows);
    memory.add(n.nodeId, t, n.memoryBytes / 1048576);
  }
  // one time range for every chart: from the oldest sample kept to now
  const oldest = Math.min(t, ...[qps, latency, rows, memory].flatMap((h) => [...h.series.values()].map((pts) => pts[0][0])));
  const range = [oldest, t];
  drawChart($("#chart-qps"), qps, seriesColour, range, "needs two polls");
  drawChart($("#chart-latency"), latency, seriesColour, range, metrics ? "no search or query yet" : "no /metrics on this port");
  drawChart($("#chart-rows"), rows, seriesColour, range);
  drawChart($("#chart-memory"), memory, seriesColour, range);
}

async function poll() {
  try {
    const [state, metrics] = await Promise.all([call("state"), metricsLatency()]);
    drawNodes(state);
    drawDistribution(state);
    drawCollections(state);
    drawCharts(state, metrics);
    previous = state;
    previousMetrics = metrics;
    const u = $("#updated");
    u.textContent = `updated ${new Date(state.at).toLocaleTimeString()}`;
    u.dataset.polls = String(Number(u.dataset.polls ?? 0) + 1);
  } catch (err) {
    $("#updated").textContent = `no answer: ${err.message}`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();

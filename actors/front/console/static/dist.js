// The distribution picture: querynodes as boxes (width by memory in use) in a band per resource
// group, their sealed segments as squares and their shard delegators as diamonds. Every element is
// keyed and kept from one poll to the next; only its transform changes, so CSS transitions move it.
// A copy that appears on a node while another copy of the same segment (or delegator) is elsewhere, or
// was a moment ago, starts from there and travels: that is a balance move or a failover as it happens.

import { svgEl as el } from "./html.js";

const PAD = 12;
const HEAD = 46;
const DLG_ROW = 22;
const CELL = 22;
const MIN_W = 170;
const MAX_W = 340;
const GAP = 16;
const LABEL = 20;
/** how long a vanished element is remembered as the place a new copy starts from */
const REMEMBER_MS = 60_000;

const move = (e, x, y) => {
  e.style.transform = `translate(${x}px, ${y}px)`;
};

export class DistributionView {
  constructor(svg) {
    this.svg = svg;
    this.nodeLayer = el("g", { class: "nodes" }, svg);
    this.itemLayer = el("g", { class: "items" }, svg);
    /** key → {el, x, y, kind, ident} for nodes and items */
    this.nodes = new Map();
    this.items = new Map();
    /** ident (segment or delegator) → {x, y, at} of copies that went away */
    this.lastSeen = new Map();
    /** resource group name → {el} */
    this.labels = new Map();
  }

  /** Draws `state` (the /console/api/state reply); `colorOf(collectionId)` gives a collection's colour. */
  render(state, colorOf) {
    const width = Math.max(400, this.svg.clientWidth || 900);
    const nodes = state.nodes;
    const maxMem = Math.max(1, ...nodes.map((n) => n.memoryBytes));
    const maxRows = Math.max(1, ...nodes.flatMap((n) => n.segmentList.map((s) => s.rows)));
    // boxes: width by memory in use, height by what they hold; laid out in rows
    const boxes = nodes.map((n) => {
      const w = Math.round(MIN_W + (MAX_W - MIN_W) * Math.sqrt(n.memoryBytes / maxMem));
      const cols = Math.max(1, Math.floor((w - 2 * PAD) / CELL));
      const segs = n.segmentList.length + n.loading.filter((l) => l.indexId === undefined && !n.segmentList.some((s) => s.segmentId === l.segmentId)).length;
      const h = HEAD + DLG_ROW + Math.max(1, Math.ceil(segs / cols)) * CELL + PAD;
      return { n, w, h, cols };
    });
    // one band per resource group (its name above it), its nodes' boxes in rows; nodes in no group
    // (a node that is down or draining leaves its group) in a band of their own at the end
    const groups = (state.resourceGroups ?? []).map((g) => ({ name: g.name, boxes: boxes.filter((b) => g.nodes.includes(b.n.nodeId)) }));
    const grouped = new Set(groups.flatMap((g) => g.boxes.map((b) => b.n.nodeId)));
    const loose = boxes.filter((b) => !grouped.has(b.n.nodeId));
    if (loose.length > 0) groups.push({ name: "in no resource group", boxes: loose });
    let y = 0;
    const labels = [];
    for (const g of groups) {
      labels.push({ name: g.name, y });
      y += LABEL;
      let x = 0;
      let rowH = 0;
      for (const b of g.boxes) {
        if (x > 0 && x + b.w > width) {
          x = 0;
          y += rowH + GAP;
          rowH = 0;
        }
        b.x = x;
        b.y = y;
        x += b.w + GAP;
        rowH = Math.max(rowH, b.h);
      }
      y += rowH + GAP;
    }
    this.svg.setAttribute("height", String(Math.max(0, y - GAP) + 4));
    this.drawLabels(labels);

    const seenNodes = new Set();
    for (const b of boxes) {
      seenNodes.add(b.n.nodeId);
      this.drawNode(b, maxMem);
    }
    for (const [id, v] of this.nodes) if (!seenNodes.has(id)) this.retire(this.nodes, id, v);

    // items: where each copy goes now
    const wanted = [];
    for (const b of boxes) {
      const n = b.n;
      n.delegatorList.forEach((d, i) => {
        wanted.push({
          ident: `dlg:${d.collectionId}:${d.vchannel}:${d.replicaId}`,
          kind: "dlg",
          node: n.nodeId,
          x: b.x + PAD + i * 20 + 8,
          y: b.y + HEAD + 8,
          data: d,
        });
      });
      const cells = [
        ...n.segmentList.map((s) => ({ s, state: s.indexed ? "" : "noindex" })),
        ...n.loading
          .filter((l) => l.indexId === undefined && !n.segmentList.some((s) => s.segmentId === l.segmentId))
          .map((l) => ({ s: { segmentId: l.segmentId, rows: 0, reason: l.reason }, state: l.state })),
      ];
      cells.forEach(({ s, state: st }, i) => {
        const c = i % b.cols;
        const r = Math.floor(i / b.cols);
        wanted.push({
          ident: `seg:${s.segmentId}`,
          kind: "seg",
          node: n.nodeId,
          x: b.x + PAD + c * CELL,
          y: b.y + HEAD + DLG_ROW + r * CELL,
          data: s,
          state: st,
          side: s.rows > 0 ? Math.round(8 + 10 * Math.sqrt(s.rows / maxRows)) : 16,
        });
      });
    }
    const now = Date.now();
    const keep = new Set();
    // a copy keeps its key while it stays on its node
    const byIdent = new Map();
    for (const [key, v] of this.items) {
      if (!byIdent.has(v.ident)) byIdent.set(v.ident, []);
      byIdent.get(v.ident).push([key, v]);
    }
    for (const w of wanted) {
      const key = `${w.ident}@${w.node}`;
      keep.add(key);
      let item = this.items.get(key);
      if (!item) {
        // a new copy starts where another copy of it is, or was a moment ago
        const other = (byIdent.get(w.ident) ?? []).find(([k]) => k !== key)?.[1];
        const seen = this.lastSeen.get(w.ident);
        const from = other ?? (seen && now - seen.at < REMEMBER_MS ? seen : undefined);
        item = this.create(w, from);
        this.items.set(key, item);
      }
      this.update(item, w, colorOf);
    }
    for (const [key, v] of this.items) {
      if (keep.has(key)) continue;
      this.lastSeen.set(v.ident, { x: v.x, y: v.y, node: v.node, at: now });
      this.retire(this.items, key, v);
    }
    for (const [ident, s] of this.lastSeen) if (now - s.at > REMEMBER_MS) this.lastSeen.delete(ident);
  }

  /** The resource groups' names, keyed like everything else so they slide when a band grows. */
  drawLabels(labels) {
    const keep = new Set();
    for (const l of labels) {
      keep.add(l.name);
      let v = this.labels.get(l.name);
      if (!v) {
        const g = el("g", { class: "rg gone", "data-group": l.name }, this.nodeLayer);
        el("text", { x: 0, y: 13 }, g, l.name);
        move(g, 0, l.y);
        g.getBoundingClientRect();
        v = { el: g };
        this.labels.set(l.name, v);
      }
      v.el.setAttribute("class", "rg");
      move(v.el, 0, l.y);
    }
    for (const [name, v] of this.labels) if (!keep.has(name)) this.retire(this.labels, name, v);
  }

  drawNode(b, maxMem) {
    const n = b.n;
    let v = this.nodes.get(n.nodeId);
    if (!v) {
      const g = el("g", { class: "node gone", "data-node": n.nodeId, "data-testid": `node-${n.nodeId}` }, this.nodeLayer);
      move(g, b.x, b.y);
      v = {
        el: g,
        box: el("rect", { class: "box", x: 0, y: 0 }, g),
        title: el("text", { x: PAD, y: 18 }, g),
        sub: el("text", { class: "sub", x: PAD, y: 33 }, g),
        mem: el("rect", { class: "mem", x: PAD, height: 4 }, g),
        memfill: el("rect", { class: "memfill", x: PAD, height: 4 }, g),
        tip: el("title", {}, g),
      };
      this.nodes.set(n.nodeId, v);
      // a new box starts at its size and fades in
      for (const r of [v.box, v.mem]) r.style.transition = "none";
      v.box.style.width = `${b.w}px`;
      v.box.style.height = `${b.h}px`;
      v.mem.style.width = `${b.w - 2 * PAD}px`;
      v.box.getBoundingClientRect();
      for (const r of [v.box, v.mem]) r.style.transition = "";
    }
    v.el.setAttribute("class", `node ${n.state}`);
    move(v.el, b.x, b.y);
    v.box.style.width = `${b.w}px`;
    v.box.style.height = `${b.h}px`;
    v.title.textContent = `${n.nodeId} · ${n.state === "up" ? "up" : n.state.toUpperCase()}`;
    const mib = (x) => (x / 1048576).toFixed(1);
    v.sub.textContent = `${n.rows.toLocaleString()} rows · ${n.segments} seg · ${mib(n.memoryBytes)} MiB`;
    const barW = b.w - 2 * PAD;
    for (const r of [v.mem, v.memfill]) r.setAttribute("y", "38");
    v.mem.style.width = `${barW}px`;
    v.memfill.style.width = `${Math.max(0, Math.min(1, n.memoryLimitBytes > 0 ? n.memoryBytes / n.memoryLimitBytes : 0)) * barW}px`;
    v.tip.textContent = `${n.nodeId}: ${n.state}, memory ${mib(n.memoryBytes)} of ${mib(n.memoryLimitBytes)} MiB, ${n.delegators} delegators, ${n.segments} segments`;
    v.x = b.x;
    v.y = b.y;
  }

  create(w, from) {
    const g = el("g", { class: w.kind, "data-key": `${w.ident}@${w.node}`, "data-node": w.node }, this.itemLayer);
    if (w.kind === "seg") {
      g.setAttribute("data-segment", String(w.data.segmentId));
      el("rect", { x: 0, y: 0, rx: 2 }, g);
    } else {
      el("path", { d: "M0,-7 L7,0 L0,7 L-7,0 Z" }, g);
    }
    el("title", {}, g);
    if (from) {
      // start at the other copy's place, then travel (the transition runs on the next style change)
      g.dataset.from = from.node;
      g.style.transition = "none";
      move(g, from.x, from.y);
      g.getBoundingClientRect();
      g.style.transition = "";
    } else {
      g.classList.add("gone");
      move(g, w.x, w.y);
      g.getBoundingClientRect();
    }
    return { el: g, ident: w.ident, kind: w.kind, node: w.node, x: w.x, y: w.y };
  }

  update(item, w, colorOf) {
    const g = item.el;
    const color = colorOf(w.kind === "dlg" ? w.data.collectionId : w.data.collectionId ?? w.collectionId);
    if (w.kind === "seg") {
      const cls = ["seg", w.state].filter(Boolean).join(" ");
      g.setAttribute("class", cls);
      const r = g.querySelector("rect");
      const off = (CELL - 4 - w.side) / 2;
      r.setAttribute("x", String(off));
      r.setAttribute("y", String(off));
      r.setAttribute("width", String(w.side));
      r.setAttribute("height", String(w.side));
      if (color) {
        r.style.fill = color;
        r.style.stroke = color;
      }
      const s = w.data;
      g.querySelector("title").textContent =
        w.state === "loading" || w.state === "failed"
          ? `segment ${s.segmentId}: ${w.state}${s.reason ? ` (${s.reason})` : ""}`
          : `segment ${s.segmentId} · collection ${s.collectionId} · ${s.vchannel} · ${s.rows.toLocaleString()} rows · ${(s.memoryBytes / 1048576).toFixed(2)} MiB · ${s.indexIds.length ? `index ${s.indexIds.join(",")}` : "no index loaded"}`;
    } else {
      const d = w.data;
      g.setAttribute("class", `dlg ${d.serviceable ? "serviceable" : "unserviceable"}`);
      g.setAttribute("data-vchannel", d.vchannel);
      const p = g.querySelector("path");
      if (color) p.style.fill = color;
      g.querySelector("title").textContent = `delegator of ${d.vchannel}, replica ${d.replicaId}: ${d.serviceable ? "serviceable" : "not serviceable"}, target version ${d.targetVersion}, tSafe ${d.tSafe}`;
    }
    move(g, w.x, w.y);
    item.x = w.x;
    item.y = w.y;
  }

  retire(map, key, v) {
    map.delete(key);
    v.el.classList.add("gone");
    setTimeout(() => v.el.remove(), 700);
  }
}

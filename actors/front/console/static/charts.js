// Small line charts in plain SVG: a few series of [time, value] points over the last minutes, the
// newest value and the range written beside them.

import { svgEl } from "./html.js";

const W = 300;
const H = 110;
const LEFT = 6;
const RIGHT = 6;
const TOP = 14;
const BOTTOM = 14;

/** Keeps the last `size` samples of named series. */
export class History {
  constructor(size = 150) {
    this.size = size;
    this.series = new Map();
  }
  add(name, t, v) {
    if (v === undefined || v === null || !Number.isFinite(v)) return;
    let s = this.series.get(name);
    if (!s) this.series.set(name, (s = []));
    s.push([t, v]);
    if (s.length > this.size) s.shift();
  }
  /** drops series not named in `names` (a node that went away) */
  keepOnly(names) {
    for (const k of [...this.series.keys()]) if (!names.has(k)) this.series.delete(k);
  }
}

const fmt = (v) => (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString() : v >= 10 ? v.toFixed(0) : v.toFixed(v === 0 ? 0 : 2));

/**
 * Draws `history` into `svg` over the time range `[t0, t1]` (every chart of the page shares one, so
 * their x axes line up); `colorOf(name)` colours each series; `empty` is said when there is no data.
 */
export function drawChart(svg, history, colorOf, [t0, t1], empty = "no data yet") {
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  while (svg.firstChild) svg.firstChild.remove();
  const add = (name, attrs, text) => svgEl(name, attrs, svg, text);
  const all = [...history.series.values()].flat();
  if (all.length === 0) {
    add("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, empty);
    return;
  }
  if (t1 <= t0) t0 = t1 - 1;
  const vmax = Math.max(...all.map((p) => p[1]), 1e-9);
  const x = (t) => LEFT + ((t - t0) / (t1 - t0)) * (W - LEFT - RIGHT);
  const y = (v) => H - BOTTOM - (v / vmax) * (H - TOP - BOTTOM);
  add("line", { class: "axis", x1: LEFT, x2: W - RIGHT, y1: H - BOTTOM, y2: H - BOTTOM });
  add("text", { x: LEFT, y: 10 }, `max ${fmt(vmax)}`);
  add("text", { x: W - RIGHT, y: H - 2, "text-anchor": "end" }, `${Math.round((t1 - t0) / 1000)} s`);
  let i = 0;
  for (const [name, pts] of history.series) {
    const color = colorOf(name, i++);
    add("polyline", { points: pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" "), stroke: color, "data-series": name });
    const last = pts[pts.length - 1];
    add("circle", { cx: x(last[0]).toFixed(1), cy: y(last[1]).toFixed(1), r: 2.5, fill: color }); // the newest value, seen even alone
    add("text", { x: W - RIGHT, y: 10 + 11 * (i - 1), "text-anchor": "end", style: `fill: ${color}` }, `${name} ${fmt(last[1])}`);
  }
}

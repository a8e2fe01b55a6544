// Small DOM helpers shared by the console's modules: HTML text, progress bars, SVG elements.

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** `value` as HTML text (safe inside elements and quoted attributes). */
export const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => ESC[c]);

/** A progress bar and its percentage. */
export const bar = (pct, { warn = false, testid } = {}) =>
  `<span class="bar${warn ? " warn" : ""}"><span style="width:${Math.max(0, Math.min(100, pct))}%"></span></span><span${testid ? ` data-testid="${esc(testid)}"` : ""}>${Math.round(pct)} %</span>`;

export const mib = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`;

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element with attributes (and text), appended to `parent` when given. */
export function svgEl(name, attrs = {}, parent, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

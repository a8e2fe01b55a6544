/**
 * `like` patterns: `%` matches any run of characters, `_` exactly one, `\%` `\_` `\\` themselves.
 * Common shapes become plain string tests (equality, prefix, suffix, substring); the rest a RegExp.
 */

type Piece = { wild: "%" | "_" } | { text: string };

function pieces(pattern: string): Piece[] {
  const out: Piece[] = [];
  let text = "";
  const flush = () => {
    if (text) out.push({ text });
    text = "";
  };
  const chars = Array.from(pattern); // code points, so `_` is one character even outside the BMP
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === "\\" && i + 1 < chars.length) {
      text += chars[++i];
    } else if (c === "%" || c === "_") {
      flush();
      // a run of % is one %
      if (!(c === "%" && out.length > 0 && "wild" in out[out.length - 1]! && (out[out.length - 1] as { wild: string }).wild === "%")) {
        out.push({ wild: c });
      }
    } else {
      text += c;
    }
  }
  flush();
  return out;
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

export function likeMatcher(pattern: string): (s: string) => boolean {
  const ps = pieces(pattern);
  const text = (p: Piece | undefined): string | undefined => (p && "text" in p ? p.text : undefined);
  const isAny = (p: Piece | undefined): boolean => p !== undefined && "wild" in p && p.wild === "%";
  if (ps.length === 0) return (s) => s === "";
  if (ps.length === 1) {
    const t = text(ps[0]);
    if (t !== undefined) return (s) => s === t;
    if (isAny(ps[0])) return () => true;
  }
  if (ps.length === 2) {
    const [a, b] = ps;
    const ta = text(a);
    const tb = text(b);
    if (ta !== undefined && isAny(b)) return (s) => s.startsWith(ta);
    if (isAny(a) && tb !== undefined) return (s) => s.endsWith(tb);
  }
  if (ps.length === 3 && isAny(ps[0]) && isAny(ps[2])) {
    const t = text(ps[1]);
    if (t !== undefined) return (s) => s.includes(t);
  }
  const source = ps.map((p) => ("text" in p ? escapeRegExp(p.text) : p.wild === "%" ? "[\\s\\S]*" : "[\\s\\S]")).join("");
  const re = new RegExp(`^${source}$`, "u");
  return (s) => re.test(s);
}

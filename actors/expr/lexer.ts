/**
 * The lexer of filter expressions: Milvus's tokens (planparserv2 Plan.g4) with keywords in any case.
 * Integers stay exact as bigint; strings are unescaped here, except that an unknown escape such as `\%`
 * keeps its backslash so `like` can read it as "a literal %".
 */
import { filterError } from "./errors.ts";

export type TokenKind = "int" | "float" | "string" | "bool" | "ident" | "keyword" | "punct" | "eof";

/** Words that are keywords in any case (`AND`, `Or`, `not`, `IN`, `Like`, `is`, `null`, `exists`). */
export const KEYWORDS = new Set(["and", "or", "not", "in", "like", "is", "null", "exists"]);

export interface Token {
  kind: TokenKind;
  /** the source text of the token (lower-cased for keywords) */
  text: string;
  /** 0-based character offset in the expression */
  pos: number;
  /** int: bigint; float: number; string: the unescaped text; bool: boolean */
  value?: bigint | number | string | boolean;
}

// longest first, so "**" wins over "*" and "<=" over "<"
const PUNCTUATION = [
  "**", "<=", ">=", "==", "!=", "&&", "||", "<<", ">>",
  "(", ")", "[", "]", "{", "}", ",", "<", ">", "+", "-", "*", "/", "%", "!", "~", "&", "|", "^",
];

const isDigit = (c: string): boolean => c >= "0" && c <= "9";
const isIdentStart = (c: string): boolean => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_";
const isIdentPart = (c: string): boolean => isIdentStart(c) || isDigit(c);

export function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    const start = i;
    // raw strings r"..." / R'...': backslashes are kept as written
    if ((c === "r" || c === "R") && (src[i + 1] === '"' || src[i + 1] === "'")) {
      const [value, end] = readString(src, i + 1, true);
      tokens.push({ kind: "string", text: src.slice(start, end), pos: start, value });
      i = end;
      continue;
    }
    if (isIdentStart(c) || (c === "$" && src.startsWith("$meta", i) && !isIdentPart(src[i + 5] ?? ""))) {
      i += c === "$" ? 5 : 1;
      while (i < n && isIdentPart(src[i]!)) i++;
      const text = src.slice(start, i);
      const lower = text.toLowerCase();
      if (lower === "true" || lower === "false") tokens.push({ kind: "bool", text, pos: start, value: lower === "true" });
      else if (KEYWORDS.has(lower)) tokens.push({ kind: "keyword", text: lower, pos: start });
      else tokens.push({ kind: "ident", text, pos: start });
      continue;
    }
    if (isDigit(c) || (c === "." && isDigit(src[i + 1] ?? ""))) {
      const tok = readNumber(src, i);
      tokens.push(tok);
      i = tok.pos + tok.text.length;
      continue;
    }
    if (c === '"' || c === "'") {
      const [value, end] = readString(src, i, false);
      tokens.push({ kind: "string", text: src.slice(start, end), pos: start, value });
      i = end;
      continue;
    }
    const p = PUNCTUATION.find((q) => src.startsWith(q, i));
    if (p === undefined) throw filterError(i, `unexpected character ${JSON.stringify(c)}`);
    tokens.push({ kind: "punct", text: p, pos: start });
    i += p.length;
  }
  tokens.push({ kind: "eof", text: "", pos: n });
  return tokens;
}

function readNumber(src: string, start: number): Token {
  let i = start;
  const n = src.length;
  const digitsOf = (ok: (c: string) => boolean): void => {
    while (i < n && ok(src[i]!)) i++;
  };
  const radix = src[i] === "0" ? (src[i + 1] ?? "").toLowerCase() : "";
  if (radix === "x" || radix === "b" || radix === "o") {
    i += 2;
    const ok =
      radix === "x" ? (c: string) => /[0-9a-fA-F]/.test(c) : radix === "b" ? (c: string) => c === "0" || c === "1" : (c: string) => c >= "0" && c <= "7";
    const bodyStart = i;
    digitsOf(ok);
    if (i === bodyStart) throw filterError(start, `malformed number ${JSON.stringify(src.slice(start, i))}`);
    if (i < n && isIdentPart(src[i]!)) throw filterError(start, `malformed number ${JSON.stringify(src.slice(start, i + 1))}`);
    const text = src.slice(start, i);
    return { kind: "int", text, pos: start, value: BigInt(text.toLowerCase()) };
  }
  digitsOf(isDigit);
  let isFloat = false;
  if (src[i] === ".") {
    isFloat = true;
    i++;
    digitsOf(isDigit);
  }
  if (src[i] === "e" || src[i] === "E") {
    const save = i;
    i++;
    if (src[i] === "+" || src[i] === "-") i++;
    const expStart = i;
    digitsOf(isDigit);
    if (i === expStart) i = save;
    else isFloat = true;
  }
  if (i < n && isIdentPart(src[i]!)) throw filterError(start, `malformed number ${JSON.stringify(src.slice(start, i + 1))}`);
  const text = src.slice(start, i);
  if (isFloat) {
    const v = Number(text);
    return { kind: "float", text, pos: start, value: v === 0 ? 0 : v };
  }
  // a leading 0 means octal, as in Milvus (and C): 010 is 8
  if (text.length > 1 && text[0] === "0") {
    if (!/^[0-7]+$/.test(text)) throw filterError(start, `malformed octal number ${text} (a leading 0 means octal)`);
    return { kind: "int", text, pos: start, value: BigInt("0o" + text.slice(1)) };
  }
  return { kind: "int", text, pos: start, value: BigInt(text) };
}

const SIMPLE_ESCAPES: Record<string, string> = {
  n: "\n", t: "\t", r: "\r", b: "\b", f: "\f", v: "\v", a: "\x07", "\\": "\\", '"': '"', "'": "'", "?": "?",
};

/** Reads a quoted string starting at the quote; returns its value and the offset after the closing quote. */
function readString(src: string, start: number, raw: boolean): [string, number] {
  const quote = src[start]!;
  let i = start + 1;
  let out = "";
  while (i < src.length) {
    const c = src[i]!;
    if (c === quote) return [out, i + 1];
    if (c === "\n" || c === "\r") break;
    if (c !== "\\") {
      out += c;
      i++;
      continue;
    }
    const e = src[i + 1];
    if (e === undefined) break;
    if (raw) {
      out += c + e;
      i += 2;
      continue;
    }
    if (e in SIMPLE_ESCAPES) {
      out += SIMPLE_ESCAPES[e];
      i += 2;
    } else if (e === "x" || e === "u" || e === "U") {
      const len = e === "x" ? 2 : e === "u" ? 4 : 8;
      const hex = src.slice(i + 2, i + 2 + len);
      if (hex.length !== len || !/^[0-9a-fA-F]+$/.test(hex)) throw filterError(i, `malformed escape \\${e}${hex} in a string`);
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff) throw filterError(i, `escape \\${e}${hex} is not a Unicode code point`);
      out += String.fromCodePoint(cp);
      i += 2 + len;
    } else if (e >= "0" && e <= "7") {
      let j = i + 1;
      while (j < i + 4 && src[j]! >= "0" && src[j]! <= "7") j++;
      out += String.fromCharCode(parseInt(src.slice(i + 1, j), 8));
      i = j;
    } else {
      // unknown escapes keep the backslash: like reads "\%" and "\_" as literal % and _
      out += c + e;
      i += 2;
    }
  }
  throw filterError(start, "unterminated string");
}

/**
 * The parse tree: what the filter says, before names are resolved against a schema. Every node keeps
 * the offset where it starts so type errors can point at it.
 */

export type CompareOp = "==" | "!=" | "<" | "<=" | ">" | ">=";
export type ArithOp = "+" | "-" | "*" | "/" | "%" | "**";

export type Syntax =
  | { t: "int"; value: bigint; pos: number }
  | { t: "float"; value: number; pos: number }
  | { t: "string"; value: string; pos: number }
  | { t: "bool"; value: boolean; pos: number }
  | { t: "list"; items: Syntax[]; pos: number }
  /** a template parameter `{name}` */
  | { t: "param"; name: string; pos: number }
  | { t: "ident"; name: string; pos: number }
  /** `base[key]`: a JSON path step or an array element */
  | { t: "index"; base: Syntax; key: string | number; pos: number }
  | { t: "call"; name: string; args: Syntax[]; pos: number }
  | { t: "neg"; arg: Syntax; pos: number }
  | { t: "arith"; op: ArithOp; left: Syntax; right: Syntax; pos: number }
  /** one comparison (`a < 3`) or a chained range (`1 < a <= 5`): operands.length === ops.length + 1 */
  | { t: "compare"; ops: CompareOp[]; operands: Syntax[]; pos: number }
  | { t: "in"; negated: boolean; value: Syntax; list: Syntax; pos: number }
  | { t: "like"; value: Syntax; pattern: Syntax; pos: number }
  | { t: "isNull"; negated: boolean; value: Syntax; pos: number }
  | { t: "exists"; value: Syntax; pos: number }
  | { t: "not"; arg: Syntax; pos: number }
  | { t: "and" | "or"; left: Syntax; right: Syntax; pos: number };

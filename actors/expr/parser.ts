/**
 * A recursive-descent parser for Milvus filter expressions. Precedence, loosest first:
 *   or (`or`, `||`)  <  and (`and`, `&&`)  <  not (`not`, `!`)  <
 *   comparisons, chained ranges, `in` / `not in`, `like`, `is [not] null`  <
 *   `+ -`  <  `* / %`  <  unary minus  <  `**` (right-associative)  <  `x[...]`, calls, literals, `( )`.
 * `not` sits below the comparisons so `not a > 3` reads as `not (a > 3)`.
 */
import { filterError } from "./errors.ts";
import { tokenize, type Token } from "./lexer.ts";
import type { ArithOp, CompareOp, Syntax } from "./syntax.ts";

const COMPARE_OPS = new Set<string>(["==", "!=", "<", "<=", ">", ">="]);
const BITWISE_OPS = new Set<string>(["&", "|", "^", "<<", ">>", "~"]);

/** Parses a non-empty filter; throws 1100 with the offset of the first problem. */
export function parseFilter(src: string): Syntax {
  return new Parser(tokenize(src)).parseAll();
}

function describe(tok: Token): string {
  if (tok.kind === "eof") return "the end of the filter";
  return JSON.stringify(tok.text);
}

class Parser {
  private i = 0;

  constructor(private readonly tokens: Token[]) {}

  private peek(ahead = 0): Token {
    return this.tokens[Math.min(this.i + ahead, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== "eof") this.i++;
    return t;
  }

  private isPunct(text: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === "punct" && t.text === text;
  }

  private isKeyword(text: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === "keyword" && t.text === text;
  }

  private expectPunct(text: string, context: string): Token {
    const t = this.peek();
    if (t.kind === "punct" && t.text === text) return this.next();
    throw filterError(t.pos, `expected "${text}" ${context}, got ${describe(t)}`);
  }

  parseAll(): Syntax {
    const root = this.parseOr();
    const t = this.peek();
    if (t.kind !== "eof") {
      if (t.kind === "punct" && BITWISE_OPS.has(t.text)) {
        throw filterError(t.pos, `bitwise operator "${t.text}" is not supported`);
      }
      if (t.kind === "punct" && t.text === ")") throw filterError(t.pos, 'unmatched ")"');
      throw filterError(t.pos, `unexpected ${describe(t)}: expected an operator such as and, or, ==, <`);
    }
    return root;
  }

  private parseOr(): Syntax {
    let left = this.parseAnd();
    while (this.isKeyword("or") || this.isPunct("||")) {
      this.next();
      left = { t: "or", left, right: this.parseAnd(), pos: left.pos };
    }
    return left;
  }

  private parseAnd(): Syntax {
    let left = this.parseNot();
    while (this.isKeyword("and") || this.isPunct("&&")) {
      this.next();
      left = { t: "and", left, right: this.parseNot(), pos: left.pos };
    }
    return left;
  }

  private parseNot(): Syntax {
    if (this.isKeyword("not") || this.isPunct("!")) {
      const t = this.next();
      return { t: "not", arg: this.parseNot(), pos: t.pos };
    }
    return this.parseComparison();
  }

  private parseComparison(): Syntax {
    const first = this.parseAdditive();
    const t = this.peek();
    if (this.isKeyword("is")) {
      this.next();
      const negated = this.isKeyword("not");
      if (negated) this.next();
      const n = this.peek();
      if (!(n.kind === "keyword" && n.text === "null")) {
        throw filterError(n.pos, `expected "null" after "is${negated ? " not" : ""}", got ${describe(n)}`);
      }
      this.next();
      return { t: "isNull", negated, value: first, pos: first.pos };
    }
    if (this.isKeyword("in") || (this.isKeyword("not") && this.isKeyword("in", 1))) {
      const negated = this.isKeyword("not");
      if (negated) this.next();
      this.next();
      const list = this.parseOperand(negated ? "not in" : "in");
      return { t: "in", negated, value: first, list, pos: first.pos };
    }
    if (this.isKeyword("like")) {
      this.next();
      const pattern = this.parseOperand("like");
      return { t: "like", value: first, pattern, pos: first.pos };
    }
    if (t.kind !== "punct" || !COMPARE_OPS.has(t.text)) return first;
    const ops: CompareOp[] = [];
    const operands: Syntax[] = [first];
    while (this.peek().kind === "punct" && COMPARE_OPS.has(this.peek().text)) {
      const op = this.next();
      if (ops.length === 2) throw filterError(op.pos, `at most two comparisons can be chained (a range such as 1 < a < 5)`);
      ops.push(op.text as CompareOp);
      operands.push(this.parseOperand(op.text));
    }
    if (ops.length === 2) {
      const up = (o: CompareOp) => o === "<" || o === "<=";
      const down = (o: CompareOp) => o === ">" || o === ">=";
      if (!((up(ops[0]!) && up(ops[1]!)) || (down(ops[0]!) && down(ops[1]!)))) {
        throw filterError(
          first.pos,
          `a chained range needs both bounds in the same direction (< and <=, or > and >=), got "${ops[0]}" then "${ops[1]}"`,
        );
      }
    }
    return { t: "compare", ops, operands, pos: first.pos };
  }

  /** The operand after a binary operator: an additive expression, with a clear error when there is none. */
  private parseOperand(after: string): Syntax {
    const t = this.peek();
    if (!this.startsValue()) {
      throw filterError(t.pos, `expected a value after "${after}", got ${describe(t)}`);
    }
    return this.parseAdditive();
  }

  private startsValue(): boolean {
    const t = this.peek();
    switch (t.kind) {
      case "int":
      case "float":
      case "string":
      case "bool":
      case "ident":
        return true;
      case "keyword":
        return t.text === "exists";
      case "punct":
        return ["(", "[", "{", "-", "+"].includes(t.text);
      default:
        return false;
    }
  }

  private parseAdditive(): Syntax {
    let left = this.parseMultiplicative();
    while (this.isPunct("+") || this.isPunct("-")) {
      const op = this.next().text as ArithOp;
      left = { t: "arith", op, left, right: this.parseOperandAt(op, () => this.parseMultiplicative()), pos: left.pos };
    }
    return left;
  }

  private parseMultiplicative(): Syntax {
    let left = this.parseUnary();
    while (this.isPunct("*") || this.isPunct("/") || this.isPunct("%")) {
      const op = this.next().text as ArithOp;
      left = { t: "arith", op, left, right: this.parseOperandAt(op, () => this.parseUnary()), pos: left.pos };
    }
    return left;
  }

  private parseOperandAt(after: string, parse: () => Syntax): Syntax {
    if (!this.startsValue()) throw filterError(this.peek().pos, `expected a value after "${after}", got ${describe(this.peek())}`);
    return parse();
  }

  private parseUnary(): Syntax {
    if (this.isPunct("-") || this.isPunct("+")) {
      const t = this.next();
      const arg = this.parseOperandAt(t.text, () => this.parseUnary());
      return t.text === "-" ? { t: "neg", arg, pos: t.pos } : arg;
    }
    return this.parsePower();
  }

  private parsePower(): Syntax {
    const base = this.parsePostfix();
    if (this.isPunct("**")) {
      this.next();
      // right-associative, and the exponent may carry its own sign: 2 ** -1
      const exponent = this.parseOperandAt("**", () => this.parseUnary());
      return { t: "arith", op: "**", left: base, right: exponent, pos: base.pos };
    }
    return base;
  }

  private parsePostfix(): Syntax {
    let node = this.parsePrimary();
    while (this.isPunct("[")) {
      const open = this.next();
      const k = this.next();
      let key: string | number;
      if (k.kind === "string") key = k.value as string;
      else if (k.kind === "int") {
        const v = k.value as bigint;
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw filterError(k.pos, `index ${v} is too large`);
        key = Number(v);
      } else {
        throw filterError(k.pos, `expected a string key or a non-negative integer index after "[", got ${describe(k)}`);
      }
      this.expectPunct("]", `to close the "[" at ${open.pos}`);
      node = { t: "index", base: node, key, pos: node.pos };
    }
    return node;
  }

  private parsePrimary(): Syntax {
    const t = this.peek();
    switch (t.kind) {
      case "int":
        this.next();
        return { t: "int", value: t.value as bigint, pos: t.pos };
      case "float":
        this.next();
        return { t: "float", value: t.value as number, pos: t.pos };
      case "string":
        this.next();
        return { t: "string", value: t.value as string, pos: t.pos };
      case "bool":
        this.next();
        return { t: "bool", value: t.value as boolean, pos: t.pos };
      case "ident": {
        this.next();
        if (this.isPunct("(")) return this.parseCall(t);
        return { t: "ident", name: t.text, pos: t.pos };
      }
      case "keyword":
        if (t.text === "exists") {
          this.next();
          const value = this.parseOperandAt("exists", () => this.parsePostfix());
          return { t: "exists", value, pos: t.pos };
        }
        break;
      case "punct":
        if (t.text === "(") {
          this.next();
          if (this.isPunct(")")) throw filterError(this.peek().pos, 'expected an expression inside "( )"');
          const inner = this.parseOr();
          this.expectPunct(")", `to close the "(" at ${t.pos}`);
          return inner;
        }
        if (t.text === "[") return this.parseList();
        if (t.text === "{") {
          this.next();
          const name = this.next();
          if (name.kind !== "ident") throw filterError(name.pos, `expected a template parameter name after "{", got ${describe(name)}`);
          this.expectPunct("}", `to close the template parameter {${name.text}`);
          return { t: "param", name: name.text, pos: t.pos };
        }
        break;
      default:
        break;
    }
    const prev = this.i > 0 ? this.tokens[this.i - 1] : undefined;
    if (prev) throw filterError(t.pos, `expected a value after ${describe(prev)}, got ${describe(t)}`);
    throw filterError(t.pos, `expected a value, got ${describe(t)}`);
  }

  private parseList(): Syntax {
    const open = this.next();
    const items: Syntax[] = [];
    while (!this.isPunct("]")) {
      if (!this.startsValue()) {
        throw filterError(this.peek().pos, `expected a list element or "]" in the list at ${open.pos}, got ${describe(this.peek())}`);
      }
      items.push(this.parseAdditive());
      if (this.isPunct(",")) {
        this.next();
        continue;
      }
      if (!this.isPunct("]")) {
        throw filterError(this.peek().pos, `expected "," or "]" in the list at ${open.pos}, got ${describe(this.peek())}`);
      }
    }
    this.next();
    return { t: "list", items, pos: open.pos };
  }

  private parseCall(name: Token): Syntax {
    const open = this.next();
    const args: Syntax[] = [];
    while (!this.isPunct(")")) {
      if (!this.startsValue()) {
        throw filterError(this.peek().pos, `expected an argument or ")" in the call of ${name.text}, got ${describe(this.peek())}`);
      }
      args.push(this.parseOr());
      if (this.isPunct(",")) {
        this.next();
        continue;
      }
      if (!this.isPunct(")")) {
        throw filterError(this.peek().pos, `expected "," or ")" in the call of ${name.text} at ${open.pos}, got ${describe(this.peek())}`);
      }
    }
    this.next();
    return { t: "call", name: name.text, args, pos: name.pos };
  }
}

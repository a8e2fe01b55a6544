/**
 * Milvus boolean filter expressions (`age > 3 and title like "a%"`), shared by the proxy and the
 * segments: the proxy compiles a filter once per request (`compileFilter`) and sends the plan — plain
 * data, msgpack-safe — to querynodes, which load the columns `filterFieldIds` names and run
 * `evaluateFilter` over them.
 *
 * Semantics (Milvus's, where Milvus has one):
 * - An empty (or whitespace-only) filter means "no filter": `compileFilter` returns a plan that passes
 *   every row without reading a column (`passesAll(plan)` is true, `filterFieldIds(plan)` is empty).
 * - Nulls: three-valued logic. Any comparison, `in`, `like` or contains on a null value is unknown (so
 *   `x != 3` drops null rows too); `not unknown` is unknown; `false and unknown` is false, `true or
 *   unknown` true; a row passes only when the filter is true. `is null` / `is not null` are never unknown.
 * - JSON values compare when their type matches the literal (a JSON number with a number, a string with
 *   a string, a boolean with a boolean); otherwise — another type, JSON null, a missing key — every
 *   comparison is false except `!=`, which is true (Milvus's rule). `is null` on a path is true for a
 *   null row, a missing key or a JSON null. JSON arithmetic is over doubles.
 * - An array element past the end (`tags[5]`) fails every comparison, `!=` included (Milvus).
 * - Float fields compare with the literal rounded to float32, so `price == 1.1` finds a stored 1.1;
 *   Int64 compares as bigint, exact beyond 2^53; integer arithmetic truncates `/` toward zero.
 * - Keywords and function names are case-insensitive; an integer with a leading 0 is octal (`010` is 8),
 *   as in Milvus; error positions are 0-based character offsets.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { parseFilter } from "./parser.ts";
import { passAllPlan, type FilterPlan } from "./plan.ts";
import { Checker } from "./typecheck.ts";

export { evaluateFilter } from "./evaluate.ts";
export { filterFieldIds, passAllPlan, passesAll, PLAN_VERSION } from "./plan.ts";
export type {
  ArithValue,
  ArrayValue,
  ColumnValue,
  CompareOp,
  ArithOp,
  ElementValue,
  FieldValue,
  FilterPlan,
  JsonValue,
  LengthValue,
  Literal,
  LiteralValue,
  Predicate,
  ScalarType,
  Value,
} from "./plan.ts";

/**
 * Parses `expr`, resolves its names against `schema`, substitutes `{name}` template parameters from
 * `params` and type-checks it. Throws VbError 1100 naming the offset and the problem.
 */
export function compileFilter(expr: string, schema: CollectionSchema, params?: Record<string, unknown>): FilterPlan {
  if (typeof expr !== "string") {
    throw new VbError(ErrorCode.ParameterInvalid, `invalid filter: expected a string expression, got ${typeof expr}`);
  }
  if (expr.trim() === "") return passAllPlan();
  return new Checker(schema, params).plan(parseFilter(expr));
}

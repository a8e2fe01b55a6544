/**
 * The one error a filter expression gets: 1100 (ParameterInvalid) with the character offset where the
 * problem starts (0-based), so a client can point at it.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";

export function filterError(pos: number, message: string): VbError {
  return new VbError(ErrorCode.ParameterInvalid, `invalid filter at ${pos}: ${message}`);
}

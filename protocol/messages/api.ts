/**
 * A message API is a map from verb to [request body, reply body]; the message type on the wire is
 * `<kind>.<Verb>` (`rootcoord.CreateCollection`). Actors and typed clients share these maps.
 */
export type ApiMap = Record<string, [unknown, unknown]>;
export type Req<A extends ApiMap, V extends keyof A> = A[V][0];
export type Res<A extends ApiMap, V extends keyof A> = A[V][1];

export function messageType(kind: string, verb: string): string {
  return `${kind}.${verb}`;
}

/**
 * Messages an actor sends only to itself (`ctx.self`, timers, the outcome of its own work). They carry a
 * `Local` body, which nothing that came over NATS can be (decoded bodies are plain objects), so a peer
 * that sends the same message type gets a 1100 instead of reaching the actor's internals.
 */
import { VbError } from "../../protocol/errors.ts";
import type { Message } from "../../runtime/actor.ts";

export class Local<T> {
  constructor(readonly value: T) {}
}

export function localBody<T>(msg: Message): T {
  if (!(msg.body instanceof Local)) throw VbError.invalid(`${msg.type} is internal to the actor and cannot be sent to it`);
  return (msg.body as Local<T>).value;
}

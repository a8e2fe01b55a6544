/**
 * One object for each of the values many records repeat (a collection or partition id, a channel name):
 * a million records decoded from messages would otherwise each hold copies of their own. Bounded: past
 * `max` distinct values, a new one is handed back as it is, not kept.
 */
export class Interner<T> {
  private readonly values = new Map<T, T>();

  constructor(private readonly max = 100_000) {}

  of(v: T): T {
    const x = this.values.get(v);
    if (x !== undefined) return x;
    if (this.values.size < this.max) this.values.set(v, v);
    return v;
  }
}

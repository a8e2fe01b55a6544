/**
 * A bounded heap that keeps the k best (key, row) pairs seen, where a smaller key is better and equal
 * keys go to the smaller row: the order every search result of Vectorbus is in. The root is the worst
 * pair kept, so a candidate is turned away with one comparison once the heap is full.
 */
export class TopKHeap {
  readonly capacity: number;
  private n = 0;
  private readonly keys: Float64Array;
  private readonly rows: Int32Array;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.keys = new Float64Array(capacity);
    this.rows = new Int32Array(capacity);
  }

  get size(): number {
    return this.n;
  }

  /**
   * The largest key that may still enter: +Infinity until the heap is full, then the worst key kept
   * (equal to it enters only with a smaller row, which `offer` decides).
   */
  get threshold(): number {
    return this.n < this.capacity ? Infinity : this.keys[0]!;
  }

  /** Offers a pair; returns the new threshold. */
  offer(key: number, row: number): number {
    const keys = this.keys;
    const rows = this.rows;
    if (this.n < this.capacity) {
      // sift up from the new leaf
      let i = this.n++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        const pk = keys[p]!;
        if (pk > key || (pk === key && rows[p]! > row)) break;
        keys[i] = pk;
        rows[i] = rows[p]!;
        i = p;
      }
      keys[i] = key;
      rows[i] = row;
      return this.n < this.capacity ? Infinity : keys[0]!;
    }
    if (this.capacity === 0) return -Infinity;
    const rk = keys[0]!;
    if (key > rk || (key === rk && row >= rows[0]!)) return rk;
    // replace the root and sift down
    this.siftDown(key, row, this.n);
    return keys[0]!;
  }

  /** Empties the heap into arrays sorted best first (by key, then row). */
  drain(): { keys: Float64Array; rows: Int32Array } {
    const n = this.n;
    const outKeys = new Float64Array(n);
    const outRows = new Int32Array(n);
    // heap sort: the root is the worst, so it goes to the back
    for (let last = n - 1; last >= 0; last--) {
      outKeys[last] = this.keys[0]!;
      outRows[last] = this.rows[0]!;
      this.popRoot(last);
    }
    this.n = 0;
    return { keys: outKeys, rows: outRows };
  }

  /** Moves the element at `last` to the root and restores the heap over [0, last). */
  private popRoot(last: number): void {
    if (last > 0) this.siftDown(this.keys[last]!, this.rows[last]!, last);
    this.n = last;
  }

  /** Puts (key, row) at the root of the heap over [0, n) and sifts it down to its place. */
  private siftDown(key: number, row: number, n: number): void {
    const keys = this.keys;
    const rows = this.rows;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      let c = l;
      const r = l + 1;
      if (r < n && (keys[r]! > keys[l]! || (keys[r] === keys[l] && rows[r]! > rows[l]!))) c = r;
      const ck = keys[c]!;
      if (ck < key || (ck === key && rows[c]! < row)) break;
      keys[i] = ck;
      rows[i] = rows[c]!;
      i = c;
    }
    keys[i] = key;
    rows[i] = row;
  }
}

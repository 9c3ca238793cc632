// The simulated hint book of hinted handoff: the logic of src/node/hints.ts (which keys each peer missed, by
// creation time on the device's wall clock, renewed on a new miss, bounded in number and age, forgotten once
// delivered as of a handover's start), synchronous, with a durable copy that a crash falls back to.
export interface SimHintOptions {
  readonly hintsMax: number;
  readonly hintTtlMs: number;
}

export class SimHintBook {
  /** peer -> key -> creation time (wall ms), in creation order: what the runtime holds in memory. */
  private readonly byPeer = new Map<string, Map<string, number>>();
  private total = 0;
  /** What survives a crash: the meta values `hint:<peer>:<key>` that were durable. */
  readonly durable = new Map<string, number>();
  readonly counters = { added: 0, delivered: 0, dropped: 0, expired: 0 };

  constructor(
    private readonly options: SimHintOptions,
    private readonly wallClockMs: () => number,
    /** Makes a staged change durable later, in order with the device's other writes. */
    private readonly persist: (apply: () => void) => void,
    durable?: ReadonlyMap<string, number>,
  ) {
    for (const [name, created] of [...(durable ?? [])].sort((a, b) => a[1] - b[1])) {
      const cut = name.indexOf('\n');
      this.durable.set(name, created);
      this.remember(name.slice(0, cut), name.slice(cut + 1), created);
    }
  }

  /** `peer` missed a write of `key`; an existing hint is renewed (moved to now). */
  add(peer: string, key: string): void {
    const existing = this.byPeer.get(peer);
    if (existing?.has(key) !== true && this.total >= this.options.hintsMax) {
      this.counters.dropped += 1;
      return;
    }
    const now = this.wallClockMs();
    if (existing?.has(key) === true) {
      existing.delete(key);
      this.total -= 1;
    }
    this.remember(peer, key, now);
    this.counters.added += 1;
    const name = `${peer}\n${key}`;
    this.persist(() => this.durable.set(name, now));
  }

  /** Drops hints past their age, for every peer. */
  expire(): void {
    const oldest = this.wallClockMs() - this.options.hintTtlMs;
    for (const [peer, keys] of this.byPeer) {
      const expired: string[] = [];
      for (const [key, created] of keys) {
        if (created >= oldest) break;
        expired.push(key);
      }
      if (expired.length > 0) {
        this.counters.expired += expired.length;
        this.forget(peer, expired);
      }
    }
  }

  peers(): string[] {
    return [...this.byPeer.keys()];
  }

  get size(): number {
    return this.total;
  }

  /** Up to `limit` keys waiting for `peer`, oldest first; hints past their age are dropped on the way. */
  take(peer: string, limit: number): string[] {
    const keys = this.byPeer.get(peer);
    if (keys === undefined) return [];
    const oldest = this.wallClockMs() - this.options.hintTtlMs;
    const out: string[] = [];
    const expired: string[] = [];
    for (const [key, created] of keys) {
      if (created < oldest) expired.push(key);
      else if (out.length < limit) out.push(key);
      else break;
    }
    if (expired.length > 0) {
      this.counters.expired += expired.length;
      this.forget(peer, expired);
    }
    return out;
  }

  /** `peer` holds these keys as of `sentAtMs`: their hints go, except those renewed since. Returns how many went. */
  delivered(peer: string, keys: readonly string[], sentAtMs: number): number {
    const book = this.byPeer.get(peer);
    const done = keys.filter((key) => (book?.get(key) ?? Infinity) < sentAtMs);
    this.counters.delivered += done.length;
    this.forget(peer, done);
    return done.length;
  }

  /** When the hint of `key` for `peer` was created (wall ms), if there is one. */
  createdAt(peer: string, key: string): number | undefined {
    return this.byPeer.get(peer)?.get(key);
  }

  dropPeer(peer: string): void {
    const keys = [...(this.byPeer.get(peer)?.keys() ?? [])];
    this.counters.dropped += keys.length;
    this.forget(peer, keys);
  }

  private remember(peer: string, key: string, created: number): void {
    let keys = this.byPeer.get(peer);
    if (keys === undefined) {
      keys = new Map();
      this.byPeer.set(peer, keys);
    }
    keys.set(key, created);
    this.total += 1;
  }

  private forget(peer: string, keys: readonly string[]): void {
    const book = this.byPeer.get(peer);
    if (book === undefined) return;
    for (const key of keys) {
      if (!book.delete(key)) continue;
      this.total -= 1;
      const name = `${peer}\n${key}`;
      this.persist(() => this.durable.delete(name));
    }
    if (book.size === 0) this.byPeer.delete(peer);
  }
}

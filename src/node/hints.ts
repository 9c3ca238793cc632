// The hint book of hinted handoff: which keys each peer missed (a write it did not acknowledge), kept durably
// as meta values `hint:<peer>:<key>` = creation time, bounded in number and in age. Delivery (the current
// record of each key, pushed over /quorumd/sync) is the anti-entropy core's; see src/core/anti-entropy.ts.
import { assert } from '../core/assert.js';
import { META_HINT_PREFIX } from '../storage/meta.js';
import type { StoragePort } from '../storage/port.js';

const PREFIX = META_HINT_PREFIX;

export interface HintBookOptions {
  /** Hints kept at most (all peers together); further misses are left to anti-entropy (counted as dropped). */
  readonly hintsMax: number;
  /** A hint older than this is dropped (anti-entropy repairs the key anyway). */
  readonly hintTtlMs: number;
}

export interface HintStats {
  readonly queued: number;
  readonly byPeer: Readonly<Record<string, number>>;
  readonly delivered: number;
  readonly dropped: number;
  readonly expired: number;
}

export class HintBook {
  private readonly store: StoragePort;
  private readonly opts: HintBookOptions;
  private readonly wallClockMs: () => number;
  /** peer -> key -> creation time (wall ms), in creation order. */
  private readonly byPeer = new Map<string, Map<string, number>>();
  private total = 0;
  /**
   * Order of the misses recorded in this run (hints loaded at start-up count as 0): a handover is confirmed
   * against it, not against the wall clock, which may step back between the send and a new miss.
   */
  private renewals = 0;
  private readonly renewedAt = new Map<string, number>();
  private readonly counters = { delivered: 0, dropped: 0, expired: 0 };

  constructor(store: StoragePort, options: HintBookOptions, wallClockMs: () => number) {
    assert(options.hintsMax >= 0 && options.hintTtlMs > 0, 'hint limits');
    this.store = store;
    this.opts = options;
    this.wallClockMs = wallClockMs;
    for (const name of store.metaNames(PREFIX)) {
      const rest = name.slice(PREFIX.length);
      const cut = rest.indexOf(':');
      const created = Number(store.getMeta(name));
      if (cut <= 0 || !Number.isFinite(created)) continue;
      this.remember(rest.slice(0, cut), rest.slice(cut + 1), created);
    }
  }

  /**
   * `peer` missed a write of `key`. An existing hint is renewed (moved to now), so a handover that started
   * before this miss does not clear it. Rejects only if the store fails.
   */
  add(peer: string, key: string): Promise<void> | undefined {
    const existing = this.byPeer.get(peer);
    if (existing?.has(key) !== true && this.total >= this.opts.hintsMax) {
      this.counters.dropped += 1;
      return undefined;
    }
    const now = this.wallClockMs();
    if (existing?.has(key) === true) {
      existing.delete(key); // re-inserted at the end: the map stays in creation order
      this.total -= 1;
    }
    this.remember(peer, key, now);
    this.renewals += 1;
    this.renewedAt.set(`${peer}\n${key}`, this.renewals);
    return this.store.setMeta(`${PREFIX}${peer}:${key}`, String(now));
  }

  /** Drops hints past their age for every peer, up or down (a member that stays away must not fill the book). */
  expire(): void {
    const oldest = this.wallClockMs() - this.opts.hintTtlMs;
    for (const [peer, keys] of this.byPeer) {
      const expired: string[] = [];
      for (const [key, created] of keys) {
        if (created >= oldest) break; // creation order
        expired.push(key);
      }
      if (expired.length > 0) {
        this.counters.expired += expired.length;
        void this.forget(peer, expired);
      }
    }
  }

  /** Peers with hints waiting. */
  peers(): string[] {
    return [...this.byPeer.keys()];
  }

  /** Up to `limit` keys waiting for `peer`, oldest first; hints past their age are dropped on the way. */
  take(peer: string, limit: number): string[] {
    const keys = this.byPeer.get(peer);
    if (keys === undefined) return [];
    const oldest = this.wallClockMs() - this.opts.hintTtlMs;
    const out: string[] = [];
    const expired: string[] = [];
    for (const [key, created] of keys) {
      if (created < oldest) expired.push(key);
      else if (out.length < limit) out.push(key);
      else break;
    }
    if (expired.length > 0) {
      this.counters.expired += expired.length;
      void this.forget(peer, expired);
    }
    return out;
  }

  /** A mark of the misses recorded so far: take it when a handover reads its records (see delivered). */
  mark(): number {
    return this.renewals;
  }

  /**
   * `peer` holds these keys' records as they were when `mark` was taken (handed over); hints renewed since (a
   * later miss) stay. Resolves when the others are durably gone.
   */
  delivered(peer: string, keys: readonly string[], mark: number): Promise<void> {
    const book = this.byPeer.get(peer);
    const done = keys.filter((key) => book?.has(key) === true && (this.renewedAt.get(`${peer}\n${key}`) ?? 0) <= mark);
    this.counters.delivered += done.length;
    return this.forget(peer, done);
  }

  /** Drops every hint for `peer` (it left the cluster). */
  dropPeer(peer: string): Promise<void> {
    const keys = [...(this.byPeer.get(peer)?.keys() ?? [])];
    this.counters.dropped += keys.length;
    return this.forget(peer, keys);
  }

  stats(): HintStats {
    const byPeer: Record<string, number> = {};
    for (const [peer, keys] of this.byPeer) byPeer[peer] = keys.size;
    return { queued: this.total, byPeer, ...this.counters };
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

  private async forget(peer: string, keys: readonly string[]): Promise<void> {
    const book = this.byPeer.get(peer);
    if (book === undefined) return;
    const writes: Array<Promise<void>> = [];
    for (const key of keys) {
      if (!book.delete(key)) continue;
      this.renewedAt.delete(`${peer}\n${key}`);
      this.total -= 1;
      writes.push(this.store.deleteMeta(`${PREFIX}${peer}:${key}`));
    }
    if (book.size === 0) this.byPeer.delete(peer);
    await Promise.all(writes);
  }
}

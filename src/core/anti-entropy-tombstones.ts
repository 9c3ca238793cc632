// Tombstones and their purge rules: which deletes wait for causal stability, when one may go (every current
// member is known to hold it, all observed at this replica's own epoch), and what purged keys are remembered so
// a purged delete's superseded versions never come back (merge). Anti-entropy's initiator and responder use it.
import { assert } from './assert.js';
import { type Hash64, entryHash, hashesEqual } from './digest.js';
import { PURGED_REMEMBERED_MAX, type SyncAction, type SyncLocal } from './anti-entropy-messages.js';
import { type MembershipConfig, isMember, replicaIds } from './membership.js';
import { type VersionedRecord, isDeleted, mergeRecords, recordsEqual } from './record.js';
import { type VersionVector, covers } from './vv.js';

/** How far `peer` is known to hold what is held here, by matches made at `epoch` (see Initiator.heldUpTo). */
export type HeldUpTo = (peer: string, epoch: number) => number;

/** Owns the local persist sequence, the tombstones waiting to be purged and the purged keys remembered. */
export class Tombstones {
  /** Local persist sequence number (every stored record increments it). */
  private seqNow = 0;
  /** Tombstone keys not yet purged -> [seq stored, monotonic time stored], in seq order. */
  private readonly waiting = new Map<string, { seq: number; atMs: number }>();
  /** Recently purged keys -> the hash of the purged version. Insertion order = purge order. */
  private readonly purged = new Map<string, Hash64>();
  /** The causal context of each purged tombstone in `purged`: what the purged delete superseded. */
  private readonly purgedContexts = new Map<string, VersionVector>();
  /** The highest membership epoch a member's round message carried: above ours, this replica is stale. */
  private peerEpochMax = 0;
  /** Tombstones purged here so far. */
  purgedCount = 0;

  constructor(
    private readonly self: string,
    /** A tombstone is purged no sooner than this after it was stored here (messages still in flight). */
    private readonly tombstoneGraceMs: number,
  ) {}

  /** Local persist sequence number (every stored record increments it). */
  get seq(): number {
    return this.seqNow;
  }

  /** The hash of `key`'s purged version, while it is remembered. */
  purgedHash(key: string): Hash64 | undefined {
    return this.purged.get(key);
  }

  /**
   * Tells anti-entropy that `record` is now stored for `key` (every persist, from any source, and each record
   * found at start-up with `nowMs` = start). Tracks tombstones for purging.
   */
  noteStored(key: string, record: VersionedRecord | undefined, nowMs: number): void {
    this.seqNow += 1;
    this.waiting.delete(key);
    if (record !== undefined && record.siblings.length > 0 && isDeleted(record)) this.waiting.set(key, { seq: this.seqNow, atMs: nowMs });
    if (record !== undefined) {
      this.purged.delete(key);
      this.purgedContexts.delete(key);
    }
  }

  merge(key: string, incoming: VersionedRecord, nowMs: number, local: SyncLocal, actions: SyncAction[]): void {
    const current = local.get(key);
    // A version a delete purged here superseded (a push read before the peer merged our tombstone, a late
    // handover): merging it would bring the deleted value back. Dropping it is what merge-then-purge would give.
    const purgedContext = current === undefined ? this.purgedContexts.get(key) : undefined;
    if (purgedContext !== undefined && incoming.siblings.every((s) => covers(purgedContext, s.dot))) return;
    const merged = current === undefined ? incoming : mergeRecords(current, incoming);
    if (current !== undefined && recordsEqual(merged, current)) return;
    actions.push({ type: 'persist', key, record: merged });
    this.noteStored(key, merged, nowMs);
  }

  /** A peer purged `key` at version `hash` (it knew every member held it): purge it here if that is our version. */
  purgeIfAt(key: string, hash: Hash64, nowMs: number, local: SyncLocal, actions: SyncAction[]): void {
    const record = local.get(key);
    if (record === undefined || !isDeleted(record) || !hashesEqual(entryHash(key, record), hash)) return;
    this.purge(key, record, nowMs, actions);
  }

  private purge(key: string, record: VersionedRecord, nowMs: number, actions: SyncAction[]): void {
    actions.push({ type: 'purge', key, record });
    this.noteStored(key, undefined, nowMs);
    this.purged.set(key, entryHash(key, record));
    this.purgedContexts.set(key, record.context);
    if (this.purged.size > PURGED_REMEMBERED_MAX) {
      const oldest = this.purged.keys().next().value as string;
      this.purged.delete(oldest);
      this.purgedContexts.delete(oldest);
    }
    this.purgedCount += 1;
  }

  /** A member's round message carried `epoch`. */
  notePeerEpoch(epoch: number): void {
    this.peerEpochMax = Math.max(this.peerEpochMax, epoch);
  }

  /**
   * Purges tombstones every current member (voters, learners, previous voters) is known to hold: a member
   * matched digests with this replica after the tombstone was stored here, both at this replica's current
   * epoch (a member list of another epoch may lack a member, e.g. a learner admitted since that still holds
   * what the tombstone superseded). Not at all while a member was seen at a higher epoch: this replica's
   * configuration is stale. Oldest first; stops at the first tombstone that is not yet stable or too young.
   */
  purgeStable(nowMs: number, config: MembershipConfig, local: SyncLocal, heldUpTo: HeldUpTo, actions: SyncAction[]): void {
    if (this.waiting.size === 0 || !isMember(config, this.self) || this.peerEpochMax > config.epoch) return;
    let stableUpTo = Infinity;
    for (const p of replicaIds(config)) {
      if (p !== this.self) stableUpTo = Math.min(stableUpTo, heldUpTo(p, config.epoch));
    }
    for (const [key, t] of this.waiting) {
      if (t.seq > stableUpTo || nowMs - t.atMs < this.tombstoneGraceMs) break;
      const record = local.get(key);
      assert(record !== undefined && isDeleted(record), 'a waiting tombstone is stored');
      this.purge(key, record, nowMs, actions);
    }
  }

  /** Tombstones waiting for causal stability, and the member that holds back the oldest (if one does). */
  view(config: MembershipConfig, heldUpTo: HeldUpTo): { waiting: number; blockedBy: string | undefined; purged: number } {
    const oldest = this.waiting.values().next();
    let blockedBy: string | undefined;
    if (!oldest.done) {
      let lowest = Infinity;
      for (const p of replicaIds(config)) {
        if (p === this.self) continue;
        const held = heldUpTo(p, config.epoch);
        if (held < oldest.value.seq && held < lowest) {
          lowest = held;
          blockedBy = p;
        }
      }
    }
    return { waiting: this.waiting.size, blockedBy, purged: this.purgedCount };
  }
}

// Anti-entropy between replicas: one gossip round at a time compares this replica's tictac digest with one live
// member's, top-down, then exchanges only the records of differing keys and merges them with the DVV rules. Also
// owns the choice of the member for each round, and tombstone purging at causal stability (decided only on
// observations made at this replica's own membership epoch, which every round message carries). Pure: time and
// randomness come in as arguments, effects go out as actions; the responder side keeps no per-session state.
// See docs/anti-entropy.md.
//
// This module is the facade (AntiEntropy): it routes each message and tick, and runs the hint handovers. The
// parts: anti-entropy-messages.ts (messages, actions, limits), anti-entropy-initiator.ts (rounds started here),
// anti-entropy-responder.ts (answering a member's round), anti-entropy-tombstones.ts (purge rules).
import { assert, unreachable } from './assert.js';
import {
  type AntiEntropyOptions,
  KEYS_PER_MESSAGE_MAX,
  RECORD_BYTES_PER_MESSAGE_MAX,
  type SyncAction,
  type SyncLocal,
  type SyncMessage,
  estimateRecordBytes,
  estimateSyncBytes,
} from './anti-entropy-messages.js';
import { Initiator, type PeerSyncView } from './anti-entropy-initiator.js';
import { answerDigest, answerPush, answerSegments, refusal } from './anti-entropy-responder.js';
import { type HeldUpTo, Tombstones } from './anti-entropy-tombstones.js';
import { type MembershipConfig, isMember } from './membership.js';
import type { KeyedRecord } from './messages.js';
import type { VersionedRecord } from './record.js';

// Every name this module exported before it was split, so importers need no change.
export type { AntiEntropyOptions, PurgedEntry, SyncAction, SyncEntry, SyncLocal, SyncMessage, SyncMessageType } from './anti-entropy-messages.js';
export {
  DIGEST_NODES_PER_REQUEST_MAX,
  ENTRIES_PER_REQUEST_MAX,
  FAILED_PEER_BACKOFF_INTERVALS_MAX,
  KEYS_PER_MESSAGE_MAX,
  PURGED_REMEMBERED_MAX,
  RECORD_BYTES_PER_MESSAGE_MAX,
  SEGMENTS_PER_REQUEST_MAX,
  estimateRecordBytes,
  estimateSyncBytes,
  hashHalf,
} from './anti-entropy-messages.js';
export type { PeerSyncView } from './anti-entropy-initiator.js';

/** Round and purge counters, for /status. */
export interface AntiEntropyStats {
  readonly rounds: number;
  readonly matchedRounds: number;
  readonly failedRounds: number;
  readonly keysRepaired: number;
  readonly tombstonesPurged: number;
  readonly bytes: number;
  /** Whether a round is running. */
  readonly running: boolean;
}

export class AntiEntropy {
  private readonly opts: AntiEntropyOptions;
  private readonly tombstones: Tombstones;
  private readonly initiator: Initiator;
  /** Hint handovers in flight (a push each, outside any round), by session number. */
  private readonly handovers = new Map<number, { readonly peer: string; readonly keys: readonly string[]; readonly sentAtMs: number }>();
  private readonly handoverCounters = { pushes: 0, keys: 0, bytes: 0 };
  private readonly heldUpTo: HeldUpTo = (peer, epoch) => this.initiator.heldUpTo(peer, epoch);

  constructor(options: AntiEntropyOptions) {
    assert(options.intervalMs > 0 && options.bytesPerSec > 0 && options.requestTimeoutMs > 0, 'positive intervals and budget');
    this.opts = options;
    this.tombstones = new Tombstones(options.self, options.tombstoneGraceMs);
    this.initiator = new Initiator(options, options.sizeOf ?? estimateSyncBytes, this.tombstones);
  }

  // ---------------------------------------------------------------- local store events

  /**
   * Tells anti-entropy that `record` is now stored for `key` (every persist, from any source, and each record
   * found at start-up with `nowMs` = start). Tracks tombstones for purging.
   */
  noteStored(key: string, record: VersionedRecord | undefined, nowMs: number): void {
    this.tombstones.noteStored(key, record, nowMs);
  }

  // ---------------------------------------------------------------- driving

  /** Starts a round when one is due, ends a timed-out one, purges stable tombstones. */
  tick(nowMs: number, random: number, config: MembershipConfig, isAlive: (peer: string) => boolean, local: SyncLocal): SyncAction[] {
    const actions: SyncAction[] = [];
    for (const [session, h] of this.handovers) if (nowMs - h.sentAtMs >= this.opts.requestTimeoutMs) this.handovers.delete(session);
    this.initiator.tickRound(nowMs, config.epoch, local, actions);
    this.tombstones.purgeStable(nowMs, config, local, this.heldUpTo, actions);
    this.initiator.startDueRound(nowMs, random, config, isAlive, local, actions);
    return actions;
  }

  /** Starts a round with `peer` now (if none is running), e.g. when it just came back. */
  startRound(peer: string, nowMs: number, config: MembershipConfig, local: SyncLocal): SyncAction[] {
    const actions: SyncAction[] = [];
    this.initiator.startRound(peer, nowMs, config, local, actions);
    return actions;
  }

  /**
   * Hinted handoff: pushes the current records of `keys` (which `peer` missed) to it, outside any round. The
   * current record, not the missed write itself: it includes that write or what superseded it, so a handover
   * can never bring back something deleted (or purged) since. One handover per peer in flight; when the peer
   * confirms, a `hintsDelivered` action names the keys.
   */
  handOver(peer: string, keys: readonly string[], nowMs: number, config: MembershipConfig, local: SyncLocal): SyncAction[] {
    const actions: SyncAction[] = [];
    if (keys.length === 0 || !isMember(config, peer) || !isMember(config, this.opts.self)) return actions;
    for (const h of this.handovers.values()) if (h.peer === peer) return actions;
    const records: KeyedRecord[] = [];
    let bytes = 0;
    const taken: string[] = [];
    for (const key of keys) {
      if (taken.length >= KEYS_PER_MESSAGE_MAX || (taken.length > 0 && bytes >= RECORD_BYTES_PER_MESSAGE_MAX)) break;
      taken.push(key);
      const record = local.get(key);
      if (record === undefined) continue; // purged since: nothing to hand over
      records.push({ key, record });
      bytes += estimateRecordBytes(key, record);
    }
    const session = this.initiator.allocateSessionId();
    const msg: SyncMessage = { type: 'push', session, epoch: config.epoch, records, purged: [] };
    this.handovers.set(session, { peer, keys: taken, sentAtMs: nowMs });
    this.handoverCounters.pushes += 1;
    this.handoverCounters.bytes += this.initiator.sizeOf(msg);
    actions.push({ type: 'send', to: peer, msg });
    return actions;
  }

  /** Handovers: pushes sent, keys confirmed, bytes. */
  get handoverStats(): Readonly<{ pushes: number; keys: number; bytes: number; inFlight: number }> {
    return { ...this.handoverCounters, inFlight: this.handovers.size };
  }

  /** Ends the running round (counted as failed), e.g. because the same data now arrives another way. */
  abortRound(nowMs: number): void {
    this.initiator.abortRound(nowMs);
  }

  /** Makes the next round due now (e.g. a device catching up just became a member). */
  wake(nowMs: number): void {
    this.initiator.wake(nowMs);
  }

  /** When tick() next has something to do (monotonic ms). */
  nextDeadlineMs(): number | undefined {
    return this.initiator.nextDeadlineMs();
  }

  /** A message from `from` (authenticated) on the sync protocol. */
  step(from: string, msg: SyncMessage, nowMs: number, config: MembershipConfig, local: SyncLocal): SyncAction[] {
    const actions: SyncAction[] = [];
    switch (msg.type) {
      case 'digest':
      case 'segments':
      case 'push': {
        const reason = refusal(this.opts.self, from, config);
        if (reason !== undefined) {
          actions.push({ type: 'send', to: from, msg: { type: 'refused', session: msg.session, reason } });
          return actions;
        }
        this.tombstones.notePeerEpoch(msg.epoch);
        if (msg.epoch !== config.epoch) {
          // Rounds only between replicas at the same epoch: from an older one the sender may be an old store
          // under a re-seated peer ID (its records would bring back what was deleted and purged since); from a
          // newer one our own seat may be another store's by then. The replica protocol tells the stale side.
          actions.push({ type: 'send', to: from, msg: { type: 'refused', session: msg.session, reason: `epoch ${msg.epoch} is not ${config.epoch}` } });
          return actions;
        }
        if (msg.type === 'digest') {
          answerDigest(from, msg, config.epoch, local, actions);
        }
        else if (msg.type === 'segments') answerSegments(from, msg, config.epoch, local, this.tombstones, actions);
        else answerPush(from, msg, nowMs, config.epoch, local, this.tombstones, actions);
        return actions;
      }
      case 'digestReply':
      case 'segmentsReply':
      case 'pushAck':
      case 'refused': {
        const handover = this.handovers.get(msg.session);
        if (handover !== undefined && handover.peer === from && (msg.type === 'pushAck' || msg.type === 'refused')) {
          this.handovers.delete(msg.session);
          if (msg.type === 'pushAck') {
            this.handoverCounters.keys += handover.keys.length;
            actions.push({ type: 'hintsDelivered', peer: from, keys: handover.keys });
          }
          return actions;
        }
        this.initiator.onReplyMessage(from, msg, nowMs, config, local, actions);
        return actions;
      }
      default:
        return unreachable(msg);
    }
  }

  /** The request of the running round could not be sent: end the round. */
  sendFailed(to: string, msg: SyncMessage, nowMs: number): void {
    if (this.handovers.get(msg.session)?.peer === to) this.handovers.delete(msg.session);
    this.initiator.sendFailed(to, msg, nowMs);
  }

  // ---------------------------------------------------------------- views

  /** What this device knows about its exchanges with each member (the /status sync view). */
  peerViews(config: MembershipConfig): PeerSyncView[] {
    return this.initiator.peerViews(config);
  }

  /** Digests were equal with every live member at their last round (and there was one). */
  converged(config: MembershipConfig, isAlive: (peer: string) => boolean): boolean {
    return this.initiator.converged(config, isAlive);
  }

  /** Tombstones waiting for causal stability, and the member that holds back the oldest (if one does). */
  tombstoneView(config: MembershipConfig): { waiting: number; blockedBy: string | undefined; purged: number } {
    return this.tombstones.view(config, this.heldUpTo);
  }

  get stats(): Readonly<AntiEntropyStats> {
    const { rounds, matchedRounds, failedRounds, keysRepaired, bytes } = this.initiator.counters;
    return { rounds, matchedRounds, failedRounds, keysRepaired, tombstonesPurged: this.tombstones.purgedCount, bytes, running: this.initiator.running };
  }
}

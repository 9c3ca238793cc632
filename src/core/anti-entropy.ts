// Anti-entropy between replicas: one gossip round at a time compares this replica's tictac digest with one live
// member's, top-down, then exchanges only the records of differing keys and merges them with the DVV rules. Also
// owns the choice of the member for each round, and tombstone purging at causal stability (decided only on
// observations made at this replica's own membership epoch, which every round message carries). Pure: time and
// randomness come in as arguments, effects go out as actions; the responder side keeps no per-session state.
// See docs/anti-entropy.md.
import { assert } from './assert.js';
import { type Hash64, type MerkleDigest, entryHash, hashesEqual, segmentOf } from './digest.js';
import { type MembershipConfig, isMember, isRemoved, replicaIds } from './membership.js';
import type { KeyedRecord } from './messages.js';
import { type VersionedRecord, isDeleted, mergeRecords, recordsEqual } from './record.js';
import { type VersionVector, covers } from './vv.js';

/** What anti-entropy reads of this replica: records (staged writes included) and the digest kept in step. */
export interface SyncLocal {
  get(key: string): VersionedRecord | undefined;
  readonly digest: MerkleDigest;
}

/**
 * A key's entry as the initiator lists it for a differing segment: the round's 32-bit half of the hash of its
 * version state (see hashHalf).
 */
export interface SyncEntry {
  readonly key: string;
  readonly hash: number;
}

/** A purged tombstone, named with the full hash of the version that was purged. */
export interface PurgedEntry {
  readonly key: string;
  readonly hash: Hash64;
}

/**
 * The half of a 64-bit hash a round exchanges below the root: the high half in even-numbered rounds, the low
 * half in odd ones. Halves the bytes of the comparison; a 32-bit collision can hide a difference for one round
 * only (the root, always compared in full, still differs, and the next round compares the other half).
 */
export function hashHalf(hash: Hash64, session: number): number {
  return session % 2 === 0 ? hash.hi : hash.lo;
}

/**
 * Round messages: `epoch` is always the sender's membership epoch when it sent the message. Purging trusts only
 * observations (a match, a purge report) from a peer at this replica's own epoch (see purgeStable).
 */
export type SyncMessage =
  /**
   * Initiator -> responder: your child hashes of these nodes at `level` (0 = the root). `root` is the
   * initiator's root; a responder whose root equals it answers with no hashes (the round matched).
   */
  | { readonly type: 'digest'; readonly session: number; readonly epoch: number; readonly root: Hash64; readonly keys: number; readonly level: number; readonly nodes: readonly number[] }
  /** Responder -> initiator: its root and key count, and the children of each requested node (fan-out each, halves). */
  | { readonly type: 'digestReply'; readonly session: number; readonly epoch: number; readonly root: Hash64; readonly keys: number; readonly level: number; readonly hashes: readonly number[] }
  /** Initiator -> responder: these segments differ; here are my entries in them. */
  | { readonly type: 'segments'; readonly session: number; readonly epoch: number; readonly segments: readonly number[]; readonly entries: readonly SyncEntry[] }
  /**
   * Responder -> initiator: the first `done` segments were compared: my records where yours differ or are
   * missing, the keys I want from you, and keys whose version you listed that I purged as causally stable.
   */
  | {
      readonly type: 'segmentsReply';
      readonly session: number;
      readonly epoch: number;
      readonly done: number;
      readonly records: readonly KeyedRecord[];
      readonly want: readonly string[];
      readonly purged: readonly PurgedEntry[];
    }
  /** Initiator -> responder: records you asked for (merge them); `purged`: keys you sent that I had purged. */
  | { readonly type: 'push'; readonly session: number; readonly epoch: number; readonly records: readonly KeyedRecord[]; readonly purged: readonly PurgedEntry[] }
  /** Responder -> initiator: the push is merged and durable. */
  | { readonly type: 'pushAck'; readonly session: number }
  /** Responder -> initiator: not served (the initiator is not a member here, or this device is not one). */
  | { readonly type: 'refused'; readonly session: number; readonly reason: string };

export type SyncMessageType = SyncMessage['type'];

export type SyncAction =
  /** Store `record` (already merged with the local state) as the new state of `key`. */
  | { readonly type: 'persist'; readonly key: string; readonly record: VersionedRecord }
  /** Delete `key`, whose current state is the tombstone `record` (the runtime asserts it still is). */
  | { readonly type: 'purge'; readonly key: string; readonly record: VersionedRecord }
  | { readonly type: 'send'; readonly to: string; readonly msg: SyncMessage }
  /** Send `msg` once everything persisted before is durable. */
  | { readonly type: 'sendDurable'; readonly to: string; readonly msg: SyncMessage }
  /** Hinted handoff: `peer` merged (durably) the current records of `keys`; their hints can go. */
  | { readonly type: 'hintsDelivered'; readonly peer: string; readonly keys: readonly string[] };

export interface AntiEntropyOptions {
  readonly self: string;
  /** Mean time between rounds; each wait is drawn uniformly from [0.5, 1.5] of it. */
  readonly intervalMs: number;
  /** Bytes per second that rounds started here may move (requests and replies together). */
  readonly bytesPerSec: number;
  /** A request without reply for this long ends the round (failed). */
  readonly requestTimeoutMs: number;
  /** A tombstone is purged no sooner than this after it was stored here (messages still in flight). */
  readonly tombstoneGraceMs: number;
  /** Encoded size of a message, for the byte budget and the figures (default: an estimate). */
  readonly sizeOf?: (msg: SyncMessage) => number;
}

/** Nodes per digest request: 256 × 16 children × 4 B = 16 KiB of hash halves per reply. */
export const DIGEST_NODES_PER_REQUEST_MAX = 256;
/** Segments per segments request. */
export const SEGMENTS_PER_REQUEST_MAX = 512;
/** Entries listed per segments request (bounds the request's size: ~40 B each). */
export const ENTRIES_PER_REQUEST_MAX = 4096;
/** Record bytes (estimated) per segments reply or push before the rest waits for the next message. */
export const RECORD_BYTES_PER_MESSAGE_MAX = 512 * 1024;
/** Keys a push or want list may name (bounds decode work). */
export const KEYS_PER_MESSAGE_MAX = 8192;
/** Purged tombstones remembered, so a peer that still holds one learns it may purge it too. */
export const PURGED_REMEMBERED_MAX = 65_536;
/**
 * A member whose rounds keep failing (refused, timed out) waits, after its turn, one interval more after its
 * second failure in a row, doubling with each further one up to this many intervals.
 */
export const FAILED_PEER_BACKOFF_INTERVALS_MAX = 32;
/** The budget may run this far ahead (a burst), so a small round is never delayed. */
const BUDGET_BURST_MS = 1_000;

/** What this device knows about its exchanges with one member (the /status sync view). */
export interface PeerSyncView {
  readonly peerId: string;
  /** Monotonic time of the last completed round with this peer (undefined: none yet). */
  readonly lastRoundMs: number | undefined;
  /** Whether the digests were equal at that round (undefined: no completed round). */
  readonly matched: boolean | undefined;
  /** Keys found differing in that round. */
  readonly keysDiffering: number;
  readonly rounds: number;
  readonly failedRounds: number;
  /** Bytes of rounds started here with this peer, both directions. */
  readonly bytes: number;
  readonly recordsReceived: number;
  readonly recordsSent: number;
  /** How long the last completed round took (ms). */
  readonly lastRoundDurationMs: number | undefined;
  /** The last round that found differences: when it ended, keys, duration and bytes. */
  readonly lastRepair: { readonly atMs: number; readonly keys: number; readonly durationMs: number; readonly bytes: number } | undefined;
}

interface PeerState {
  /** Parity of the next round's session number with this peer (see startSession). */
  nextParity: number;
  lastRepair: PeerSyncView['lastRepair'];
  lastRoundMs: number | undefined;
  /** When the last round with this peer started (completed or not): rounds go to the least recently tried. */
  lastAttemptMs: number | undefined;
  /** Rounds with this peer that failed in a row (see FAILED_PEER_BACKOFF_INTERVALS_MAX). */
  failStreak: number;
  lastRoundDurationMs: number | undefined;
  matched: boolean | undefined;
  keysDiffering: number;
  rounds: number;
  failedRounds: number;
  bytes: number;
  recordsReceived: number;
  recordsSent: number;
  /**
   * Local persist sequence number up to which this peer is known to hold everything held here, observed while
   * both were at membership epoch `heldEpoch` (it counts for purging only while this replica is at that epoch).
   */
  heldUpTo: number;
  heldEpoch: number;
}

type Pending =
  | { readonly kind: 'digest'; readonly level: number; readonly nodes: readonly number[] }
  | { readonly kind: 'segments'; readonly segments: readonly number[]; readonly sentHashes: ReadonlyMap<string, Hash64> }
  | { readonly kind: 'push' };

interface Session {
  readonly id: number;
  readonly peer: string;
  readonly startedMs: number;
  /** This replica's persist sequence number when the root was sent (a match means the peer holds it all). */
  readonly seqAtStart: number;
  /** Digest level of the nodes in `nodeQueue` and of `nextLevel` (the next level's differing nodes). */
  level: number;
  nodeQueue: number[];
  nextLevel: number[];
  segmentQueue: number[];
  /** Records to push (keys the responder wants) and purged entries to report. */
  pushQueue: string[];
  purgedToReport: PurgedEntry[];
  pending: Pending | undefined;
  sentAtMs: number;
  bytes: number;
  keysDiffering: number;
  recordsReceived: number;
  recordsSent: number;
}

export class AntiEntropy {
  private readonly opts: AntiEntropyOptions;
  private readonly sizeOf: (msg: SyncMessage) => number;
  private readonly peers = new Map<string, PeerState>();
  private session: Session | undefined;
  private nextSessionId = 1;
  private nextRoundMs: number | undefined;
  /** Generic cell rate: the time the budget is spent up to. */
  private budgetAtMs = 0;
  /** Local persist sequence number (every stored record increments it). */
  private seq = 0;
  /** Tombstone keys not yet purged -> [seq stored, monotonic time stored], in seq order. */
  private readonly tombstones = new Map<string, { seq: number; atMs: number }>();
  /** Recently purged keys -> the hash of the purged version. Insertion order = purge order. */
  private readonly purged = new Map<string, Hash64>();
  /** The causal context of each purged tombstone in `purged`: what the purged delete superseded. */
  private readonly purgedContexts = new Map<string, VersionVector>();
  /** The highest membership epoch a member's round message carried: above ours, this replica is stale. */
  private peerEpochMax = 0;
  private readonly counters = { rounds: 0, matchedRounds: 0, failedRounds: 0, keysRepaired: 0, tombstonesPurged: 0, bytes: 0 };
  /** Hint handovers in flight (a push each, outside any round), by session number. */
  private readonly handovers = new Map<number, { readonly peer: string; readonly keys: readonly string[]; readonly sentAtMs: number }>();
  private readonly handoverCounters = { pushes: 0, keys: 0, bytes: 0 };

  constructor(options: AntiEntropyOptions) {
    assert(options.intervalMs > 0 && options.bytesPerSec > 0 && options.requestTimeoutMs > 0, 'positive intervals and budget');
    this.opts = options;
    this.sizeOf = options.sizeOf ?? estimateSyncBytes;
  }

  // ---------------------------------------------------------------- local store events

  /**
   * Tells anti-entropy that `record` is now stored for `key` (every persist, from any source, and each record
   * found at start-up with `nowMs` = start). Tracks tombstones for purging.
   */
  noteStored(key: string, record: VersionedRecord | undefined, nowMs: number): void {
    this.seq += 1;
    this.tombstones.delete(key);
    if (record !== undefined && record.siblings.length > 0 && isDeleted(record)) this.tombstones.set(key, { seq: this.seq, atMs: nowMs });
    if (record !== undefined) {
      this.purged.delete(key);
      this.purgedContexts.delete(key);
    }
  }

  // ---------------------------------------------------------------- driving

  /** Starts a round when one is due, ends a timed-out one, purges stable tombstones. */
  tick(nowMs: number, random: number, config: MembershipConfig, isAlive: (peer: string) => boolean, local: SyncLocal): SyncAction[] {
    const actions: SyncAction[] = [];
    for (const [session, h] of this.handovers) if (nowMs - h.sentAtMs >= this.opts.requestTimeoutMs) this.handovers.delete(session);
    const s = this.session;
    if (s !== undefined && s.pending !== undefined && nowMs - s.sentAtMs >= this.opts.requestTimeoutMs) {
      this.endSession(s, nowMs, 'failed');
    }
    if (this.session !== undefined && this.session.pending === undefined) this.continueSession(this.session, nowMs, config.epoch, local, actions);
    this.purgeStable(nowMs, config, local, actions);
    if (this.nextRoundMs === undefined) this.nextRoundMs = nowMs + this.opts.intervalMs * (0.5 + random);
    if (this.session === undefined && nowMs >= this.nextRoundMs) {
      this.nextRoundMs = nowMs + this.opts.intervalMs * (0.5 + random);
      const peer = this.pickPeer(config, isAlive, random);
      if (peer !== undefined) this.startSession(peer, nowMs, config.epoch, local, actions);
    }
    return actions;
  }

  /** Starts a round with `peer` now (if none is running), e.g. when it just came back. */
  startRound(peer: string, nowMs: number, config: MembershipConfig, local: SyncLocal): SyncAction[] {
    const actions: SyncAction[] = [];
    if (this.session === undefined && peer !== this.opts.self && isMember(config, peer) && isMember(config, this.opts.self)) {
      this.startSession(peer, nowMs, config.epoch, local, actions);
    }
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
    const session = this.nextSessionId++;
    const msg: SyncMessage = { type: 'push', session, epoch: config.epoch, records, purged: [] };
    this.handovers.set(session, { peer, keys: taken, sentAtMs: nowMs });
    this.handoverCounters.pushes += 1;
    this.handoverCounters.bytes += this.sizeOf(msg);
    actions.push({ type: 'send', to: peer, msg });
    return actions;
  }

  /** Handovers: pushes sent, keys confirmed, bytes. */
  get handoverStats(): Readonly<{ pushes: number; keys: number; bytes: number; inFlight: number }> {
    return { ...this.handoverCounters, inFlight: this.handovers.size };
  }

  /** Ends the running round (counted as failed), e.g. because the same data now arrives another way. */
  abortRound(nowMs: number): void {
    if (this.session !== undefined) this.endSession(this.session, nowMs, 'failed');
  }

  /** Makes the next round due now (e.g. a device catching up just became a member). */
  wake(nowMs: number): void {
    this.nextRoundMs = Math.min(this.nextRoundMs ?? nowMs, nowMs);
  }

  /** When tick() next has something to do (monotonic ms). */
  nextDeadlineMs(): number | undefined {
    const s = this.session;
    if (s !== undefined) return s.pending === undefined ? Math.max(this.budgetAtMs - BUDGET_BURST_MS, s.sentAtMs) : s.sentAtMs + this.opts.requestTimeoutMs;
    return this.nextRoundMs;
  }

  /** A message from `from` (authenticated) on the sync protocol. */
  step(from: string, msg: SyncMessage, nowMs: number, config: MembershipConfig, local: SyncLocal): SyncAction[] {
    const actions: SyncAction[] = [];
    switch (msg.type) {
      case 'digest':
      case 'segments':
      case 'push': {
        const reason = this.refusal(from, config);
        if (reason !== undefined) {
          actions.push({ type: 'send', to: from, msg: { type: 'refused', session: msg.session, reason } });
          return actions;
        }
        this.notePeerEpoch(msg.epoch);
        if (msg.epoch !== config.epoch) {
          // Rounds only between replicas at the same epoch: from an older one the sender may be an old store
          // under a re-seated peer ID (its records would bring back what was deleted and purged since); from a
          // newer one our own seat may be another store's by then. The replica protocol tells the stale side.
          actions.push({ type: 'send', to: from, msg: { type: 'refused', session: msg.session, reason: `epoch ${msg.epoch} is not ${config.epoch}` } });
          return actions;
        }
        if (msg.type === 'digest') {
          this.answerDigest(from, msg, config.epoch, local, actions);
        }
        else if (msg.type === 'segments') this.answerSegments(from, msg, config.epoch, local, actions);
        else this.answerPush(from, msg, nowMs, config.epoch, local, actions);
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
        const s = this.session;
        if (s === undefined || s.id !== msg.session || s.peer !== from || s.pending === undefined) return actions; // late or duplicate
        // A reply from a peer that is no longer a member is not merged.
        if (!isMember(config, from) || isRemoved(config, from)) {
          this.endSession(s, nowMs, 'failed');
          return actions;
        }
        if (msg.type !== 'pushAck' && msg.type !== 'refused') {
          this.notePeerEpoch(msg.epoch);
          if (msg.epoch !== config.epoch) {
            this.endSession(s, nowMs, 'failed'); // nothing is merged from another epoch (see the responder)
            return actions;
          }
        }
        this.onReply(s, msg, nowMs, config.epoch, local, actions);
        return actions;
      }
    }
  }

  /** The request of the running round could not be sent: end the round. */
  sendFailed(to: string, msg: SyncMessage, nowMs: number): void {
    if (this.handovers.get(msg.session)?.peer === to) this.handovers.delete(msg.session);
    const s = this.session;
    if (s !== undefined && s.peer === to && s.id === msg.session) this.endSession(s, nowMs, 'failed');
  }

  // ---------------------------------------------------------------- views

  peerViews(config: MembershipConfig): PeerSyncView[] {
    return replicaIds(config)
      .filter((p) => p !== this.opts.self)
      .map((peerId) => {
        const p = this.peers.get(peerId);
        return {
          peerId,
          lastRoundMs: p?.lastRoundMs,
          matched: p?.matched,
          keysDiffering: p?.keysDiffering ?? 0,
          rounds: p?.rounds ?? 0,
          failedRounds: p?.failedRounds ?? 0,
          bytes: p?.bytes ?? 0,
          recordsReceived: p?.recordsReceived ?? 0,
          recordsSent: p?.recordsSent ?? 0,
          lastRoundDurationMs: p?.lastRoundDurationMs,
          lastRepair: p?.lastRepair,
        };
      });
  }

  /** Digests were equal with every live member at their last round (and there was one). */
  converged(config: MembershipConfig, isAlive: (peer: string) => boolean): boolean {
    return replicaIds(config)
      .filter((p) => p !== this.opts.self && isAlive(p))
      .every((p) => this.peers.get(p)?.matched === true);
  }

  /** Tombstones waiting for causal stability, and the member that holds back the oldest (if one does). */
  tombstoneView(config: MembershipConfig): { waiting: number; blockedBy: string | undefined; purged: number } {
    const oldest = this.tombstones.values().next();
    let blockedBy: string | undefined;
    if (!oldest.done) {
      let lowest = Infinity;
      for (const p of replicaIds(config)) {
        if (p === this.opts.self) continue;
        const held = this.heldUpTo(p, config.epoch);
        if (held < oldest.value.seq && held < lowest) {
          lowest = held;
          blockedBy = p;
        }
      }
    }
    return { waiting: this.tombstones.size, blockedBy, purged: this.counters.tombstonesPurged };
  }

  get stats(): Readonly<typeof this.counters> & { readonly running: boolean } {
    return { ...this.counters, running: this.session !== undefined };
  }

  // ---------------------------------------------------------------- initiator

  private pickPeer(config: MembershipConfig, isAlive: (peer: string) => boolean, random: number): string | undefined {
    if (!isMember(config, this.opts.self)) return undefined;
    const candidates = replicaIds(config).filter((p) => p !== this.opts.self && isAlive(p));
    if (candidates.length === 0) return undefined;
    // The least recently tried first (never tried before all), so a member that refuses or fails rounds cannot
    // take every round; one that keeps failing also waits longer each time (backoff). Ties broken by `random`.
    let best: string[] = [];
    let bestAt = Infinity;
    for (const p of candidates) {
      const state = this.peers.get(p);
      const at = (state?.lastAttemptMs ?? -Infinity) + this.failureBackoffMs(state?.failStreak ?? 0);
      if (at < bestAt) {
        bestAt = at;
        best = [p];
      } else if (at === bestAt) best.push(p);
    }
    return best[Math.min(best.length - 1, Math.floor(random * best.length))];
  }

  /** How long after its turn a member whose last `streak` rounds failed waits (0, then 1, 2, 4 … intervals). */
  private failureBackoffMs(streak: number): number {
    if (streak < 2) return 0;
    return this.opts.intervalMs * Math.min(FAILED_PEER_BACKOFF_INTERVALS_MAX, 2 ** Math.min(streak - 2, 30));
  }

  private startSession(peer: string, nowMs: number, epoch: number, local: SyncLocal, actions: SyncAction[]): void {
    // The session number's parity picks the hash half compared below the root: alternate it per peer, so a
    // 32-bit collision with one peer is looked at with the other half in the next round with that peer.
    const state = this.peer(peer);
    state.lastAttemptMs = nowMs;
    if (this.nextSessionId % 2 !== state.nextParity) this.nextSessionId += 1;
    state.nextParity = 1 - state.nextParity;
    const s: Session = {
      id: this.nextSessionId++,
      peer,
      startedMs: nowMs,
      seqAtStart: this.seq,
      level: 0,
      nodeQueue: [],
      nextLevel: [],
      segmentQueue: [],
      pushQueue: [],
      purgedToReport: [],
      pending: undefined,
      sentAtMs: nowMs,
      bytes: 0,
      keysDiffering: 0,
      recordsReceived: 0,
      recordsSent: 0,
    };
    this.session = s;
    const msg: SyncMessage = { type: 'digest', session: s.id, epoch, root: local.digest.root(), keys: local.digest.size, level: 0, nodes: [0] };
    this.request(s, msg, { kind: 'digest', level: 0, nodes: [0] }, nowMs, actions);
  }

  private request(s: Session, msg: SyncMessage, pending: Pending, nowMs: number, actions: SyncAction[]): void {
    s.pending = pending;
    s.sentAtMs = nowMs;
    this.spend(s, this.sizeOf(msg), nowMs);
    actions.push({ type: 'send', to: s.peer, msg });
  }

  private spend(s: Session, bytes: number, nowMs: number): void {
    s.bytes += bytes;
    this.counters.bytes += bytes;
    this.budgetAtMs = Math.max(this.budgetAtMs, nowMs - BUDGET_BURST_MS) + (bytes * 1000) / this.opts.bytesPerSec;
  }

  private onReply(s: Session, msg: SyncMessage, nowMs: number, epoch: number, local: SyncLocal, actions: SyncAction[]): void {
    const pending = s.pending;
    assert(pending !== undefined, 'a reply answers the pending request');
    s.pending = undefined;
    this.spend(s, this.sizeOf(msg), nowMs);
    if (msg.type === 'refused') {
      this.endSession(s, nowMs, 'failed');
      return;
    }
    if (msg.type === 'digestReply' && pending.kind === 'digest') {
      if (!this.takeDigestReply(s, pending, msg, local)) {
        this.endSession(s, nowMs, 'failed');
        return;
      }
      if (msg.hashes.length === 0) {
        // Roots equal when the responder looked: it holds everything this replica held at the start. Noted with
        // the epoch both were at; from a peer at another epoch it does not count for purging (see purgeStable).
        if (msg.epoch === epoch) {
          const peer = this.peer(s.peer);
          peer.heldUpTo = peer.heldEpoch === epoch ? Math.max(peer.heldUpTo, s.seqAtStart) : s.seqAtStart;
          peer.heldEpoch = epoch;
        }
        this.endSession(s, nowMs, 'matched');
        return;
      }
    } else if (msg.type === 'segmentsReply' && pending.kind === 'segments') {
      if (!this.takeSegmentsReply(s, pending, msg, nowMs, epoch, local, actions)) {
        this.endSession(s, nowMs, 'failed');
        return;
      }
    } else if (msg.type === 'pushAck' && pending.kind === 'push') {
      // nothing to take: the responder merged what was pushed
    } else {
      this.endSession(s, nowMs, 'failed'); // a reply of the wrong kind: a confused peer
      return;
    }
    this.continueSession(s, nowMs, epoch, local, actions);
  }

  /** Sends the session's next request when the budget allows, or ends it when nothing is left. */
  private continueSession(s: Session, nowMs: number, epoch: number, local: SyncLocal, actions: SyncAction[]): void {
    if (this.budgetAtMs - BUDGET_BURST_MS > nowMs) return; // tick() resumes at nextDeadlineMs()
    if (s.pushQueue.length > 0 || s.purgedToReport.length > 0) {
      const records: KeyedRecord[] = [];
      let bytes = 0;
      while (s.pushQueue.length > 0 && records.length < KEYS_PER_MESSAGE_MAX && (records.length === 0 || bytes < RECORD_BYTES_PER_MESSAGE_MAX)) {
        const key = s.pushQueue.shift() as string;
        const record = local.get(key);
        if (record === undefined) continue;
        records.push({ key, record });
        bytes += estimateRecordBytes(key, record);
      }
      const purged = s.purgedToReport.splice(0, KEYS_PER_MESSAGE_MAX);
      s.recordsSent += records.length;
      this.request(s, { type: 'push', session: s.id, epoch, records, purged }, { kind: 'push' }, nowMs, actions);
      return;
    }
    if (s.nodeQueue.length === 0 && s.nextLevel.length > 0 && s.level + 1 < local.digest.depth) {
      s.level += 1;
      s.nodeQueue = s.nextLevel;
      s.nextLevel = [];
    } else if (s.nodeQueue.length === 0 && s.nextLevel.length > 0) {
      s.segmentQueue = s.nextLevel; // the next level is the segments
      s.nextLevel = [];
    }
    if (s.nodeQueue.length > 0) {
      const nodes = s.nodeQueue.splice(0, DIGEST_NODES_PER_REQUEST_MAX);
      const msg: SyncMessage = { type: 'digest', session: s.id, epoch, root: local.digest.root(), keys: local.digest.size, level: s.level, nodes };
      this.request(s, msg, { kind: 'digest', level: s.level, nodes }, nowMs, actions);
      return;
    }
    if (s.segmentQueue.length > 0) {
      const segments: number[] = [];
      const entries: SyncEntry[] = [];
      const sentHashes = new Map<string, Hash64>();
      while (s.segmentQueue.length > 0 && segments.length < SEGMENTS_PER_REQUEST_MAX) {
        const segment = s.segmentQueue[0] as number;
        const keys = local.digest.keysIn(segment);
        if (segments.length > 0 && entries.length + keys.length > ENTRIES_PER_REQUEST_MAX) break;
        s.segmentQueue.shift();
        segments.push(segment);
        for (const key of keys) {
          const hash = entryHash(key, local.get(key));
          entries.push({ key, hash: hashHalf(hash, s.id) });
          sentHashes.set(key, hash);
        }
      }
      this.request(s, { type: 'segments', session: s.id, epoch, segments, entries }, { kind: 'segments', segments, sentHashes }, nowMs, actions);
      return;
    }
    this.endSession(s, nowMs, 'repaired');
  }

  /** Queues the differing children; false when the reply does not fit the request. */
  private takeDigestReply(s: Session, pending: Extract<Pending, { kind: 'digest' }>, msg: Extract<SyncMessage, { type: 'digestReply' }>, local: SyncLocal): boolean {
    if (msg.hashes.length === 0) return true; // the roots matched (the caller ends the round)
    const fanout = 1 << local.digest.shape.fanoutLog2;
    if (msg.level !== pending.level || msg.hashes.length !== pending.nodes.length * fanout) return false;
    pending.nodes.forEach((node, i) => {
      const mine = local.digest.children({ level: pending.level, index: node });
      for (let c = 0; c < fanout; c++) {
        if (hashHalf(mine[c] as Hash64, s.id) !== msg.hashes[i * fanout + c]) s.nextLevel.push(node * fanout + c);
      }
    });
    return true;
  }

  private takeSegmentsReply(
    s: Session,
    pending: Extract<Pending, { kind: 'segments' }>,
    msg: Extract<SyncMessage, { type: 'segmentsReply' }>,
    nowMs: number,
    epoch: number,
    local: SyncLocal,
    actions: SyncAction[],
  ): boolean {
    if (msg.done < 1 || msg.done > pending.segments.length) return false;
    // A key may be both sent and wanted (versions differ both ways), but never twice in a list, nor both sent
    // and purged.
    if (!distinctKeys(msg.records.map((r) => r.key), msg.purged.map((e) => e.key)) || !distinctKeys(msg.want)) return false;
    const covered = new Set(pending.segments.slice(0, msg.done));
    // Segments the responder had no room for go back to the front of the queue.
    s.segmentQueue.unshift(...pending.segments.slice(msg.done));
    const differing = new Set<string>();
    for (const { key, record } of msg.records) {
      if (!covered.has(segmentOf(key, local.digest.shape))) return false;
      differing.add(key);
      s.recordsReceived += 1;
      const purgedHash = this.purged.get(key);
      if (local.get(key) === undefined && purgedHash !== undefined && hashesEqual(purgedHash, entryHash(key, record))) {
        s.purgedToReport.push({ key, hash: purgedHash }); // the peer still holds a tombstone purged here
        continue;
      }
      this.merge(key, record, nowMs, local, actions);
    }
    for (const key of msg.want) {
      if (!pending.sentHashes.has(key)) return false;
      differing.add(key);
      s.pushQueue.push(key);
    }
    for (const { key, hash } of msg.purged) {
      if (!pending.sentHashes.has(key)) return false;
      differing.add(key);
      // A purge decided on another epoch's member list is not taken (it may have missed a member).
      if (msg.epoch === epoch) this.purgeIfAt(key, hash, nowMs, local, actions);
    }
    s.keysDiffering += differing.size;
    return true;
  }

  /** Ends the round: `matched` (digests equal), `repaired` (differences exchanged) or `failed`. */
  private endSession(s: Session, nowMs: number, outcome: 'matched' | 'repaired' | 'failed'): void {
    assert(this.session === s, 'the running session ends');
    this.session = undefined;
    const failed = outcome === 'failed';
    const matched = outcome === 'matched';
    const peer = this.peer(s.peer);
    peer.bytes += s.bytes;
    peer.recordsReceived += s.recordsReceived;
    peer.recordsSent += s.recordsSent;
    this.counters.keysRepaired += s.keysDiffering;
    if (failed) {
      peer.failedRounds += 1;
      peer.failStreak += 1;
      this.counters.failedRounds += 1;
      return;
    }
    peer.failStreak = 0;
    peer.rounds += 1;
    peer.lastRoundMs = nowMs;
    peer.lastRoundDurationMs = nowMs - s.startedMs;
    if (s.keysDiffering > 0) peer.lastRepair = { atMs: nowMs, keys: s.keysDiffering, durationMs: nowMs - s.startedMs, bytes: s.bytes };
    peer.matched = matched;
    peer.keysDiffering = s.keysDiffering;
    this.counters.rounds += 1;
    if (matched) this.counters.matchedRounds += 1;
    if (this.nextRoundMs === undefined) return;
    // Differences were repaired: check again soon.
    if (!matched) this.nextRoundMs = Math.min(this.nextRoundMs, nowMs + Math.min(this.opts.intervalMs, 100) / 2);
  }

  private peer(peerId: string): PeerState {
    let p = this.peers.get(peerId);
    if (p === undefined) {
      p = {
        nextParity: 0,
        lastRepair: undefined,
        lastRoundMs: undefined,
        lastAttemptMs: undefined,
        failStreak: 0,
        lastRoundDurationMs: undefined,
        matched: undefined,
        keysDiffering: 0,
        rounds: 0,
        failedRounds: 0,
        bytes: 0,
        recordsReceived: 0,
        recordsSent: 0,
        heldUpTo: 0,
        heldEpoch: 0,
      };
      this.peers.set(peerId, p);
    }
    return p;
  }

  // ---------------------------------------------------------------- responder (stateless)

  private refusal(from: string, config: MembershipConfig): string | undefined {
    if (!isMember(config, this.opts.self)) return 'not a member';
    if (!isMember(config, from) || isRemoved(config, from)) return 'you are not a member of my configuration';
    return undefined;
  }

  private answerDigest(from: string, msg: Extract<SyncMessage, { type: 'digest' }>, epoch: number, local: SyncLocal, actions: SyncAction[]): void {
    const digest = local.digest;
    const root = digest.root();
    const base = { type: 'digestReply', session: msg.session, epoch, root, keys: digest.size, level: msg.level } as const;
    if (hashesEqual(root, msg.root)) {
      // A match tells the initiator we hold everything it holds (it may then purge tombstones): only once what
      // we hold is durable, or a crash here could bring back what the tombstones superseded.
      actions.push({ type: 'sendDurable', to: from, msg: { ...base, hashes: [] } });
      return;
    }
    const width = 1 << (msg.level * digest.shape.fanoutLog2);
    const valid =
      Number.isInteger(msg.level) && msg.level >= 0 && msg.level < digest.depth && msg.nodes.length >= 1 && msg.nodes.length <= DIGEST_NODES_PER_REQUEST_MAX &&
      msg.nodes.every((n) => Number.isInteger(n) && n >= 0 && n < width);
    if (!valid) {
      actions.push({ type: 'send', to: from, msg: { type: 'refused', session: msg.session, reason: 'malformed digest request' } });
      return;
    }
    const hashes: number[] = [];
    for (const index of msg.nodes) for (const h of digest.children({ level: msg.level, index })) hashes.push(hashHalf(h, msg.session));
    actions.push({ type: 'send', to: from, msg: { ...base, hashes } });
  }

  private answerSegments(from: string, msg: Extract<SyncMessage, { type: 'segments' }>, epoch: number, local: SyncLocal, actions: SyncAction[]): void {
    const digest = local.digest;
    const segmentCount = 1 << digest.shape.segmentsLog2;
    const valid =
      msg.segments.length >= 1 && msg.segments.length <= SEGMENTS_PER_REQUEST_MAX && msg.entries.length <= ENTRIES_PER_REQUEST_MAX &&
      msg.segments.every((n) => Number.isInteger(n) && n >= 0 && n < segmentCount);
    if (!valid) {
      actions.push({ type: 'send', to: from, msg: { type: 'refused', session: msg.session, reason: 'malformed segments request' } });
      return;
    }
    const theirs = new Map<number, SyncEntry[]>();
    for (const entry of msg.entries) {
      const segment = segmentOf(entry.key, digest.shape);
      const list = theirs.get(segment);
      if (list === undefined) theirs.set(segment, [entry]);
      else list.push(entry);
    }
    const records: KeyedRecord[] = [];
    const want: string[] = [];
    const purged: PurgedEntry[] = [];
    let bytes = 0;
    let done = 0;
    for (const segment of msg.segments) {
      if (done > 0 && (bytes >= RECORD_BYTES_PER_MESSAGE_MAX || records.length + want.length >= KEYS_PER_MESSAGE_MAX)) break;
      done += 1;
      const listed = new Map<string, number>();
      for (const entry of theirs.get(segment) ?? []) listed.set(entry.key, entry.hash);
      for (const key of digest.keysIn(segment)) {
        const record = local.get(key);
        assert(record !== undefined, 'the digest indexes stored keys');
        const hash = listed.get(key);
        if (hash !== undefined && hash === hashHalf(entryHash(key, record), msg.session)) continue;
        records.push({ key, record });
        bytes += estimateRecordBytes(key, record);
        if (hash !== undefined) want.push(key);
      }
      for (const [key, hash] of listed) {
        if (local.get(key) !== undefined) continue;
        const purgedHash = this.purged.get(key);
        if (purgedHash !== undefined && hashHalf(purgedHash, msg.session) === hash) purged.push({ key, hash: purgedHash });
        else want.push(key);
      }
    }
    actions.push({ type: 'send', to: from, msg: { type: 'segmentsReply', session: msg.session, epoch, done, records, want, purged } });
  }

  private answerPush(from: string, msg: Extract<SyncMessage, { type: 'push' }>, nowMs: number, epoch: number, local: SyncLocal, actions: SyncAction[]): void {
    if (msg.records.length > KEYS_PER_MESSAGE_MAX || msg.purged.length > KEYS_PER_MESSAGE_MAX) {
      actions.push({ type: 'send', to: from, msg: { type: 'refused', session: msg.session, reason: 'push too large' } });
      return;
    }
    if (!distinctKeys(msg.records.map((r) => r.key), msg.purged.map((e) => e.key))) {
      actions.push({ type: 'send', to: from, msg: { type: 'refused', session: msg.session, reason: 'a key named twice' } });
      return;
    }
    for (const { key, record } of msg.records) this.merge(key, record, nowMs, local, actions);
    // A purge decided on another epoch's member list is not taken (it may have missed a member).
    if (msg.epoch === epoch) for (const { key, hash } of msg.purged) this.purgeIfAt(key, hash, nowMs, local, actions);
    actions.push({ type: 'sendDurable', to: from, msg: { type: 'pushAck', session: msg.session } });
  }

  // ---------------------------------------------------------------- merging and purging

  private merge(key: string, incoming: VersionedRecord, nowMs: number, local: SyncLocal, actions: SyncAction[]): void {
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
  private purgeIfAt(key: string, hash: Hash64, nowMs: number, local: SyncLocal, actions: SyncAction[]): void {
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
    this.counters.tombstonesPurged += 1;
  }

  /** A member's round message carried `epoch`. */
  private notePeerEpoch(epoch: number): void {
    this.peerEpochMax = Math.max(this.peerEpochMax, epoch);
  }

  /** How far `peer` is known to hold what is held here, by matches made while both were at `epoch`. */
  private heldUpTo(peer: string, epoch: number): number {
    const p = this.peers.get(peer);
    return p !== undefined && p.heldEpoch === epoch ? p.heldUpTo : 0;
  }

  /**
   * Purges tombstones every current member (voters, learners, previous voters) is known to hold: a member
   * matched digests with this replica after the tombstone was stored here, both at this replica's current
   * epoch (a member list of another epoch may lack a member, e.g. a learner admitted since that still holds
   * what the tombstone superseded). Not at all while a member was seen at a higher epoch: this replica's
   * configuration is stale. Oldest first; stops at the first tombstone that is not yet stable or too young.
   */
  private purgeStable(nowMs: number, config: MembershipConfig, local: SyncLocal, actions: SyncAction[]): void {
    if (this.tombstones.size === 0 || !isMember(config, this.opts.self) || this.peerEpochMax > config.epoch) return;
    let stableUpTo = Infinity;
    for (const p of replicaIds(config)) {
      if (p !== this.opts.self) stableUpTo = Math.min(stableUpTo, this.heldUpTo(p, config.epoch));
    }
    for (const [key, t] of this.tombstones) {
      if (t.seq > stableUpTo || nowMs - t.atMs < this.opts.tombstoneGraceMs) break;
      const record = local.get(key);
      assert(record !== undefined && isDeleted(record), 'a waiting tombstone is stored');
      this.purge(key, record, nowMs, actions);
    }
  }
}

/** True when no key appears twice across the lists (a message naming a key twice is malformed). */
function distinctKeys(...lists: ReadonlyArray<readonly string[]>): boolean {
  const seen = new Set<string>();
  for (const list of lists) {
    for (const key of list) {
      if (seen.has(key)) return false;
      seen.add(key);
    }
  }
  return true;
}

/** Rough encoded size of a record (for limits and the budget; the transport measures the real bytes). */
export function estimateRecordBytes(key: string, record: VersionedRecord): number {
  let bytes = key.length + 8;
  for (const actor of Object.keys(record.context)) bytes += actor.length + 8;
  for (const s of record.siblings) bytes += s.dot.actor.length + 24 + (s.value === null ? 0 : s.value.length);
  return bytes;
}

/** Rough encoded size of a sync message. */
export function estimateSyncBytes(msg: SyncMessage): number {
  switch (msg.type) {
    case 'digest':
      return 24 + 4 * msg.nodes.length;
    case 'digestReply':
      return 24 + 4 * msg.hashes.length;
    case 'segments':
      return 12 + 4 * msg.segments.length + msg.entries.reduce((n, e) => n + e.key.length + 8, 0);
    case 'segmentsReply':
      return 12 + msg.records.reduce((n, r) => n + estimateRecordBytes(r.key, r.record), 0) + msg.want.reduce((n, k) => n + k.length + 2, 0) + msg.purged.reduce((n, e) => n + e.key.length + 12, 0);
    case 'push':
      return 12 + msg.records.reduce((n, r) => n + estimateRecordBytes(r.key, r.record), 0) + msg.purged.reduce((n, e) => n + e.key.length + 12, 0);
    case 'pushAck':
      return 8;
    case 'refused':
      return 8 + msg.reason.length;
  }
}

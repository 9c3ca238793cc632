// The initiator side of anti-entropy: the rounds started here, one at a time (which member, the top-down digest
// comparison, the segments and pushes, within a byte budget), and what each round taught about each member
// (the /status sync view, and how far a member is known to hold this replica's data: tombstone purging).
import { assert } from './assert.js';
import { type Hash64, entryHash, hashesEqual, segmentOf } from './digest.js';
import {
  type AntiEntropyOptions,
  DIGEST_NODES_PER_REQUEST_MAX,
  ENTRIES_PER_REQUEST_MAX,
  FAILED_PEER_BACKOFF_INTERVALS_MAX,
  KEYS_PER_MESSAGE_MAX,
  type PurgedEntry,
  RECORD_BYTES_PER_MESSAGE_MAX,
  SEGMENTS_PER_REQUEST_MAX,
  type SyncAction,
  type SyncEntry,
  type SyncLocal,
  type SyncMessage,
  distinctKeys,
  estimateRecordBytes,
  hashHalf,
} from './anti-entropy-messages.js';
import type { Tombstones } from './anti-entropy-tombstones.js';
import { type MembershipConfig, isMember, isRemoved, replicaIds } from './membership.js';
import type { KeyedRecord } from './messages.js';

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

export interface Session {
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

/** Runs the rounds started here; owns the running session, the byte budget and what is known of each member. */
export class Initiator {
  private readonly opts: AntiEntropyOptions;
  readonly sizeOf: (msg: SyncMessage) => number;
  private readonly peers = new Map<string, PeerState>();
  /** The round running (at most one). */
  private session: Session | undefined;
  /** The next session number (rounds and handovers share them). */
  private nextSessionId = 1;
  /** When the next round is due (undefined: before the first tick). */
  private nextRoundMs: number | undefined;
  /** Generic cell rate: the time the budget is spent up to. */
  private budgetAtMs = 0;
  readonly counters = { rounds: 0, matchedRounds: 0, failedRounds: 0, keysRepaired: 0, bytes: 0 };

  constructor(
    options: AntiEntropyOptions,
    sizeOf: (msg: SyncMessage) => number,
    private readonly tombstones: Tombstones,
  ) {
    this.opts = options;
    this.sizeOf = sizeOf;
  }

  /** Whether a round is running. */
  get running(): boolean {
    return this.session !== undefined;
  }

  /** A session number for a push outside any round (a hint handover). */
  allocateSessionId(): number {
    return this.nextSessionId++;
  }

  /** Ends the running round if its request timed out; sends its next request if that waited for the budget. */
  tickRound(nowMs: number, epoch: number, local: SyncLocal, actions: SyncAction[]): void {
    const s = this.session;
    if (s !== undefined && s.pending !== undefined && nowMs - s.sentAtMs >= this.opts.requestTimeoutMs) {
      this.endSession(s, nowMs, 'failed');
    }
    if (this.session !== undefined && this.session.pending === undefined) this.continueSession(this.session, nowMs, epoch, local, actions);
  }

  /** Starts a round with a live member when one is due (the first call only schedules it). */
  startDueRound(nowMs: number, random: number, config: MembershipConfig, isAlive: (peer: string) => boolean, local: SyncLocal, actions: SyncAction[]): void {
    if (this.nextRoundMs === undefined) this.nextRoundMs = nowMs + this.opts.intervalMs * (0.5 + random);
    if (this.session === undefined && nowMs >= this.nextRoundMs) {
      this.nextRoundMs = nowMs + this.opts.intervalMs * (0.5 + random);
      const peer = this.pickPeer(config, isAlive, random);
      if (peer !== undefined) this.startSession(peer, nowMs, config.epoch, local, actions);
    }
  }

  /** Starts a round with `peer` now (if none is running and both are members). */
  startRound(peer: string, nowMs: number, config: MembershipConfig, local: SyncLocal, actions: SyncAction[]): void {
    if (this.session === undefined && peer !== this.opts.self && isMember(config, peer) && isMember(config, this.opts.self)) {
      this.startSession(peer, nowMs, config.epoch, local, actions);
    }
  }

  /** Ends the running round (counted as failed). */
  abortRound(nowMs: number): void {
    if (this.session !== undefined) this.endSession(this.session, nowMs, 'failed');
  }

  /** Makes the next round due now. */
  wake(nowMs: number): void {
    this.nextRoundMs = Math.min(this.nextRoundMs ?? nowMs, nowMs);
  }

  /** When tickRound or startDueRound next has something to do (monotonic ms). */
  nextDeadlineMs(): number | undefined {
    const s = this.session;
    if (s !== undefined) return s.pending === undefined ? Math.max(this.budgetAtMs - BUDGET_BURST_MS, s.sentAtMs) : s.sentAtMs + this.opts.requestTimeoutMs;
    return this.nextRoundMs;
  }

  /** A reply on the sync protocol that is no handover's: the running round takes it if it answers its request. */
  onReplyMessage(
    from: string,
    msg: Extract<SyncMessage, { type: 'digestReply' | 'segmentsReply' | 'pushAck' | 'refused' }>,
    nowMs: number,
    config: MembershipConfig,
    local: SyncLocal,
    actions: SyncAction[],
  ): void {
    const s = this.session;
    if (s === undefined || s.id !== msg.session || s.peer !== from || s.pending === undefined) return; // late or duplicate
    // A reply from a peer that is no longer a member is not merged.
    if (!isMember(config, from) || isRemoved(config, from)) {
      this.endSession(s, nowMs, 'failed');
      return;
    }
    if (msg.type !== 'pushAck' && msg.type !== 'refused') {
      this.tombstones.notePeerEpoch(msg.epoch);
      if (msg.epoch !== config.epoch) {
        this.endSession(s, nowMs, 'failed'); // nothing is merged from another epoch (see the responder)
        return;
      }
    }
    this.onReply(s, msg, nowMs, config.epoch, local, actions);
  }

  /** The request of the running round could not be sent to `to`: end the round. */
  sendFailed(to: string, msg: SyncMessage, nowMs: number): void {
    const s = this.session;
    if (s !== undefined && s.peer === to && s.id === msg.session) this.endSession(s, nowMs, 'failed');
  }

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
      seqAtStart: this.tombstones.seq,
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
      const purgedHash = this.tombstones.purgedHash(key);
      if (local.get(key) === undefined && purgedHash !== undefined && hashesEqual(purgedHash, entryHash(key, record))) {
        s.purgedToReport.push({ key, hash: purgedHash }); // the peer still holds a tombstone purged here
        continue;
      }
      this.tombstones.merge(key, record, nowMs, local, actions);
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
      if (msg.epoch === epoch) this.tombstones.purgeIfAt(key, hash, nowMs, local, actions);
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

  /** How far `peer` is known to hold what is held here, by matches made while both were at `epoch`. */
  heldUpTo(peer: string, epoch: number): number {
    const p = this.peers.get(peer);
    return p !== undefined && p.heldEpoch === epoch ? p.heldUpTo : 0;
  }

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
}

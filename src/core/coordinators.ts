// The client coordinators: a write, read or probe coordinated here, from the request to the client's answer
// (quorum counting under the configuration in force, read repair, hints for replicas that missed a write).
import type { Action, ClientResult, LocalView, ProbeReply, ReadRequest, WriteRequest } from './actions.js';
import { InvalidConsistencyError, TooManySiblingsError } from './errors.js';
import { type MembershipConfig, isJoint, livePreviousVoters, quorumIds, replicaIds, voterIds } from './membership.js';
import type { Need, Op, ProbeOp, ReadOp, ReplicaHost, WriteOp } from './ops.js';
import { type ConsistencyLevel, majority, requiredAcks } from './quorum.js';
import { EMPTY_RECORD, SIBLINGS_PER_WRITE_MAX, type VersionedRecord, applyWrite, mergeRecords, recordsEqual } from './record.js';

/** Answered writes whose remaining acknowledgements are still awaited (for hints); beyond it, hint at once. */
export const AWAITING_ACKS_MAX = 20_000;

/** Coordinates client writes, reads and probes; owns the answered writes still awaiting acknowledgements. */
export class Coordinators {
  private readonly self: string;
  private readonly ops: Map<number, Op>;
  /**
   * Writes already answered whose other replicas have not all acknowledged: each silent one at the deadline
   * gets a hint. In deadline order (every deadline is its start plus the same request timeout).
   */
  private readonly awaitingAcks = new Map<number, { readonly key: string; readonly pending: Set<string>; readonly deadlineMs: number }>();

  constructor(
    private readonly host: ReplicaHost,
    /** Deadline for each client operation. */
    readonly requestTimeoutMs: number,
  ) {
    this.self = host.self;
    this.ops = host.ops;
  }

  /** Client write or delete coordinated here. Throws InvalidConsistencyError / NotMemberError / TooManySiblingsError. */
  write(request: WriteRequest, local: LocalView): { opId: number; actions: Action[] } {
    this.host.assertMember();
    this.need(request.level, 'w');
    const hlc = this.host.tickHlc(request.physicalMs);
    const previous = local.get(request.key) ?? EMPTY_RECORD;
    // Client contexts are tokens the cluster issued and authenticated (src/node/context-token.ts), so they
    // never cover a dot that was not written.
    const context = request.context ?? previous.context;
    const record = applyWrite(previous, context, request.dot, request.value, hlc, request.context === undefined ? [] : request.unseen);
    if (record.siblings.length > SIBLINGS_PER_WRITE_MAX) throw new TooManySiblingsError(record.siblings.length, SIBLINGS_PER_WRITE_MAX);
    const opId = this.host.allocateOpId();
    const op: WriteOp = {
      kind: 'write',
      key: request.key,
      record,
      dot: request.dot,
      level: request.level,
      accepted: request.accepted,
      reseatedAt: new Map(),
      acked: new Set(),
      unreachable: new Set(),
      sentTo: new Set([this.self]),
      deadlineMs: request.nowMs + (request.timeoutMs ?? this.requestTimeoutMs),
    };
    this.ops.set(opId, op);
    const epoch = this.host.epoch();
    const actions: Action[] = [
      { type: 'persist', key: request.key, record, then: { to: this.self, msg: { type: 'writeAck', opId, epoch } } },
    ];
    this.sendWrite(opId, op, actions);
    return { opId, actions };
  }

  /** Client read coordinated here: merges `level` replies from voters, then repairs stale replicas. */
  read(request: ReadRequest, local: LocalView): { opId: number; actions: Action[] } {
    this.host.assertMember();
    const need = this.need(request.level, 'r');
    const opId = this.host.allocateOpId();
    const op: ReadOp = {
      kind: 'read',
      key: request.key,
      level: request.level,
      replies: new Map(),
      unreachable: new Set(),
      askedTo: new Set([this.self]),
      deadlineMs: request.nowMs + this.requestTimeoutMs,
      merged: undefined,
      replied: false,
      required: need.voters,
    };
    const actions: Action[] = [];
    if (!quorumIds(this.host.config()).includes(this.self) && request.level === 'one') {
      // A learner serves r=one from its own full replica, without asking the voters.
      const record = local.get(request.key);
      actions.push({ type: 'reply', result: { type: 'read', opId, key: request.key, record, replies: 1, required: 1 }, afterFlush: true });
      return { opId, actions };
    }
    this.ops.set(opId, op);
    if (quorumIds(this.host.config()).includes(this.self)) op.replies.set(this.self, local.get(request.key));
    this.sendRead(opId, op, actions);
    this.progressRead(opId, op, local, actions);
    return { opId, actions };
  }

  /**
   * Asks every replica of the current configuration for its copy of `key` (its durability receipt: who holds
   * which version). Observes only: nothing is repaired. Ends when all answered or after `timeoutMs`.
   */
  probe(key: string, nowMs: number, local: LocalView, timeoutMs = this.requestTimeoutMs): { opId: number; actions: Action[] } {
    this.host.assertMember();
    const opId = this.host.allocateOpId();
    const replicas = replicaIds(this.host.config());
    const op: ProbeOp = { kind: 'probe', key, replicas, replies: new Map(), unavailable: new Set(), unreachable: new Set(), deadlineMs: nowMs + timeoutMs };
    const actions: Action[] = [];
    if (replicas.includes(this.self)) op.replies.set(this.self, local.get(key));
    this.ops.set(opId, op);
    for (const peer of replicas) {
      if (peer !== this.self) actions.push({ type: 'send', to: peer, msg: { type: 'read', opId, epoch: this.host.epoch(), key } });
    }
    this.progressProbe(opId, op, actions, false);
    return { opId, actions };
  }

  progressProbe(opId: number, op: ProbeOp, actions: Action[], expired: boolean): void {
    const answered = op.replies.size + op.unavailable.size + op.unreachable.size;
    if (!expired && answered < op.replicas.length) return;
    this.ops.delete(opId);
    const replicas = op.replicas.map((peer): ProbeReply => {
      if (op.replies.has(peer)) return { peer, state: 'replied', record: op.replies.get(peer) };
      const state = op.unavailable.has(peer) ? 'unavailable' : op.unreachable.has(peer) ? 'unreachable' : 'silent';
      return { peer, state, record: undefined };
    });
    actions.push({ type: 'reply', result: { type: 'probed', opId, key: op.key, replicas }, afterFlush: true });
  }

  /** Acks needed for `level` under the current configuration; throws InvalidConsistencyError if impossible. */
  private need(level: ConsistencyLevel, name: 'w' | 'r' = 'w'): Need {
    const config = this.host.config();
    const voters = requiredAcks(level, config.voters.length, name);
    // Every level that promises a majority (quorum, all, or a number that big) also needs the previous voters'
    // majority while joint: a joint phase may be abandoned back to them (withJointAborted).
    return { voters, previous: voters >= majority(config.voters.length) ? previousNeeded(config) : 0 };
  }

  /** Counts `answered` against `need`: met, or impossible given who is unreachable. */
  private count(answered: (p: string) => boolean, unreachable: Set<string>, need: Need): { met: boolean; possible: boolean; voters: number } {
    const config = this.host.config();
    const voters = voterIds(config);
    const previous = livePreviousVoters(config);
    const got = voters.filter(answered).length;
    const gotPrevious = previous.filter(answered).length;
    const canV = voters.filter((p) => answered(p) || !unreachable.has(p)).length;
    const canP = previous.filter((p) => answered(p) || !unreachable.has(p)).length;
    return {
      met: got >= need.voters && gotPrevious >= need.previous,
      possible: canV >= need.voters && canP >= need.previous,
      voters: got,
    };
  }

  sendWrite(opId: number, op: WriteOp, actions: Action[]): void {
    for (const peer of replicaIds(this.host.config())) {
      if (op.sentTo.has(peer)) continue;
      op.sentTo.add(peer);
      actions.push({ type: 'send', to: peer, msg: { type: 'write', opId, epoch: this.host.epoch(), key: op.key, record: op.record, dot: op.dot } });
    }
  }

  sendRead(opId: number, op: ReadOp, actions: Action[]): void {
    for (const peer of quorumIds(this.host.config())) {
      if (op.askedTo.has(peer)) continue;
      op.askedTo.add(peer);
      actions.push({ type: 'send', to: peer, msg: { type: 'read', opId, epoch: this.host.epoch(), key: op.key } });
    }
  }

  onWriteAck(from: string, opId: number, epoch: number): Action[] {
    const op = this.ops.get(opId);
    if (op === undefined) {
      const w = this.awaitingAcks.get(opId);
      if (w !== undefined) {
        w.pending.delete(from);
        if (w.pending.size === 0) this.awaitingAcks.delete(opId);
      }
      return [];
    }
    if (op.kind !== 'write') return [];
    if (epoch < (op.reseatedAt.get(from) ?? 0)) return []; // from a store this seat no longer names
    op.acked.add(from);
    const actions: Action[] = [];
    this.progressWrite(opId, op, actions);
    return actions;
  }

  progressWrite(opId: number, op: WriteOp, actions: Action[]): void {
    let need: Need;
    try {
      need = this.need(op.level);
    } catch (error) {
      if (!(error instanceof InvalidConsistencyError)) throw error;
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
      return;
    }
    const tally = this.count((p) => op.acked.has(p), op.unreachable, need);
    if (tally.met) {
      this.ops.delete(opId);
      this.awaitRemainingAcks(opId, op, actions);
      actions.push({
        type: 'reply',
        result: { type: 'written', opId, key: op.key, record: op.record, acks: tally.voters, required: need.voters },
      });
      return;
    }
    // Fail fast, but only once our own durable write is in, so the reply's ack count is the truth.
    const localPending = quorumIds(this.host.config()).includes(this.self) && !op.acked.has(this.self);
    if (!tally.possible && !localPending) {
      // The level cannot be met any more, but the write may still be accepted at its own lower level (a
      // client's w under wait=LEVEL): wait for that until it is met or impossible too (the deadline still holds).
      if (op.accepted !== undefined && !this.acceptedSettled(op)) return;
      this.ops.delete(opId);
      this.hintMissing(op, actions);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
    }
  }

  /** A finished write: replicas known unreachable get a hint now, silent ones at the deadline unless they ack. */
  private awaitRemainingAcks(opId: number, op: WriteOp, actions: Action[]): void {
    const pending = new Set<string>();
    for (const peer of op.sentTo) {
      if (peer === this.self || op.acked.has(peer)) continue;
      if (op.unreachable.has(peer) || this.awaitingAcks.size >= AWAITING_ACKS_MAX) actions.push({ type: 'hint', peer, key: op.key });
      else pending.add(peer);
    }
    if (pending.size > 0) this.awaitingAcks.set(opId, { key: op.key, pending, deadlineMs: op.deadlineMs });
  }

  /** A failed write may still have been stored somewhere: every replica that did not ack gets a hint. */
  hintMissing(op: WriteOp, actions: Action[]): void {
    for (const peer of op.sentTo) if (peer !== this.self && !op.acked.has(peer)) actions.push({ type: 'hint', peer, key: op.key });
  }

  /** A replica that is catching up cannot answer: count it as unreachable for this read. */
  onReadUnavailable(from: string, opId: number, local: LocalView): Action[] {
    const op = this.ops.get(opId);
    if (op?.kind === 'probe') return this.onProbeReply(opId, op, from, undefined, true);
    if (op === undefined || op.kind !== 'read' || op.replies.has(from)) return [];
    const actions: Action[] = [];
    op.unreachable.add(from);
    this.progressRead(opId, op, local, actions);
    if (op.replied && this.readSettled(op)) this.ops.delete(opId);
    return actions;
  }

  private onProbeReply(opId: number, op: ProbeOp, from: string, record: VersionedRecord | undefined, unavailable: boolean): Action[] {
    if (!op.replicas.includes(from) || op.replies.has(from) || op.unavailable.has(from)) return [];
    if (unavailable) op.unavailable.add(from);
    else op.replies.set(from, record);
    op.unreachable.delete(from);
    const actions: Action[] = [];
    this.progressProbe(opId, op, actions, false);
    return actions;
  }

  onReadReply(from: string, opId: number, record: VersionedRecord | undefined, local: LocalView): Action[] {
    const op = this.ops.get(opId);
    if (op?.kind === 'probe') {
      if (record !== undefined) this.host.observe(record);
      return this.onProbeReply(opId, op, from, record, false);
    }
    if (op === undefined || op.kind !== 'read' || !quorumIds(this.host.config()).includes(from)) return [];
    if (record !== undefined) this.host.observe(record);
    op.replies.set(from, record);
    const actions: Action[] = [];
    if (op.replied && op.merged !== undefined) {
      // A late reply: repair it if it is behind what the client was told, and learn from it.
      this.repairReplica(op.key, from, record, mergeRecords(op.merged, record ?? EMPTY_RECORD), local, actions);
    } else {
      this.progressRead(opId, op, local, actions);
    }
    if (this.readSettled(op)) this.ops.delete(opId);
    return actions;
  }

  progressRead(opId: number, op: ReadOp, local: LocalView, actions: Action[]): void {
    if (op.replied) return;
    let need: Need;
    try {
      need = this.need(op.level, 'r');
    } catch (error) {
      if (!(error instanceof InvalidConsistencyError)) throw error;
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
      return;
    }
    op.required = need.voters;
    const tally = this.count((p) => op.replies.has(p), op.unreachable, need);
    if (tally.met) {
      let merged: VersionedRecord | undefined;
      for (const record of op.replies.values()) {
        if (record !== undefined) merged = merged === undefined ? record : mergeRecords(merged, record);
      }
      op.replied = true;
      op.merged = merged ?? EMPTY_RECORD;
      // Our own copy was read from the store, staged writes included (the others answered once durable): the
      // client sees the answer once everything staged here so far is durable.
      actions.push({
        type: 'reply',
        result: { type: 'read', opId, key: op.key, record: merged, replies: op.replies.size, required: need.voters },
        afterFlush: true,
      });
      if (merged !== undefined) {
        for (const [peer, record] of op.replies) this.repairReplica(op.key, peer, record, merged, local, actions);
      }
      if (this.readSettled(op)) this.ops.delete(opId);
      return;
    }
    if (!tally.possible) {
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
    }
  }

  /** Every quorum member has answered or is known unreachable: nothing more to repair, forget the read. */
  readSettled(op: ReadOp): boolean {
    return quorumIds(this.host.config()).every((p) => op.replies.has(p) || op.unreachable.has(p));
  }

  /** Read repair: bring `peer` (or this replica) up to `merged` when its reply was missing something. */
  private repairReplica(
    key: string,
    peer: string,
    reply: VersionedRecord | undefined,
    merged: VersionedRecord,
    local: LocalView,
    actions: Action[],
  ): void {
    if (merged.siblings.length === 0 && Object.keys(merged.context).length === 0) return;
    if (peer === this.self) {
      const current = local.get(key) ?? EMPTY_RECORD;
      const next = mergeRecords(current, merged);
      if (!recordsEqual(next, current)) actions.push({ type: 'persist', key, record: next, then: undefined });
      return;
    }
    if (reply !== undefined && recordsEqual(mergeRecords(reply, merged), reply)) return;
    actions.push({ type: 'send', to: peer, msg: { type: 'repair', epoch: this.host.epoch(), key, record: merged } });
  }

  /** `from` refused our request with its newer configuration: adopt it and ask `from` again. */
  onStale(from: string, opId: number, config: MembershipConfig, chain: readonly MembershipConfig[], local: LocalView, nowMs: number): Action[] {
    const op = this.ops.get(opId);
    if (op?.kind === 'write') op.sentTo.delete(from);
    if (op?.kind === 'read') op.askedTo.delete(from);
    // maybeAdopt re-targets every operation (resending to `from` too); it fails config ops and syncs.
    const actions = this.host.maybeAdopt(config, local, nowMs, chain);
    if (actions.length === 0 && op !== undefined && this.ops.has(opId) && config.epoch <= this.host.epoch()) {
      // We had already moved to that configuration: just ask again under it.
      if (op.kind === 'write') this.sendWrite(opId, op, actions);
      else if (op.kind === 'read' && !op.replied) this.sendRead(opId, op, actions);
    }
    return actions;
  }

  /** Our configuration moved on (see ReplicaCore.retargetAll): re-send a write under it and count it again. */
  retargetWrite(opId: number, op: WriteOp, config: MembershipConfig, reseated: readonly string[], actions: Action[]): void {
    if (!this.host.seated(config) && !config.previousVoters.includes(this.self)) {
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
      return;
    }
    // An ack says "this seat's store holds it": one from a store the seat no longer names counts for
    // nothing (it would count a lost store as the new one). The new store gets the write instead.
    for (const p of reseated) {
      op.acked.delete(p);
      op.sentTo.delete(p);
      op.unreachable.delete(p);
      op.reseatedAt.set(p, config.epoch);
    }
    this.sendWrite(opId, op, actions);
    this.progressWrite(opId, op, actions);
  }

  /** Our configuration moved on: a read not answered yet starts over under it. */
  retargetRead(opId: number, op: ReadOp, config: MembershipConfig, local: LocalView, actions: Action[]): void {
    if (op.replied) return;
    // Replies are snapshots: one taken before the new configuration's sync says nothing about what the
    // sync brought. Start the collection over under the new configuration.
    op.replies.clear();
    op.unreachable.clear();
    op.askedTo.clear();
    op.askedTo.add(this.self);
    if (quorumIds(config).includes(this.self) && this.host.seated(config)) op.replies.set(this.self, local.get(op.key));
    this.sendRead(opId, op, actions);
    this.progressRead(opId, op, local, actions);
  }

  /** When the first answered write's remaining acknowledgements are due (undefined: none awaited). */
  nextAwaitingDeadlineMs(): number | undefined {
    const awaiting = this.awaitingAcks.values().next();
    return awaiting.done ? undefined : awaiting.value.deadlineMs;
  }

  /** Answered writes past their deadline: every replica still silent gets a hint. */
  tickAnswered(nowMs: number, actions: Action[]): void {
    for (const [opId, w] of this.awaitingAcks) {
      if (w.deadlineMs > nowMs) break;
      this.awaitingAcks.delete(opId);
      for (const peer of w.pending) actions.push({ type: 'hint', peer, key: w.key });
    }
  }

  /** The write of an answered operation could not be sent to `to`: it gets a hint now. */
  answeredWriteFailed(to: string, opId: number): Action[] {
    const w = this.awaitingAcks.get(opId);
    if (w === undefined || !w.pending.delete(to)) return [];
    if (w.pending.size === 0) this.awaitingAcks.delete(opId);
    return [{ type: 'hint', peer: to, key: w.key }];
  }

  /** The failure a write or read reports (its deadline passed, or its level cannot be met). */
  failure(opId: number, op: WriteOp | ReadOp): ClientResult {
    const voters = this.host.config().voters.length;
    const acks = op.kind === 'write' ? op.acked.size : op.replies.size;
    const what = op.kind === 'write' ? 'acknowledged the write' : 'answered the read';
    let required = 0;
    try {
      const need = this.need(op.level);
      required = need.voters;
    } catch (error) {
      if (!(error instanceof InvalidConsistencyError)) throw error;
    }
    const joint = isJoint(this.host.config()) ? ` and a majority of the ${this.host.config().previousVoters.length} previous voters` : '';
    return {
      type: 'failed',
      opId,
      code: 'quorum_unavailable',
      message: `only ${acks} of the ${required} required replicas${joint} ${what} (${voters} voters)`,
      acks,
      required,
      voters,
      ...(op.kind === 'write' ? this.acceptedAt(op) : {}),
    };
  }

  /** Whether a write's `accepted` level is met or can no longer be (no need to wait for it). */
  private acceptedSettled(op: WriteOp): boolean {
    if (op.accepted === undefined) return true;
    let need: Need;
    try {
      need = this.need(op.accepted);
    } catch (error) {
      if (!(error instanceof InvalidConsistencyError)) throw error;
      return true;
    }
    const tally = this.count((p) => op.acked.has(p), op.unreachable, need);
    return tally.met || !tally.possible;
  }

  /**
   * Whether a write that missed its level met its `accepted` level, counted like any write at that level: acks
   * of voters (and the previous voters' majority while joint). A learner's ack is not one: a quorum read never
   * asks a learner, so a write held by one voter and a learner is not on a read quorum.
   */
  private acceptedAt(op: WriteOp): { accepted?: { acks: number; required: number } } {
    if (op.accepted === undefined) return {};
    let need: Need;
    try {
      need = this.need(op.accepted);
    } catch (error) {
      if (!(error instanceof InvalidConsistencyError)) throw error;
      return {};
    }
    const tally = this.count((p) => op.acked.has(p), op.unreachable, need);
    return tally.met ? { accepted: { acks: tally.voters, required: need.voters } } : {};
  }
}

/**
 * Acks a quorum operation needs from the previous voters during a joint phase: a majority of them, counted
 * over all of them, but never more than are left (removing one of two voters): then every majority of the
 * previous voters includes all the ones left, so the stale readers that majority protects see the write.
 */
export function previousNeeded(config: MembershipConfig): number {
  if (!isJoint(config)) return 0;
  const left = livePreviousVoters(config).length;
  return Math.min(majority(config.previousVoters.length), left);
}

// The replica state machine: coordinates client writes, reads and deletes (any member may coordinate), serves
// replica requests, and adopts membership configurations. Pure: inputs are calls, outputs are Actions the
// runtime executes in order (persist, send, reply), like etcd-io/raft's Ready. Time comes in as `nowMs`.
import { assert } from './assert.js';
import { InvalidConsistencyError, MembershipChangeError, NotMemberError } from './errors.js';
import { type Hlc, HLC_ZERO, hlcCompare, hlcTick } from './hlc.js';
import { type MembershipConfig, isMember, isVoter, replicaIds, voterIds } from './membership.js';
import type { Message } from './messages.js';
import { type ConsistencyLevel, majority, requiredAcks } from './quorum.js';
import { EMPTY_RECORD, type VersionedRecord, applyWrite, mergeRecords, recordsEqual } from './record.js';
import type { Dot, VersionVector } from './vv.js';

/** Read access to this replica's store (including staged writes), passed in so the core does no IO. */
export interface LocalView {
  get(key: string): VersionedRecord | undefined;
}

export type ClientResult =
  | {
      readonly type: 'written';
      readonly opId: number;
      readonly key: string;
      readonly record: VersionedRecord;
      readonly acks: number;
      readonly required: number;
    }
  | {
      readonly type: 'read';
      readonly opId: number;
      readonly key: string;
      /** The merge of the replies (undefined when no replica has the key). */
      readonly record: VersionedRecord | undefined;
      readonly replies: number;
      readonly required: number;
    }
  | { readonly type: 'configCommitted'; readonly opId: number; readonly config: MembershipConfig }
  | {
      readonly type: 'failed';
      readonly opId: number;
      readonly code: 'quorum_unavailable' | 'membership_change_failed' | 'shutting_down';
      readonly message: string;
      readonly acks: number;
      readonly required: number;
      readonly voters: number;
    };

export type Action =
  /** Store `record` as the new state of `key`; once durable, deliver `then` (to may be this replica). */
  | { readonly type: 'persist'; readonly key: string; readonly record: VersionedRecord; readonly then: Envelope | undefined }
  /** Store the configuration durably and use it; once durable, deliver `then`. */
  | { readonly type: 'persistConfig'; readonly config: MembershipConfig; readonly then: Envelope | undefined }
  | { readonly type: 'send'; readonly to: string; readonly msg: Message }
  | { readonly type: 'reply'; readonly result: ClientResult };

export interface Envelope {
  readonly to: string;
  readonly msg: Message;
}

export interface ReplicaCoreOptions {
  /** This device's peer ID. */
  readonly self: string;
  /** The committed configuration loaded from storage (epoch 0 when not a member yet). */
  readonly config: MembershipConfig;
  /** Deadline for each client operation. */
  readonly requestTimeoutMs: number;
  /** First operation id; the runtime passes a random base so ids from before a restart cannot collide. */
  readonly opIdBase: number;
  readonly hlc?: Hlc;
}

export interface WriteRequest {
  readonly key: string;
  /** New value, or null to delete (tombstone). */
  readonly value: Uint8Array | null;
  /**
   * Causal context from an earlier read; the write supersedes exactly the versions it covers. Undefined for
   * a write without context: it then supersedes what this coordinator's local copy holds (versions written
   * concurrently elsewhere, not yet seen here, stay as siblings), so repeated blind writes do not pile up.
   */
  readonly context: VersionVector | undefined;
  readonly level: ConsistencyLevel;
  /** A fresh dot for this write, from the runtime's durable counter (never reused). */
  readonly dot: Dot;
  readonly nowMs: number;
  /** Wall-clock milliseconds for the hybrid logical clock. */
  readonly physicalMs: number;
}

export interface ReadRequest {
  readonly key: string;
  readonly level: ConsistencyLevel;
  readonly nowMs: number;
}

interface WriteOp {
  readonly kind: 'write';
  readonly key: string;
  readonly record: VersionedRecord;
  readonly level: ConsistencyLevel;
  required: number;
  readonly acked: Set<string>;
  readonly unreachable: Set<string>;
  readonly deadlineMs: number;
}

interface ReadOp {
  readonly kind: 'read';
  readonly key: string;
  readonly level: ConsistencyLevel;
  required: number;
  readonly replies: Map<string, VersionedRecord | undefined>;
  readonly unreachable: Set<string>;
  readonly deadlineMs: number;
  /** Set once the client has its answer; the op then lingers to repair late repliers until the deadline. */
  merged: VersionedRecord | undefined;
  replied: boolean;
}

interface ConfigOp {
  readonly kind: 'config';
  readonly previous: MembershipConfig;
  readonly proposed: MembershipConfig;
  readonly acked: Set<string>;
  readonly refused: Set<string>;
  readonly deadlineMs: number;
}

type Op = WriteOp | ReadOp | ConfigOp;

/** Upper bound on concurrently coordinated operations; the runtime refuses more (backpressure). */
export const OPS_IN_FLIGHT_MAX = 100_000;

export class ReplicaCore {
  readonly self: string;
  private configCurrent: MembershipConfig;
  private readonly requestTimeoutMs: number;
  private opIdNext: number;
  private hlcLast: Hlc;
  private readonly ops = new Map<number, Op>();

  constructor(options: ReplicaCoreOptions) {
    assert(options.requestTimeoutMs > 0, 'requestTimeoutMs is positive');
    assert(Number.isSafeInteger(options.opIdBase) && options.opIdBase >= 0, 'opIdBase is a safe integer');
    this.self = options.self;
    this.configCurrent = options.config;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.opIdNext = options.opIdBase + 1;
    this.hlcLast = options.hlc ?? HLC_ZERO;
  }

  get config(): MembershipConfig {
    return this.configCurrent;
  }

  get epoch(): number {
    return this.configCurrent.epoch;
  }

  get opsInFlight(): number {
    return this.ops.size;
  }

  /** The earliest operation deadline, so the runtime knows when to call tick(). */
  nextDeadlineMs(): number | undefined {
    let next: number | undefined;
    for (const op of this.ops.values()) {
      if (next === undefined || op.deadlineMs < next) next = op.deadlineMs;
    }
    return next;
  }

  /** Client write or delete coordinated here. Throws InvalidConsistencyError / NotMemberError. */
  write(request: WriteRequest, local: LocalView): { opId: number; actions: Action[] } {
    this.assertMember();
    const required = requiredAcks(request.level, this.configCurrent.voters.length, 'w');
    this.hlcLast = hlcTick(this.hlcLast, request.physicalMs);
    const previous = local.get(request.key) ?? EMPTY_RECORD;
    // Client contexts are tokens the cluster issued and authenticated (src/node/context-token.ts), so they
    // never cover a dot that was not written.
    const context = request.context ?? previous.context;
    const record = applyWrite(previous, context, request.dot, request.value, this.hlcLast);
    const opId = this.allocateOpId();
    const op: WriteOp = {
      kind: 'write',
      key: request.key,
      record,
      level: request.level,
      required,
      acked: new Set(),
      unreachable: new Set(),
      deadlineMs: request.nowMs + this.requestTimeoutMs,
    };
    this.ops.set(opId, op);
    const epoch = this.epoch;
    const actions: Action[] = [
      { type: 'persist', key: request.key, record, then: { to: this.self, msg: { type: 'writeAck', opId, epoch } } },
    ];
    for (const peer of replicaIds(this.configCurrent)) {
      if (peer === this.self) continue;
      actions.push({ type: 'send', to: peer, msg: { type: 'write', opId, epoch, key: request.key, record } });
    }
    return { opId, actions };
  }

  /** Client read coordinated here: merges `level` voter replies, then repairs stale replicas. */
  read(request: ReadRequest, local: LocalView): { opId: number; actions: Action[] } {
    this.assertMember();
    const required = requiredAcks(request.level, this.configCurrent.voters.length, 'r');
    const opId = this.allocateOpId();
    const op: ReadOp = {
      kind: 'read',
      key: request.key,
      level: request.level,
      required,
      replies: new Map(),
      unreachable: new Set(),
      deadlineMs: request.nowMs + this.requestTimeoutMs,
      merged: undefined,
      replied: false,
    };
    this.ops.set(opId, op);
    const actions: Action[] = [];
    if (isVoter(this.configCurrent, this.self)) op.replies.set(this.self, local.get(request.key));
    for (const peer of voterIds(this.configCurrent)) {
      if (peer === this.self) continue;
      actions.push({ type: 'send', to: peer, msg: { type: 'read', opId, epoch: this.epoch, key: request.key } });
    }
    this.progressRead(opId, op, local, actions);
    return { opId, actions };
  }

  /**
   * Proposes the next configuration (epoch + 1); committed once a majority of the current voters accepted it
   * durably. One change at a time. Throws MembershipChangeError when another change is in flight.
   */
  proposeConfig(proposed: MembershipConfig, nowMs: number): { opId: number; actions: Action[] } {
    this.assertMember();
    if (proposed.epoch !== this.epoch + 1 || proposed.clusterId !== this.configCurrent.clusterId) {
      throw new MembershipChangeError(`proposal for epoch ${proposed.epoch} does not follow epoch ${this.epoch}`);
    }
    for (const op of this.ops.values()) {
      if (op.kind === 'config') throw new MembershipChangeError('another membership change is in flight');
    }
    const previous = this.configCurrent;
    const opId = this.allocateOpId();
    this.ops.set(opId, {
      kind: 'config',
      previous,
      proposed,
      acked: new Set(),
      refused: new Set(),
      deadlineMs: nowMs + this.requestTimeoutMs,
    });
    const actions: Action[] = [];
    const proposal: Message = { type: 'configPropose', opId, epoch: previous.epoch, config: proposed };
    if (isVoter(previous, this.self)) {
      this.adopt(proposed);
      const ack: Message = { type: 'configAck', opId, epoch: proposed.epoch, accepted: true, config: undefined };
      actions.push({ type: 'persistConfig', config: proposed, then: { to: this.self, msg: ack } });
    }
    for (const peer of voterIds(previous)) {
      if (peer !== this.self) actions.push({ type: 'send', to: peer, msg: proposal });
    }
    return { opId, actions };
  }

  /** A message from another replica (or this one's own acknowledgement after a durable write). */
  step(from: string, msg: Message, local: LocalView): Action[] {
    switch (msg.type) {
      case 'write':
        return this.onWrite(from, msg, local);
      case 'writeAck':
        return this.onWriteAck(from, msg.opId);
      case 'read':
        return this.onRead(from, msg, local);
      case 'readReply':
        return this.onReadReply(from, msg.opId, msg.record, local);
      case 'repair':
        return this.onRepair(from, msg, local);
      case 'stale':
        return this.onStale(msg.opId, msg.config, local);
      case 'config':
        return this.maybeAdopt(msg.config);
      case 'configPropose':
        return this.onConfigPropose(from, msg.opId, msg.config);
      case 'configAck':
        return this.onConfigAck(from, msg.opId, msg.accepted, msg.config);
      case 'joinRequest':
      case 'joinReply':
      case 'transfer':
      case 'transferAck':
      case 'transferRequest':
        assert(false, `${msg.type} is handled by the runtime's join module, not the replica core`);
    }
  }

  /** The send of `msg` to `to` failed (no connection): count it against the operation at once. */
  sendFailed(to: string, msg: Message, local: LocalView): Action[] {
    if (!('opId' in msg)) return [];
    const op = this.ops.get(msg.opId);
    if (op === undefined) return [];
    const actions: Action[] = [];
    if (op.kind === 'write' && msg.type === 'write') {
      op.unreachable.add(to);
      this.progressWrite(msg.opId, op, actions);
    } else if (op.kind === 'read' && msg.type === 'read') {
      op.unreachable.add(to);
      this.progressRead(msg.opId, op, local, actions);
      if (op.replied && this.readSettled(op)) this.ops.delete(msg.opId);
    } else if (op.kind === 'config' && msg.type === 'configPropose') {
      op.refused.add(to);
      this.progressConfig(msg.opId, op, actions);
    }
    return actions;
  }

  /** Fails operations whose deadline has passed. */
  tick(nowMs: number): Action[] {
    const actions: Action[] = [];
    for (const [opId, op] of this.ops) {
      if (op.deadlineMs > nowMs) continue;
      this.ops.delete(opId);
      if (op.kind === 'read' && op.replied) continue;
      actions.push({ type: 'reply', result: this.failure(opId, op) });
    }
    return actions;
  }

  // ---------------------------------------------------------------- replica side

  private onWrite(from: string, msg: Extract<Message, { type: 'write' }>, local: LocalView): Action[] {
    const refusal = this.refuse(from, msg.opId, msg.epoch);
    if (refusal !== undefined) return refusal;
    this.observe(msg.record);
    const merged = mergeRecords(local.get(msg.key) ?? EMPTY_RECORD, msg.record);
    const ack: Message = { type: 'writeAck', opId: msg.opId, epoch: this.epoch };
    return [{ type: 'persist', key: msg.key, record: merged, then: { to: from, msg: ack } }];
  }

  private onRead(from: string, msg: Extract<Message, { type: 'read' }>, local: LocalView): Action[] {
    const refusal = this.refuse(from, msg.opId, msg.epoch);
    if (refusal !== undefined) return refusal;
    const reply: Message = { type: 'readReply', opId: msg.opId, epoch: this.epoch, key: msg.key, record: local.get(msg.key) };
    return [{ type: 'send', to: from, msg: reply }];
  }

  private onRepair(from: string, msg: Extract<Message, { type: 'repair' }>, local: LocalView): Action[] {
    if (!this.acceptsDataFrom(from, msg.epoch)) return [];
    this.observe(msg.record);
    const current = local.get(msg.key) ?? EMPTY_RECORD;
    const merged = mergeRecords(current, msg.record);
    if (recordsEqual(merged, current)) return [];
    return [{ type: 'persist', key: msg.key, record: merged, then: undefined }];
  }

  /** Refuses a request from an older epoch (with our configuration) or from a non-member; else undefined. */
  private refuse(from: string, opId: number, epoch: number): Action[] | undefined {
    if (this.epoch > 0 && epoch < this.epoch) {
      return [{ type: 'send', to: from, msg: { type: 'stale', opId, epoch: this.epoch, config: this.configCurrent } }];
    }
    if (!this.acceptsDataFrom(from, epoch)) return [];
    return undefined;
  }

  /** Members of our configuration, or anyone on a newer epoch than ours (we are behind). */
  private acceptsDataFrom(from: string, epoch: number): boolean {
    if (this.epoch === 0) return false;
    return epoch > this.epoch || isMember(this.configCurrent, from) || from === this.self;
  }

  // ---------------------------------------------------------------- coordinator side

  private onWriteAck(from: string, opId: number): Action[] {
    const op = this.ops.get(opId);
    if (op === undefined || op.kind !== 'write') return [];
    if (isVoter(this.configCurrent, from)) op.acked.add(from);
    const actions: Action[] = [];
    this.progressWrite(opId, op, actions);
    return actions;
  }

  private progressWrite(opId: number, op: WriteOp, actions: Action[]): void {
    if (op.acked.size >= op.required) {
      this.ops.delete(opId);
      actions.push({
        type: 'reply',
        result: { type: 'written', opId, key: op.key, record: op.record, acks: op.acked.size, required: op.required },
      });
      return;
    }
    const possible = voterIds(this.configCurrent).filter((p) => !op.unreachable.has(p) || op.acked.has(p)).length;
    // Fail fast, but only once our own durable write is in, so the reply's ack count is the truth.
    const localPending = isVoter(this.configCurrent, this.self) && !op.acked.has(this.self);
    if (possible < op.required && !localPending) {
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
    }
  }

  private onReadReply(from: string, opId: number, record: VersionedRecord | undefined, local: LocalView): Action[] {
    const op = this.ops.get(opId);
    if (op === undefined || op.kind !== 'read' || !isVoter(this.configCurrent, from)) return [];
    if (record !== undefined) this.observe(record);
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

  private progressRead(opId: number, op: ReadOp, local: LocalView, actions: Action[]): void {
    if (op.replied) return;
    if (op.replies.size >= op.required) {
      let merged: VersionedRecord | undefined;
      for (const record of op.replies.values()) {
        if (record !== undefined) merged = merged === undefined ? record : mergeRecords(merged, record);
      }
      op.replied = true;
      op.merged = merged ?? EMPTY_RECORD;
      actions.push({
        type: 'reply',
        result: { type: 'read', opId, key: op.key, record: merged, replies: op.replies.size, required: op.required },
      });
      if (merged !== undefined) {
        for (const [peer, record] of op.replies) this.repairReplica(op.key, peer, record, merged, local, actions);
      }
      if (this.readSettled(op)) this.ops.delete(opId);
      return;
    }
    const possible = voterIds(this.configCurrent).filter((p) => !op.unreachable.has(p) || op.replies.has(p)).length;
    if (possible < op.required) {
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
    }
  }

  /** Every voter has answered or is known unreachable: nothing more to repair, forget the read. */
  private readSettled(op: ReadOp): boolean {
    return voterIds(this.configCurrent).every((p) => op.replies.has(p) || op.unreachable.has(p));
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
    actions.push({ type: 'send', to: peer, msg: { type: 'repair', epoch: this.epoch, key, record: merged } });
  }

  private onStale(opId: number, config: MembershipConfig, local: LocalView): Action[] {
    const actions = this.maybeAdopt(config);
    const op = this.ops.get(opId);
    if (op === undefined || actions.length === 0) return actions;
    // Our configuration moved on: re-count the operation over the new voters and resend where needed.
    if (op.kind === 'write') {
      for (const p of [...op.acked]) if (!isVoter(this.configCurrent, p)) op.acked.delete(p);
      if (!this.retarget(opId, op, actions)) return actions;
      for (const peer of replicaIds(this.configCurrent)) {
        if (peer === this.self || op.acked.has(peer)) continue;
        actions.push({ type: 'send', to: peer, msg: { type: 'write', opId, epoch: this.epoch, key: op.key, record: op.record } });
      }
      if (!op.acked.has(this.self) && isVoter(this.configCurrent, this.self)) {
        const ack: Message = { type: 'writeAck', opId, epoch: this.epoch };
        actions.push({ type: 'persist', key: op.key, record: mergeRecords(local.get(op.key) ?? EMPTY_RECORD, op.record), then: { to: this.self, msg: ack } });
      }
      this.progressWrite(opId, op, actions);
    } else if (op.kind === 'read' && !op.replied) {
      for (const p of [...op.replies.keys()]) if (!isVoter(this.configCurrent, p)) op.replies.delete(p);
      if (!this.retarget(opId, op, actions)) return actions;
      for (const peer of voterIds(this.configCurrent)) {
        if (peer === this.self || op.replies.has(peer)) continue;
        actions.push({ type: 'send', to: peer, msg: { type: 'read', opId, epoch: this.epoch, key: op.key } });
      }
      this.progressRead(opId, op, local, actions);
    } else if (op.kind === 'config') {
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
    }
    return actions;
  }

  /** Recomputes `required` for the new configuration; fails the op (false) if the level became impossible. */
  private retarget(opId: number, op: WriteOp | ReadOp, actions: Action[]): boolean {
    try {
      op.required = requiredAcks(op.level, this.configCurrent.voters.length);
      return true;
    } catch (error) {
      if (!(error instanceof InvalidConsistencyError)) throw error;
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
      return false;
    }
  }

  private onConfigPropose(from: string, opId: number, config: MembershipConfig): Action[] {
    const current = this.configCurrent;
    const follows = config.clusterId === current.clusterId && config.epoch === current.epoch + 1 && current.epoch > 0;
    if (follows && isVoter(current, from)) {
      this.adopt(config);
      const ack: Message = { type: 'configAck', opId, epoch: config.epoch, accepted: true, config: undefined };
      return [{ type: 'persistConfig', config, then: { to: from, msg: ack } }];
    }
    const same = config.epoch === current.epoch && JSON.stringify(config) === JSON.stringify(current);
    const reply: Message = { type: 'configAck', opId, epoch: current.epoch, accepted: same, config: same ? undefined : current };
    return [{ type: 'send', to: from, msg: reply }];
  }

  private onConfigAck(from: string, opId: number, accepted: boolean, config: MembershipConfig | undefined): Action[] {
    const op = this.ops.get(opId);
    if (op === undefined || op.kind !== 'config' || !isVoter(op.previous, from)) return [];
    if (accepted) op.acked.add(from);
    else op.refused.add(from);
    const actions: Action[] = [];
    if (!accepted && config !== undefined) actions.push(...this.maybeAdopt(config));
    this.progressConfig(opId, op, actions);
    return actions;
  }

  private progressConfig(opId: number, op: ConfigOp, actions: Action[]): void {
    const needed = majority(op.previous.voters.length);
    if (op.acked.size >= needed) {
      this.ops.delete(opId);
      actions.push(...this.maybeAdopt(op.proposed));
      for (const peer of replicaIds(op.proposed)) {
        if (peer !== this.self) actions.push({ type: 'send', to: peer, msg: { type: 'config', epoch: op.proposed.epoch, config: op.proposed } });
      }
      actions.push({ type: 'reply', result: { type: 'configCommitted', opId, config: op.proposed } });
    } else if (op.previous.voters.length - op.refused.size < needed) {
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
    }
  }

  // ---------------------------------------------------------------- helpers

  private maybeAdopt(config: MembershipConfig): Action[] {
    if (config.epoch <= this.epoch) return [];
    if (this.epoch > 0 && config.clusterId !== this.configCurrent.clusterId) return [];
    this.adopt(config);
    return [{ type: 'persistConfig', config, then: undefined }];
  }

  private adopt(config: MembershipConfig): void {
    assert(config.epoch > this.epoch, 'configurations only move forward');
    this.configCurrent = config;
  }

  /** Adopts a configuration the runtime learned elsewhere (e.g. a join reply); returns the persist action. */
  adoptConfig(config: MembershipConfig): Action[] {
    return this.maybeAdopt(config);
  }

  private failure(opId: number, op: Op): ClientResult {
    const voters = this.configCurrent.voters.length;
    if (op.kind === 'config') {
      return {
        type: 'failed',
        opId,
        code: 'membership_change_failed',
        message: `membership change to epoch ${op.proposed.epoch} was not accepted by a majority of voters`,
        acks: op.acked.size,
        required: majority(op.previous.voters.length),
        voters: op.previous.voters.length,
      };
    }
    const acks = op.kind === 'write' ? op.acked.size : op.replies.size;
    const what = op.kind === 'write' ? 'acknowledged the write' : 'answered the read';
    return {
      type: 'failed',
      opId,
      code: 'quorum_unavailable',
      message: `only ${acks} of the ${op.required} required replicas ${what} (${voters} voters)`,
      acks,
      required: op.required,
      voters,
    };
  }

  private observe(record: VersionedRecord): void {
    for (const s of record.siblings) {
      if (hlcCompare(s.hlc, this.hlcLast) > 0) this.hlcLast = s.hlc;
    }
  }

  private allocateOpId(): number {
    assert(this.ops.size < OPS_IN_FLIGHT_MAX, 'the runtime bounds operations in flight');
    const opId = this.opIdNext;
    this.opIdNext += 1;
    return opId;
  }

  private assertMember(): void {
    if (this.epoch === 0 || !isMember(this.configCurrent, this.self)) throw new NotMemberError();
  }
}

// The data streams: a data sync (sync(): gather every record from enough previous voters, then push the union to
// the targets) and the full-data streams under it, sent in windows of batches and received with resume points.
import type { Action, ClientResult, FailureCode, LocalView, StreamProgress } from './actions.js';
import { DEFAULTS } from '../config/defaults.js';
import { assert } from './assert.js';
import { compareKeys } from './keys.js';
import { type MembershipConfig, isJoint, isMember, isRemoved, isVoter, livePreviousVoters, replacedIds, voterIds } from './membership.js';
import type { KeyedRecord, Message } from './messages.js';
import type { Op, ReplicaHost, SyncOp } from './ops.js';
import { majority } from './quorum.js';
import { EMPTY_RECORD, mergeRecords, recordsEqual } from './record.js';

/** An outgoing full-data stream: answering a sync's gather, or pushing to a sync target. */
interface OutStream {
  readonly peer: string;
  readonly opId: number;
  /** The sync op this push belongs to (pushes only). */
  readonly syncOpId: number | undefined;
  after: string | undefined;
  lastBatchDone: boolean;
  deadlineMs: number;
  keys: number;
  /** Not started yet: waiting for our configuration to be durable (see onTransferRequest). */
  waiting: boolean;
  /** Number of the last batch sent (0 before the first). */
  seq: number;
  /** Batches acknowledged; seq - acked.size are in flight (at most STREAM_WINDOW). */
  readonly acked: Set<number>;
  bytes: number;
  total: number | undefined;
  /** The receiver had everything up to this key from an earlier push (pushes only). */
  resumedAfter: string | undefined;
  readonly startedMs: number;
  lastMs: number;
}

/**
 * Batches of one data stream in flight at once: the sender reads and encodes the next batches while the
 * receiver merges and fsyncs one, so a bulk transfer is not one round trip plus one fsync per batch in series.
 * Each batch is acknowledged on its own (merging commutes, so order does not matter); a lost batch or ack
 * stalls the stream until its idle limit and the sync is retried. Measured (npm run bench:sync, 100,000 keys):
 * 3 in flight joined a device in 5.1–7.1 s at ~16k records/s, 6 in 4.8–5.0 s at ~24k (≤ 6 MiB in flight).
 */
const STREAM_WINDOW = 6;

function newOutStream(peer: string, opId: number, syncOpId: number | undefined, deadlineMs: number, waiting: boolean, nowMs: number): OutStream {
  return {
    peer,
    opId,
    syncOpId,
    after: undefined,
    lastBatchDone: false,
    deadlineMs,
    keys: 0,
    waiting,
    seq: 0,
    acked: new Set(),
    bytes: 0,
    total: undefined,
    resumedAfter: undefined,
    startedMs: nowMs,
    lastMs: nowMs,
  };
}

/** An incoming push being received (see onTransfer). */
interface InStream {
  readonly peer: string;
  readonly opId: number;
  readonly epoch: number;
  keys: number;
  bytes: number;
  total: number | undefined;
  resumedAfter: string | undefined;
  readonly startedMs: number;
  lastMs: number;
  /** Highest seq with every batch 1..seq received. */
  contiguous: number;
  /** Last key of each batch received beyond `contiguous` (undefined: an empty batch). */
  readonly pending: Map<number, string | undefined>;
  /** Seq of the batch marked done, once it arrived. */
  lastSeq: number | undefined;
  complete: boolean;
}

/** Batches a receiver holds out of order per push before it drops the stream (the window is STREAM_WINDOW). */
const IN_STREAM_PENDING_MAX = 64;
/** Outgoing data streams served at once; further requests are ignored (the requester retries later). */
export const OUT_STREAMS_MAX = 16;
/** Incoming streams remembered for /status. */
const IN_STREAMS_TRACKED_MAX = 16;
/** Per-sibling overhead assumed when sizing a batch (dot, HLC, framing). */
const SIBLING_OVERHEAD_BYTES = 64;

/** Runs data syncs and the streams under them; owns the streams in and out and how far pushes got here. */
export class DataStreams {
  private readonly self: string;
  private readonly ops: Map<number, Op>;
  private readonly outStreams = new Map<string, OutStream>();
  private readonly inStreams = new Map<string, InStream>();
  /** How far pushes of an epoch are durable here (see the transferProgress action). */
  private transferResume: { epoch: number; after: string } | undefined;
  /** The newest epoch whose configuration is durable here (a restart cannot fall behind it). */
  private durableEpoch: number;
  /** A data stream (sync) without progress for this long fails. */
  readonly transferIdleMs: number;
  private readonly transferBatchRecords: number;
  private readonly transferBatchBytes: number;

  constructor(
    private readonly host: ReplicaHost,
    options: { readonly epoch: number; readonly transferIdleMs?: number; readonly transferBatchRecords?: number; readonly transferBatchBytes?: number },
  ) {
    this.self = host.self;
    this.ops = host.ops;
    this.durableEpoch = options.epoch;
    this.transferIdleMs = options.transferIdleMs ?? DEFAULTS.transferIdleMs;
    this.transferBatchRecords = options.transferBatchRecords ?? DEFAULTS.transferBatchRecords;
    this.transferBatchBytes = options.transferBatchBytes ?? DEFAULTS.transferBatchBytes;
    assert(this.transferBatchRecords >= 1 && this.transferBatchBytes >= 1, 'transfer batches hold something');
  }

  /** Data streams in progress (and recently finished incoming ones), for /status. */
  streams(): StreamProgress[] {
    const out: StreamProgress[] = [];
    for (const s of this.inStreams.values()) {
      const { peer, epoch, keys, bytes, total, resumedAfter, startedMs, lastMs } = s;
      out.push({ peer, role: 'receiving', epoch, keys, bytes, total, resumedAfter, startedMs, lastMs, done: s.complete });
    }
    for (const s of this.outStreams.values()) {
      const { peer, keys, bytes, total, resumedAfter, startedMs, lastMs } = s;
      out.push({ peer, role: 'sending', epoch: this.host.epoch(), keys, bytes, total, resumedAfter, startedMs, lastMs, done: false });
    }
    return out;
  }

  /** After a restart: pushes of `epoch` were durable here up to `after` (the last transferProgress action). */
  setTransferResume(epoch: number, after: string): void {
    this.transferResume = { epoch, after };
  }

  /**
   * Starts a data sync (the runtime calls it after committing a joint configuration, or to fill a new learner).
   * Gathers every record from a majority of the quorum set the last epoch used (previous voters while joint,
   * else the voters), then pushes the union to targets: `targets` when given, else enough voters that every
   * record is durable on a majority of the new voters (this replica counting as one if it is a voter).
   */
  sync(nowMs: number, local: LocalView, targets?: readonly string[]): { opId: number; actions: Action[] } {
    this.host.assertMember();
    const config = this.host.config();
    const joint = isJoint(config);
    const source = joint ? config.previousVoters : voterIds(config);
    // Removed voters and replaced seats (their store is gone) are no source; this replica is one only if its
    // seat is not the one being replaced (assertMember: it holds its seat).
    const live = joint ? livePreviousVoters(config) : source.filter((p) => !isRemoved(config, p));
    const gatherFrom = live.filter((p) => p !== this.self);
    // Any n - majority(n) + 1 of the n source voters meet every majority of them, so their union holds every
    // write acknowledged before; and once they adopted this epoch, no majority of them is left on an older one.
    // n counts every source voter, also the gone ones: a write's majority may have included them.
    const gatherNeeded = Math.max(0, source.length - majority(source.length) + 1 - (live.includes(this.self) ? 1 : 0));
    let pushOrder: string[];
    let pushNeeded: number;
    if (targets !== undefined) {
      pushOrder = targets.filter((p) => p !== this.self);
      pushNeeded = pushOrder.length;
    } else {
      const voters = voterIds(config).filter((p) => p !== this.self);
      // New voters, and seats given to a new store, get the data first.
      const fresh = voters.filter((p) => !config.previousVoters.includes(p) || replacedIds(config).includes(p));
      pushOrder = [...fresh, ...voters.filter((p) => !fresh.includes(p))];
      pushNeeded = Math.max(0, majority(config.voters.length) - (isVoter(config, this.self) ? 1 : 0));
    }
    const opId = this.host.allocateOpId();
    const op: SyncOp = {
      kind: 'sync',
      epoch: config.epoch,
      phase: 'gather',
      gatherFrom,
      gatherNeeded,
      gathered: new Set(),
      gatherSeen: new Map(),
      gatherLast: new Map(),
      gatheredDurable: 0,
      gatherFailed: new Set(),
      pushOrder,
      pushNeeded,
      pushing: new Set(),
      pushed: new Set(),
      pushFailed: new Set(),
      deadlineMs: nowMs + this.transferIdleMs,
      progressed: false,
      keys: 0,
    };
    this.ops.set(opId, op);
    const actions: Action[] = [];
    for (const peer of gatherFrom) {
      // Announce the configuration first: a peer that missed the commit adopts it, then serves the request.
      actions.push({ type: 'send', to: peer, msg: { type: 'config', epoch: config.epoch, config } });
      // Nothing to gather when this replica alone is enough (2 -> 3 voters): a full stream would be wasted.
      if (gatherNeeded > 0) actions.push({ type: 'send', to: peer, msg: { type: 'transferRequest', opId, epoch: config.epoch } });
    }
    this.progressSync(opId, op, local, nowMs, actions);
    return { opId, actions };
  }

  onTransferRequest(from: string, msg: Extract<Message, { type: 'transferRequest' }>, local: LocalView, nowMs: number): Action[] {
    if (this.host.epoch() > msg.epoch) {
      const { config, chain } = this.host.configFor(msg.epoch);
      return [{ type: 'send', to: from, msg: { type: 'stale', opId: msg.opId, epoch: this.host.epoch(), config, ...(chain === undefined ? {} : { chain }) } }];
    }
    // A request from an epoch we have not adopted yet is dropped; the coordinator announced it and retries.
    // Only a seated replica whose seat is not being replaced has the data a gather counts on.
    if (this.host.epoch() !== msg.epoch || !isMember(this.host.config(), from) || !this.host.seated() || replacedIds(this.host.config()).includes(this.self)) return [];
    const key = streamKey(from, msg.opId);
    if (this.outStreams.has(key) || this.outStreams.size >= OUT_STREAMS_MAX) return [];
    const stream = newOutStream(from, msg.opId, undefined, nowMs + this.transferIdleMs, this.durableEpoch < this.host.epoch(), nowMs);
    this.outStreams.set(key, stream);
    const actions: Action[] = [];
    // Our snapshot must come after we stopped accepting older-epoch writes for good: if the configuration we
    // adopted were not durable yet, a crash could take us back to the older epoch, acking writes the
    // requester's gather already counted us for. So the first batch waits for that durability.
    if (!stream.waiting) this.fillWindow(stream, local, nowMs, actions);
    return actions;
  }

  /** Our persisted configuration of `epoch` is durable: start data streams that waited for it. */
  onConfigDurable(epoch: number, local: LocalView, nowMs: number): Action[] {
    if (epoch > this.durableEpoch) this.durableEpoch = epoch;
    const actions: Action[] = [];
    for (const stream of this.outStreams.values()) {
      if (stream.waiting && this.durableEpoch >= this.host.epoch()) {
        stream.waiting = false;
        this.fillWindow(stream, local, nowMs, actions);
      }
    }
    return actions;
  }

  onTransfer(from: string, msg: Extract<Message, { type: 'transfer' }>, local: LocalView, nowMs: number): Action[] {
    // Acks of a push count this seat as holding the data: only the seat's own store takes it.
    if (!this.host.acceptsDataFrom(from, msg.epoch) || !this.host.seated()) return [];
    const actions: Action[] = [];
    for (const { key, record } of msg.records) {
      this.host.observe(record);
      const current = local.get(key) ?? EMPTY_RECORD;
      const merged = mergeRecords(current, record);
      if (!recordsEqual(merged, current)) actions.push({ type: 'persist', key, record: merged, then: undefined });
    }
    const op = this.ops.get(msg.opId);
    if (op !== undefined && op.kind === 'sync' && op.gatherFrom.includes(from)) {
      actions.push({ type: 'flush', then: { to: from, msg: { type: 'transferAck', opId: msg.opId, epoch: this.host.epoch(), seq: msg.seq } } });
      // Every batch of a gather stream must arrive (in any order: merging commutes); a repeat is merged
      // (harmless) but not counted. The stream counts once its last batch and every one before it are in.
      let seen = op.gatherSeen.get(from);
      if (seen === undefined) {
        seen = new Set();
        op.gatherSeen.set(from, seen);
      }
      if (seen.has(msg.seq)) return actions;
      seen.add(msg.seq);
      if (msg.done) op.gatherLast.set(from, msg.seq);
      op.progressed = true;
      op.keys += msg.records.length;
      const last = op.gatherLast.get(from);
      if (last !== undefined && seen.size === last && !op.gathered.has(from)) {
        op.gathered.add(from);
        // Our store shows the merged records once the runtime ran the persists above: count the stream
        // when they are durable (a transferAck from ourselves), then push from the store.
        actions.push({ type: 'flush', then: { to: this.self, msg: { type: 'transferAck', opId: msg.opId, epoch: this.host.epoch(), seq: msg.seq } } });
      }
      return actions;
    }
    if (this.host.ownsOpId(msg.opId)) {
      // A late gather answer for a sync of ours that has ended: one source's data, not a push of everything.
      // Merged (above) and acknowledged, but never a resume point: a later push of the epoch would skip the
      // keys that only other sources held (a write acknowledged by them would be lost here).
      actions.push({ type: 'flush', then: { to: from, msg: { type: 'transferAck', opId: msg.opId, epoch: this.host.epoch(), seq: msg.seq } } });
      return actions;
    }
    // A push (a sync's data for a new voter, a learner or a failover target). Where an earlier push of this
    // epoch got to durably, the first ack tells the sender to skip ahead: an interrupted transfer resumes.
    const resume = this.transferResume?.epoch === msg.epoch ? this.transferResume.after : undefined;
    const lastKey = msg.records[msg.records.length - 1]?.key;
    const skipTo = msg.seq === 1 && !msg.done && resume !== undefined && (lastKey === undefined || compareKeys(resume, lastKey) > 0) ? resume : undefined;
    this.trackInStream(from, msg, lastKey, skipTo, nowMs, actions);
    actions.push({ type: 'flush', then: { to: from, msg: { type: 'transferAck', opId: msg.opId, epoch: this.host.epoch(), seq: msg.seq, ...(skipTo === undefined ? {} : { resumeAfter: skipTo }) } } });
    return actions;
  }

  /** Counts a push batch; emits transferProgress when the batches in a row from the first reach further. */
  private trackInStream(
    from: string,
    msg: Extract<Message, { type: 'transfer' }>,
    lastKey: string | undefined,
    skipTo: string | undefined,
    nowMs: number,
    actions: Action[],
  ): void {
    const trackKey = streamKey(from, msg.opId);
    let stream = this.inStreams.get(trackKey);
    if (stream === undefined) {
      stream = {
        peer: from,
        opId: msg.opId,
        epoch: msg.epoch,
        keys: 0,
        bytes: 0,
        total: undefined,
        resumedAfter: undefined,
        startedMs: nowMs,
        lastMs: nowMs,
        contiguous: 0,
        pending: new Map(),
        lastSeq: undefined,
        complete: false,
      };
      this.inStreams.set(trackKey, stream);
      while (this.inStreams.size > IN_STREAMS_TRACKED_MAX) this.inStreams.delete(this.inStreams.keys().next().value as string);
    }
    if (stream.complete || msg.seq <= stream.contiguous || stream.pending.has(msg.seq)) return; // a repeat
    if (stream.pending.size >= IN_STREAM_PENDING_MAX) return; // beyond any window a sender keeps: not counted
    if (skipTo !== undefined) stream.resumedAfter = skipTo;
    stream.keys += msg.records.length;
    for (const r of msg.records) stream.bytes += recordSizeEstimate(r);
    if (msg.total !== undefined) stream.total = msg.total;
    stream.lastMs = nowMs;
    if (msg.done) stream.lastSeq = msg.seq;
    stream.pending.set(msg.seq, lastKey);
    let reached: string | undefined;
    while (stream.pending.has(stream.contiguous + 1)) {
      stream.contiguous += 1;
      reached = stream.pending.get(stream.contiguous) ?? reached;
      stream.pending.delete(stream.contiguous);
    }
    if (reached !== undefined) {
      const current = this.transferResume?.epoch === stream.epoch ? this.transferResume.after : undefined;
      if (current === undefined || compareKeys(reached, current) > 0) {
        this.transferResume = { epoch: stream.epoch, after: reached };
        actions.push({ type: 'transferProgress', epoch: stream.epoch, after: reached });
      }
    }
    if (stream.lastSeq !== undefined && stream.contiguous >= stream.lastSeq) {
      stream.complete = true;
      actions.push({ type: 'transferComplete', epoch: stream.epoch, peer: stream.peer });
    }
  }

  onTransferAck(from: string, msg: Extract<Message, { type: 'transferAck' }>, local: LocalView, nowMs: number): Action[] {
    const { opId, seq } = msg;
    if (from === this.self) {
      const op = this.ops.get(opId);
      if (op === undefined || op.kind !== 'sync') return [];
      op.gatheredDurable += 1;
      const actions: Action[] = [];
      this.progressSync(opId, op, local, nowMs, actions);
      return actions;
    }
    const stream = this.outStreams.get(streamKey(from, opId));
    // An acknowledgement of a batch in flight moves the stream on (a duplicate or an unknown one does not).
    if (stream === undefined || seq < 1 || seq > stream.seq || stream.acked.has(seq)) return [];
    stream.acked.add(seq);
    stream.deadlineMs = nowMs + this.transferIdleMs;
    const resumeAfter = msg.resumeAfter;
    if (resumeAfter !== undefined && seq === 1 && stream.syncOpId !== undefined && stream.resumedAfter === undefined && !stream.lastBatchDone) {
      // The receiver holds every key up to resumeAfter from an earlier push of this epoch: skip them (the
      // batches already in flight are merged as no-ops there).
      if (stream.after === undefined || compareKeys(resumeAfter, stream.after) > 0) {
        stream.after = resumeAfter;
        stream.resumedAfter = resumeAfter;
      }
    }
    const actions: Action[] = [];
    const owner = stream.syncOpId === undefined ? undefined : this.ops.get(stream.syncOpId);
    if (owner !== undefined && owner.kind === 'sync') owner.progressed = true;
    if (!stream.lastBatchDone || stream.acked.size < stream.seq) {
      this.fillWindow(stream, local, nowMs, actions);
      return actions;
    }
    this.outStreams.delete(streamKey(from, opId));
    const op = stream.syncOpId === undefined ? undefined : this.ops.get(stream.syncOpId);
    if (op !== undefined && op.kind === 'sync' && stream.syncOpId !== undefined) {
      op.pushing.delete(from);
      op.pushed.add(from);
      op.progressed = true;
      this.progressSync(stream.syncOpId, op, local, nowMs, actions);
    }
    return actions;
  }

  /**
   * Sends batches until STREAM_WINDOW are in flight or the last one is out. A push sends its first batch
   * alone: the receiver's answer may move the stream ahead (resumeAfter), which batches in flight would waste.
   */
  private fillWindow(stream: OutStream, local: LocalView, nowMs: number, actions: Action[]): void {
    const window = stream.syncOpId !== undefined && stream.acked.size === 0 ? 1 : STREAM_WINDOW;
    while (!stream.lastBatchDone && stream.seq - stream.acked.size < window) this.sendBatch(stream, local, nowMs, actions);
  }

  private sendBatch(stream: OutStream, local: LocalView, nowMs: number, actions: Action[]): void {
    const entries = local.scan(stream.after, this.transferBatchRecords);
    const records: KeyedRecord[] = [];
    let bytes = 0;
    for (const entry of entries) {
      const size = recordSizeEstimate(entry);
      if (records.length > 0 && bytes + size > this.transferBatchBytes) break;
      records.push({ key: entry.key, record: entry.record });
      bytes += size;
    }
    const done = records.length === entries.length && entries.length < this.transferBatchRecords;
    stream.after = records[records.length - 1]?.key ?? stream.after;
    stream.lastBatchDone = done;
    stream.deadlineMs = nowMs + this.transferIdleMs;
    stream.keys += records.length;
    stream.bytes += bytes;
    stream.total = local.keyCount();
    stream.lastMs = nowMs;
    stream.seq += 1;
    const msg: Message = { type: 'transfer', opId: stream.opId, epoch: this.host.epoch(), seq: stream.seq, records, done, total: stream.total };
    // The batch is read from the store, staged writes included: sent once they are durable, so a receiver
    // (counting this stream toward a sync) never gets a record that a crash here could still undo.
    actions.push({ type: 'flush', then: { to: stream.peer, msg } });
  }

  private dropStream(stream: OutStream, local: LocalView, nowMs: number, actions: Action[]): void {
    this.outStreams.delete(streamKey(stream.peer, stream.opId));
    if (stream.syncOpId === undefined) return;
    const op = this.ops.get(stream.syncOpId);
    if (op === undefined || op.kind !== 'sync') return;
    op.pushing.delete(stream.peer);
    op.pushFailed.add(stream.peer);
    this.progressSync(stream.syncOpId, op, local, nowMs, actions);
  }

  progressSync(opId: number, op: SyncOp, local: LocalView, nowMs: number, actions: Action[]): void {
    if (op.phase === 'gather') {
      if (op.gatheredDurable >= op.gatherNeeded) {
        op.phase = 'push';
      } else {
        if (op.gatherFrom.length - op.gatherFailed.size < op.gatherNeeded) this.failSync(opId, op, 'gather', actions);
        return;
      }
    }
    if (op.pushed.size >= op.pushNeeded) {
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: { type: 'synced', opId, epoch: op.epoch, keys: op.keys } });
      return;
    }
    for (const peer of op.pushOrder) {
      if (op.pushed.size + op.pushing.size >= op.pushNeeded) break;
      if (op.pushing.has(peer) || op.pushed.has(peer) || op.pushFailed.has(peer)) continue;
      const key = streamKey(peer, opId);
      if (this.outStreams.has(key)) continue;
      const stream = newOutStream(peer, opId, opId, 0, false, nowMs);
      this.outStreams.set(key, stream);
      op.pushing.add(peer);
      this.fillWindow(stream, local, nowMs, actions);
    }
    if (op.pushed.size + op.pushing.size < op.pushNeeded) this.failSync(opId, op, 'push', actions);
  }

  private failSync(opId: number, op: SyncOp, phase: 'gather' | 'push', actions: Action[]): void {
    this.ops.delete(opId);
    for (const peer of op.pushing) this.outStreams.delete(streamKey(peer, opId));
    const done = phase === 'gather' ? op.gathered.size : op.pushed.size;
    const needed = phase === 'gather' ? op.gatherNeeded : op.pushNeeded;
    actions.push({
      type: 'reply',
      result: {
        type: 'failed',
        opId,
        code: 'sync_failed',
        message: `data sync for epoch ${op.epoch}: ${phase} reached ${done} of the ${needed} devices needed`,
        acks: done,
        required: needed,
        voters: this.host.config().voters.length,
      },
    });
  }

  /** Our configuration moved past a sync's epoch: the sync fails as a conflict (the runtime starts another). */
  retarget(opId: number, op: SyncOp, config: MembershipConfig, actions: Action[]): void {
    if (config.epoch > op.epoch) {
      this.ops.delete(opId);
      for (const peer of op.pushing) this.outStreams.delete(streamKey(peer, opId));
      actions.push({ type: 'reply', result: this.failure(opId, op, 'membership_conflict') });
    }
  }

  /** The earliest deadline of an outgoing stream (undefined: none). */
  nextDeadlineMs(): number | undefined {
    let next: number | undefined;
    for (const s of this.outStreams.values()) {
      if (next === undefined || s.deadlineMs < next) next = s.deadlineMs;
    }
    return next;
  }

  /** A batch of the stream `opId` to `to` could not be sent: the stream is dropped. */
  transferFailed(to: string, opId: number, local: LocalView, nowMs: number, actions: Action[]): void {
    const stream = this.outStreams.get(streamKey(to, opId));
    if (stream !== undefined) this.dropStream(stream, local, nowMs, actions);
  }

  /** Drops outgoing streams idle past their deadline. */
  dropIdle(nowMs: number, local: LocalView, actions: Action[]): void {
    for (const stream of [...this.outStreams.values()]) {
      if (stream.deadlineMs <= nowMs) this.dropStream(stream, local, nowMs, actions);
    }
  }

  /** Our configuration moved on: streams serving an older epoch's gather are moot (the requester moved on too). */
  dropMoot(config: MembershipConfig, local: LocalView, nowMs: number, actions: Action[]): void {
    for (const stream of [...this.outStreams.values()]) {
      if (stream.syncOpId === undefined && !isMember(config, stream.peer)) this.dropStream(stream, local, nowMs, actions);
    }
  }

  /** The failure a data sync reports (its deadline passed, or the configuration moved past its epoch). */
  failure(opId: number, op: SyncOp, code?: FailureCode): ClientResult {
    const voters = this.host.config().voters.length;
    return {
      type: 'failed',
      opId,
      code: code ?? 'sync_failed',
      message: code === 'membership_conflict' ? `the configuration moved past epoch ${op.epoch} during its sync` : `data sync for epoch ${op.epoch} made no progress in time`,
      acks: op.gathered.size + op.pushed.size,
      required: op.gatherNeeded + op.pushNeeded,
      voters,
    };
  }
}

function streamKey(peer: string, opId: number): string {
  return `${peer}\n${opId}`;
}

function recordSizeEstimate(entry: KeyedRecord): number {
  let bytes = entry.key.length + 16;
  for (const s of entry.record.siblings) bytes += (s.value?.length ?? 0) + SIBLING_OVERHEAD_BYTES;
  return bytes + Object.keys(entry.record.context).length * 32;
}

// A simulated cluster: ReplicaCore replicas with in-memory stores, executing the core's actions like the real
// runtime (persist visible at once, durable after a random delay, then its `then`), crashes and restarts.
import { unreachable } from '../../src/core/assert.js';
import { QuorumdError } from '../../src/core/errors.js';
import type { MembershipConfig } from '../../src/core/membership.js';
import type { KeyedRecord, Message } from '../../src/core/messages.js';
import type { ConsistencyLevel } from '../../src/core/quorum.js';
import { type VersionedRecord, lwwWinner } from '../../src/core/record.js';
import { type Action, type ClientResult, type Envelope, type LocalView, ReplicaCore } from '../../src/core/replica.js';
import { type Dot, type VersionVector, dotKey, vvGet } from '../../src/core/vv.js';
import { type GodView, type StoreView, fmtRecord } from './checker.js';
import { type NetworkConditions, Network } from './network.js';
import type { Rng } from './rng.js';
import type { Scheduler } from './scheduler.js';

/**
 * Deliberately broken runtimes, to prove the checker can fail:
 * - ackBeforeDurable: a persist's `then` (the acknowledgement) is delivered before the data is durable.
 * - lwwStore: the store keeps only the last-writer-wins sibling, silently dropping concurrent writes.
 * - reuseActor: after a crash the device keeps its peer ID as dot actor (with a durable counter). Its next
 *   write's context then covers its own writes lost in the crash, which erases them, and everything they had
 *   superseded, wherever they did arrive (see the KNOWN BUG test in test/core/replica.test.ts).
 * - volatileDotCounter: reuseActor, and the counter is recovered from the data, so lost dots are reissued.
 * The correct runtime modelled here takes a fresh actor (`<peer>~<boot>`) on every restart.
 */
export type SimBug = 'ackBeforeDurable' | 'lwwStore' | 'reuseActor' | 'volatileDotCounter';
export const SIM_BUGS: readonly SimBug[] = ['ackBeforeDurable', 'lwwStore', 'reuseActor', 'volatileDotCounter'];

export interface ClusterOptions {
  readonly nodeCount: number;
  readonly requestTimeoutMs: number;
  /** Persist-to-durable delay range (fsync); durability is in persist order per replica. */
  readonly durabilityMs: readonly [number, number];
  /** How long a failed send (no connection) takes to be reported to the core. */
  readonly sendFailMs: readonly [number, number];
  /** Per-node physical clock offset range, for the HLC. */
  readonly clockSkewMs: number;
  readonly network: NetworkConditions;
  readonly bug: SimBug | undefined;
}

export type ClientOutcome =
  | { readonly type: 'written'; readonly dot: Dot; readonly record: VersionedRecord; readonly required: number }
  | { readonly type: 'read'; readonly record: VersionedRecord | undefined; readonly required: number }
  | { readonly type: 'failed'; readonly message: string }
  /** Refused at submission: invalid level, or the coordinator is down. */
  | { readonly type: 'rejected'; readonly error: string }
  /** The coordinator crashed before answering: the outcome is unknown. */
  | { readonly type: 'lost' };

export interface WriteSubmission {
  readonly key: string;
  readonly value: Uint8Array | null;
  /** From an earlier read or write reply; {} for a blind write; undefined: the coordinator's local context. */
  readonly context: VersionVector | undefined;
  /** Sibling dots of the read the context came from (what the client saw), for the god view. */
  readonly seen: readonly string[];
  readonly level: ConsistencyLevel;
}

interface PendingClientOp {
  readonly kind: 'write' | 'read';
  readonly key: string;
  readonly level: ConsistencyLevel;
  readonly dot: Dot | undefined;
  readonly ackedBefore: readonly string[];
  readonly done: (outcome: ClientOutcome) => void;
}

class SimReplica implements LocalView {
  core: ReplicaCore;
  up = true;
  incarnation = 0;
  store = new Map<string, VersionedRecord>();
  readonly durable = new Map<string, VersionedRecord>();
  lastDurableAt = 0;
  /** The actor of this boot's dots, and the runtime's durable counter for it. */
  actor: string;
  dotCounter = 0;
  tickAt: number | undefined;
  readonly clientOps = new Map<number, PendingClientOp>();

  constructor(
    readonly id: string,
    readonly index: number,
    readonly skewMs: number,
    core: ReplicaCore,
  ) {
    this.core = core;
    this.actor = id;
  }

  get(key: string): VersionedRecord | undefined {
    return this.store.get(key);
  }

  scan(after: string | undefined, limit: number): KeyedRecord[] {
    const keys = [...this.store.keys()].filter((k) => after === undefined || k > after).sort();
    return keys.slice(0, limit).map((key) => ({ key, record: this.store.get(key) as VersionedRecord }));
  }
}

export class Cluster implements StoreView {
  readonly voters: readonly string[];
  readonly config: MembershipConfig;
  readonly network: Network<Message>;
  readonly stats = { crashes: 0, restarts: 0, sendFailures: 0, persists: 0, maxSiblings: 0 };
  private readonly replicas = new Map<string, SimReplica>();

  constructor(
    private readonly rng: Rng,
    private readonly scheduler: Scheduler,
    private readonly options: ClusterOptions,
    private readonly god: GodView,
    netRng: Rng,
  ) {
    this.voters = Array.from({ length: options.nodeCount }, (_, i) => `n${i + 1}`);
    this.config = {
      clusterId: 'sim',
      epoch: 1,
      voters: this.voters.map((peerId) => ({ peerId, addrs: [] })),
      learners: [],
      removed: [],
      previousVoters: [],
    };
    this.voters.forEach((id, index) => {
      const skew = rng.int(-options.clockSkewMs, options.clockSkewMs);
      this.replicas.set(id, new SimReplica(id, index, skew, this.newCore(id, index, 0)));
    });
    this.network = new Network<Message>(netRng, scheduler, { ...options.network }, (from, to, msg) => this.deliver(from, to, msg), describeMessage);
  }

  // ------------------------------------------------------------------ StoreView

  visible(node: string, key: string): VersionedRecord | undefined {
    return this.replica(node).store.get(key);
  }

  durable(node: string, key: string): VersionedRecord | undefined {
    return this.replica(node).durable.get(key);
  }

  isUp(node: string): boolean {
    return this.replica(node).up;
  }

  // ------------------------------------------------------------------ clients

  submitWrite(coordinator: string, request: WriteSubmission, done: (outcome: ClientOutcome) => void): void {
    const r = this.replica(coordinator);
    if (!r.up) return done({ type: 'rejected', error: 'coordinator down' });
    const dot: Dot = { actor: r.actor, counter: r.dotCounter + 1 };
    const now = this.scheduler.now;
    const before = r.store.get(request.key);
    let out: { opId: number; actions: Action[] };
    try {
      const { key, value, context, level } = request;
      out = r.core.write({ key, value, context, level, dot, nowMs: now, physicalMs: now + r.skewMs }, r);
    } catch (error) {
      if (error instanceof QuorumdError) return done({ type: 'rejected', error: error.code });
      throw error;
    }
    r.dotCounter = dot.counter;
    // Without a context the write supersedes what the coordinator held: that is what it "saw".
    const seen = request.context === undefined ? (before?.siblings ?? []).map((s) => dotKey(s.dot)) : request.seen;
    const first = out.actions[0];
    const sibling = first?.type === 'persist' ? first.record.siblings.find((s) => dotKey(s.dot) === dotKey(dot)) : undefined;
    if (sibling === undefined) throw new Error(`write() at ${r.id} did not start by persisting its new dot ${dotKey(dot)}`);
    this.god.writeIssued(r.id, request.key, dot, request.value, sibling.hlc, seen);
    this.scheduler.trace.add(`  write ${dotKey(dot)} op=${out.opId} ${request.key} level=${String(request.level)} ctx=${request.context === undefined ? '(local)' : fmtCtx(request.context)}`);
    r.clientOps.set(out.opId, { kind: 'write', key: request.key, level: request.level, dot, ackedBefore: [], done });
    this.execute(r, out.actions);
  }

  submitRead(coordinator: string, key: string, level: ConsistencyLevel, done: (outcome: ClientOutcome) => void): void {
    const r = this.replica(coordinator);
    if (!r.up) return done({ type: 'rejected', error: 'coordinator down' });
    const ackedBefore = this.god.ackedQuorumDots(key);
    let out: { opId: number; actions: Action[] };
    try {
      out = r.core.read({ key, level, nowMs: this.scheduler.now }, r);
    } catch (error) {
      if (error instanceof QuorumdError) return done({ type: 'rejected', error: error.code });
      throw error;
    }
    this.scheduler.trace.add(`  read op=${out.opId} ${key} level=${String(level)}`);
    r.clientOps.set(out.opId, { kind: 'read', key, level, dot: undefined, ackedBefore, done });
    this.execute(r, out.actions);
  }

  // ------------------------------------------------------------------ faults

  crash(node: string): void {
    const r = this.replica(node);
    if (!r.up) return;
    this.stats.crashes += 1;
    r.up = false;
    r.incarnation += 1;
    r.tickAt = undefined;
    const touched = new Set([...r.store.keys()]);
    r.store = new Map(r.durable);
    for (const key of touched) this.god.changed(node, key, false);
    this.god.crashed(node);
    const ops = [...r.clientOps.values()];
    r.clientOps.clear();
    for (const op of ops) op.done({ type: 'lost' });
  }

  restart(node: string): void {
    const r = this.replica(node);
    if (r.up) return;
    this.stats.restarts += 1;
    r.up = true;
    r.lastDurableAt = this.scheduler.now;
    r.core = this.newCore(r.id, r.index, r.incarnation);
    if (this.options.bug === 'volatileDotCounter') {
      r.dotCounter = Math.max(0, ...[...r.durable.values()].map((rec) => vvGet(rec.context, r.id)));
    } else if (this.options.bug !== 'reuseActor') {
      r.actor = `${r.id}~${r.incarnation}`;
      r.dotCounter = 0;
    }
  }

  // ------------------------------------------------------------------ the runtime

  private newCore(id: string, index: number, incarnation: number): ReplicaCore {
    const opIdBase = (index + 1) * 1_000_000_000 + incarnation * 1_000_000;
    return new ReplicaCore({ self: id, config: this.config, requestTimeoutMs: this.options.requestTimeoutMs, opIdBase });
  }

  private replica(id: string): SimReplica {
    const r = this.replicas.get(id);
    if (r === undefined) throw new Error(`no replica ${id}`);
    return r;
  }

  private deliver(from: string, to: string, msg: Message): void {
    const r = this.replica(to);
    if (!r.up) return;
    this.execute(r, r.core.step(from, msg, r, this.scheduler.now));
  }

  /** Runs actions in order, as the runtime must. */
  private execute(r: SimReplica, actions: readonly Action[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'persist':
          this.persist(r, action.key, action.record, action.then);
          break;
        case 'persistConfig':
          // The configuration never changes in this simulation; keep the ordering contract anyway.
          this.persist(r, undefined, undefined, action.then);
          break;
        case 'persistAcceptor':
        case 'flush':
          this.persist(r, undefined, undefined, action.then);
          break;
        case 'send':
          this.send(r, action.to, action.msg);
          break;
        case 'reply':
          this.reply(r, action.result);
          break;
        default:
          unreachable(action);
      }
    }
    this.ensureTick(r);
  }

  /** Applies at once (the next local.get sees it); durable later, in order; then delivers `then`. */
  private persist(r: SimReplica, key: string | undefined, record: VersionedRecord | undefined, then: Envelope | undefined): void {
    let stored = record;
    if (key !== undefined && record !== undefined) {
      if (this.options.bug === 'lwwStore' && record.siblings.length > 1) {
        const winner = lwwWinner(record);
        stored = { context: record.context, siblings: winner === undefined ? [] : [winner] };
      }
      r.store.set(key, stored as VersionedRecord);
      this.god.changed(r.id, key, false);
      this.stats.persists += 1;
      this.stats.maxSiblings = Math.max(this.stats.maxSiblings, (stored as VersionedRecord).siblings.length);
    }
    const at = Math.max(this.scheduler.now + this.rng.int(...this.options.durabilityMs), r.lastDurableAt);
    r.lastDurableAt = at;
    const incarnation = r.incarnation;
    const early = this.options.bug === 'ackBeforeDurable';
    if (early && then !== undefined) this.deliverThen(r, then);
    this.scheduler.schedule(at, `durable ${r.id} ${key ?? 'config'} ${fmtRecord(stored)}`, () => {
      if (r.incarnation !== incarnation) return; // lost in a crash
      if (key !== undefined && stored !== undefined) {
        r.durable.set(key, stored);
        this.god.changed(r.id, key, true);
      }
      if (!early && then !== undefined) this.deliverThen(r, then);
    });
  }

  private deliverThen(r: SimReplica, then: Envelope): void {
    if (then.to === r.id) this.execute(r, r.core.step(r.id, then.msg, r, this.scheduler.now));
    else this.send(r, then.to, then.msg);
  }

  private send(r: SimReplica, to: string, msg: Message): void {
    const target = this.replicas.get(to);
    if (target !== undefined && target.up && this.network.send(r.id, to, msg)) return;
    this.stats.sendFailures += 1;
    const incarnation = r.incarnation;
    const at = this.scheduler.now + this.rng.int(...this.options.sendFailMs);
    this.scheduler.schedule(at, `sendFailed ${r.id}->${to} ${describeMessage(msg)}`, () => {
      if (r.incarnation !== incarnation || !r.up) return;
      this.execute(r, r.core.sendFailed(to, msg, r, this.scheduler.now));
    });
  }

  private reply(r: SimReplica, result: ClientResult): void {
    if (result.type === 'configCommitted' || result.type === 'synced') return;
    const op = r.clientOps.get(result.opId);
    if (op === undefined) return;
    r.clientOps.delete(result.opId);
    this.scheduler.trace.add(`  reply ${r.id} op=${result.opId} ${result.type}`);
    if (result.type === 'written') {
      if (op.dot === undefined) throw new Error(`'written' reply to a read (op ${result.opId} at ${r.id})`);
      this.god.writeAcked(op.dot, op.level, result);
      op.done({ type: 'written', dot: op.dot, record: result.record, required: result.required });
    } else if (result.type === 'read') {
      this.god.readReturned(op.key, op.level, result, op.ackedBefore, `${r.id} op ${result.opId}`);
      op.done({ type: 'read', record: result.record, required: result.required });
    } else {
      op.done({ type: 'failed', message: result.message });
    }
  }

  /** Schedules tick() at the core's next deadline (one pending tick per replica, the earliest). */
  private ensureTick(r: SimReplica): void {
    if (!r.up) return;
    const deadline = r.core.nextDeadlineMs();
    if (deadline === undefined || (r.tickAt !== undefined && r.tickAt <= deadline)) return;
    r.tickAt = deadline;
    const incarnation = r.incarnation;
    this.scheduler.schedule(deadline, `tick ${r.id}`, () => {
      if (r.incarnation !== incarnation || r.tickAt !== deadline) return;
      r.tickAt = undefined;
      this.execute(r, r.core.tick(this.scheduler.now, r));
    });
  }
}

function fmtCtx(vv: VersionVector): string {
  return Object.keys(vv)
    .sort()
    .map((a) => `${a}:${vv[a]}`)
    .join(',');
}

export function describeMessage(msg: Message): string {
  switch (msg.type) {
    case 'write':
    case 'repair':
      return `${msg.type}${msg.type === 'write' ? ` op=${msg.opId}` : ''} ${msg.key} ${fmtRecord(msg.record)}`;
    case 'readReply':
      return `readReply op=${msg.opId} ${msg.key} ${fmtRecord(msg.record)}`;
    case 'read':
      return `read op=${msg.opId} ${msg.key}`;
    case 'writeAck':
      return `writeAck op=${msg.opId}`;
    default:
      return `${msg.type} e=${msg.epoch}`;
  }
}

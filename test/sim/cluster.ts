// A simulated cluster: ReplicaCore replicas with in-memory stores, executing the core's actions like the real
// runtime (persist visible at once, durable after a random delay, then its `then`), crashes and restarts.
import { unreachable } from '../../src/core/assert.js';
import { QuorumdError } from '../../src/core/errors.js';
import { AntiEntropy, type SyncAction, type SyncMessage } from '../../src/core/anti-entropy.js';
import { MerkleDigest } from '../../src/core/digest.js';
import { type MembershipConfig, NO_CONFIG, quorumIds } from '../../src/core/membership.js';
import type { AcceptorState } from '../../src/core/paxos.js';
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
 * - skipSync: a voter change is finalized without its data sync, so new voters count before holding the data.
 * The correct runtime modelled here takes a fresh actor (`<peer>~<boot>`) on every restart.
 */
export type SimBug = 'ackBeforeDurable' | 'lwwStore' | 'reuseActor' | 'volatileDotCounter' | 'skipSync';
export const SIM_BUGS: readonly SimBug[] = ['ackBeforeDurable', 'lwwStore', 'reuseActor', 'volatileDotCounter', 'skipSync'];

export interface ClusterOptions {
  /** Founding voters n1..nN. */
  readonly nodeCount: number;
  /** Further devices n(N+1).. that start outside the cluster (epoch 0) and may be added by membership changes. */
  readonly spares: number;
  readonly requestTimeoutMs: number;
  /** Persist-to-durable delay range (fsync); durability is in persist order per replica. */
  readonly durabilityMs: readonly [number, number];
  /** How long a failed send (no connection) takes to be reported to the core. */
  readonly sendFailMs: readonly [number, number];
  /** Per-node physical clock offset range, for the HLC. */
  readonly clockSkewMs: number;
  readonly network: NetworkConditions;
  readonly bug: SimBug | undefined;
  /** Anti-entropy rounds (src/core/anti-entropy.ts) run on every device, this often (virtual ms); 0: off. */
  readonly antiEntropyIntervalMs: number;
}

/** What the simulated network carries: replica messages, and sync-protocol messages wrapped. */
export type SimMessage = Message | { readonly type: 'sync'; readonly inner: SyncMessage };

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
  /** The anti-entropy digest (rebuilt from the durable store at every restart) and the AE state machine. */
  digest = new MerkleDigest();
  ae: AntiEntropy | undefined;
  aeTickAt: number | undefined;
  readonly clientOps = new Map<number, PendingClientOp>();
  /** Membership operations coordinated here (proposals and syncs), by opId. */
  readonly membershipOps = new Map<number, (result: ClientResult | undefined) => void>();
  /** What a restart comes back with: the durable configuration and Paxos acceptor state. */
  durableConfig: MembershipConfig;
  durableAcceptor: AcceptorState | undefined = undefined;
  /** The durable resume point of data-sync pushes (the runtime's META_TRANSFER_RESUME). */
  durableResume: { epoch: number; after: string } | undefined = undefined;

  constructor(
    readonly id: string,
    readonly index: number,
    readonly skewMs: number,
    config: MembershipConfig,
  ) {
    this.durableConfig = config;
    this.core = undefined as unknown as ReplicaCore; // set by the cluster right after construction
    this.actor = id;
  }

  get(key: string): VersionedRecord | undefined {
    return this.store.get(key);
  }

  scan(after: string | undefined, limit: number): KeyedRecord[] {
    const keys = [...this.store.keys()].filter((k) => after === undefined || k > after).sort();
    return keys.slice(0, limit).map((key) => ({ key, record: this.store.get(key) as VersionedRecord }));
  }

  keyCount(): number {
    return this.store.size;
  }
}

export class Cluster implements StoreView {
  /** Every simulated device: founding voters first, then spares. */
  readonly nodes: readonly string[];
  readonly founders: readonly string[];
  readonly config: MembershipConfig;
  readonly network: Network<SimMessage>;
  readonly stats = { crashes: 0, restarts: 0, sendFailures: 0, persists: 0, maxSiblings: 0, hints: 0, resumePoints: 0, resumedPushes: 0 };
  /** Anti-entropy ticks are scheduled up to this virtual time (the sim sets it per phase). */
  aeUntilMs = 0;
  /** Called after every anti-entropy tick (the final phase watches for convergence). */
  onAeTick: (() => void) | undefined;
  private readonly replicas = new Map<string, SimReplica>();

  constructor(
    private readonly rng: Rng,
    private readonly scheduler: Scheduler,
    private readonly options: ClusterOptions,
    private readonly god: GodView,
    netRng: Rng,
  ) {
    this.nodes = Array.from({ length: options.nodeCount + options.spares }, (_, i) => `n${i + 1}`);
    this.founders = this.nodes.slice(0, options.nodeCount);
    this.config = {
      clusterId: 'sim',
      epoch: 1,
      voters: this.founders.map((peerId) => ({ peerId, addrs: [] })),
      learners: [],
      removed: [],
      previousVoters: [],
    };
    this.nodes.forEach((id, index) => {
      const skew = rng.int(-options.clockSkewMs, options.clockSkewMs);
      const replica = new SimReplica(id, index, skew, index < options.nodeCount ? this.config : NO_CONFIG);
      replica.core = this.newCore(replica);
      replica.ae = this.newAe(replica);
      this.replicas.set(id, replica);
      god.configAdopted(id, replica.durableConfig);
    });
    this.network = new Network<SimMessage>(netRng, scheduler, { ...options.network }, (from, to, msg) => this.deliver(from, to, msg), describeSimMessage);
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

  /** The configuration `node` works with: its core's when up, its durable one (what it restarts with) when down. */
  configOf(node: string): MembershipConfig {
    const r = this.replica(node);
    return r.up ? r.core.config : r.durableConfig;
  }

  /** The newest configuration any device holds. */
  latestConfig(): MembershipConfig {
    let latest = this.config;
    for (const id of this.nodes) {
      const c = this.configOf(id);
      if (c.epoch > latest.epoch) latest = c;
    }
    return latest;
  }

  // ------------------------------------------------------------------ membership

  /**
   * Proposes `next` at `node` (like src/node/membership.ts does); `done` gets the result, or undefined when the
   * proposal could not start (not a member, another change in flight there, node down) or the node crashed.
   */
  proposeConfig(node: string, next: MembershipConfig, done: (result: ClientResult | undefined) => void): void {
    const r = this.replica(node);
    if (!r.up) return done(undefined);
    let out: { opId: number; actions: Action[] };
    try {
      out = r.core.proposeConfig(next, this.scheduler.now, r);
    } catch (error) {
      if (error instanceof QuorumdError) return done(undefined);
      throw error;
    }
    this.scheduler.trace.add(`  propose ${r.id} op=${out.opId} epoch ${next.epoch}: ${fmtConfig(next)}`);
    r.membershipOps.set(out.opId, done);
    this.execute(r, out.actions);
  }

  /** Sends `config` from a device that holds it to every up device still on an older epoch. */
  announce(config: MembershipConfig): void {
    const holder = this.nodes.find((n) => this.isUp(n) && this.configOf(n).epoch === config.epoch);
    if (holder === undefined) return;
    for (const node of this.nodes) {
      if (node !== holder && this.isUp(node) && this.configOf(node).epoch < config.epoch) {
        this.send(this.replica(holder), node, { type: 'config', epoch: config.epoch, config });
      }
    }
  }

  /** Runs a data sync at `node` (after a joint commit, or to fill learners `targets`). */
  sync(node: string, targets: readonly string[] | undefined, done: (result: ClientResult | undefined) => void): void {
    const r = this.replica(node);
    if (!r.up) return done(undefined);
    if (this.options.bug === 'skipSync') return done({ type: 'synced', opId: 0, epoch: r.core.epoch, keys: 0 });
    let out: { opId: number; actions: Action[] };
    try {
      out = r.core.sync(this.scheduler.now, r, targets);
    } catch (error) {
      if (error instanceof QuorumdError) return done(undefined);
      throw error;
    }
    this.scheduler.trace.add(`  sync ${r.id} op=${out.opId} epoch ${r.core.epoch}${targets === undefined ? '' : ` to ${targets.join(',')}`}`);
    r.membershipOps.set(out.opId, done);
    this.execute(r, out.actions);
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
    r.aeTickAt = undefined;
    const touched = new Set([...r.store.keys()]);
    r.store = new Map(r.durable);
    for (const key of touched) this.god.changed(node, key, false);
    this.god.crashed(node);
    this.god.touchAll();
    const ops = [...r.clientOps.values()];
    r.clientOps.clear();
    for (const op of ops) op.done({ type: 'lost' });
    const changes = [...r.membershipOps.values()];
    r.membershipOps.clear();
    for (const done of changes) done(undefined);
  }

  restart(node: string): void {
    const r = this.replica(node);
    if (r.up) return;
    this.stats.restarts += 1;
    r.up = true;
    r.lastDurableAt = this.scheduler.now;
    r.core = this.newCore(r);
    if (r.durableResume !== undefined) r.core.setTransferResume(r.durableResume.epoch, r.durableResume.after);
    r.digest = new MerkleDigest();
    for (const [key, record] of r.store) r.digest.update(key, undefined, record);
    r.ae = this.newAe(r);
    r.aeTickAt = undefined;
    this.god.touchAll();
    if (this.options.bug === 'volatileDotCounter') {
      r.dotCounter = Math.max(0, ...[...r.durable.values()].map((rec) => vvGet(rec.context, r.id)));
    } else if (this.options.bug !== 'reuseActor') {
      r.actor = `${r.id}~${r.incarnation}`;
      r.dotCounter = 0;
    }
  }

  // ------------------------------------------------------------------ the runtime

  private newCore(r: SimReplica): ReplicaCore {
    const opIdBase = (r.index + 1) * 1_000_000_000 + r.incarnation * 1_000_000;
    return new ReplicaCore({
      self: r.id,
      config: r.durableConfig,
      acceptor: r.durableAcceptor,
      requestTimeoutMs: this.options.requestTimeoutMs,
      membershipTimeoutMs: this.options.requestTimeoutMs * 4,
      transferIdleMs: this.options.requestTimeoutMs * 3,
      transferBatchRecords: 2,
      opIdBase,
    });
  }

  private newAe(r: SimReplica): AntiEntropy | undefined {
    if (this.options.antiEntropyIntervalMs <= 0) return undefined;
    // Purging is off here: the checker's god view counts an absent key as a lost write. Purging is covered by
    // test/core/anti-entropy.test.ts and the real-node tests.
    return new AntiEntropy({
      self: r.id,
      intervalMs: this.options.antiEntropyIntervalMs,
      bytesPerSec: 1e9,
      requestTimeoutMs: this.options.requestTimeoutMs * 4,
      tombstoneGraceMs: Infinity,
    });
  }

  /** Keeps every up replica's anti-entropy ticking until `aeUntilMs`. */
  ensureAeTicks(): void {
    for (const r of this.replicas.values()) this.ensureAeTick(r);
  }

  private ensureAeTick(r: SimReplica): void {
    const ae = r.ae;
    if (!r.up || ae === undefined) return;
    const deadline = Math.max(ae.nextDeadlineMs() ?? this.scheduler.now, this.scheduler.now);
    if (deadline > this.aeUntilMs || (r.aeTickAt !== undefined && r.aeTickAt <= deadline)) return;
    r.aeTickAt = deadline;
    const incarnation = r.incarnation;
    this.scheduler.schedule(deadline, `aeTick ${r.id}`, () => {
      if (r.incarnation !== incarnation || r.aeTickAt !== deadline || !r.up) return;
      r.aeTickAt = undefined;
      const isAlive = (p: string): boolean => this.isUp(p) && this.network.connected(r.id, p);
      this.executeSync(r, ae.tick(this.scheduler.now, this.rng.float(), r.core.config, isAlive, r));
      this.onAeTick?.();
    });
  }

  /** Anti-entropy counters summed over the current incarnations. */
  aeStats(): Record<string, number> {
    const out = { rounds: 0, matchedRounds: 0, failedRounds: 0, keysRepaired: 0, bytes: 0 };
    for (const r of this.replicas.values()) {
      const st = r.ae?.stats;
      if (st === undefined) continue;
      out.rounds += st.rounds;
      out.matchedRounds += st.matchedRounds;
      out.failedRounds += st.failedRounds;
      out.keysRepaired += st.keysRepaired;
      out.bytes += st.bytes;
    }
    return out;
  }

  /** True when every node in `nodes` is up with the same digest root. */
  digestsEqual(nodes: readonly string[]): boolean {
    const roots = nodes.map((n) => {
      const r = this.replica(n);
      const root = r.digest.root();
      return r.up ? `${root.hi}:${root.lo}` : 'down';
    });
    return roots.every((x) => x !== 'down' && x === roots[0]);
  }

  private executeSync(r: SimReplica, actions: readonly SyncAction[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'persist':
          this.persist(r, action.key, action.record, undefined, undefined, true);
          break;
        case 'purge':
          throw new Error(`purge of ${action.key} at ${r.id}: purging is off in the simulator`);
        case 'hintsDelivered':
          throw new Error(`hintsDelivered at ${r.id}: the simulator does not hand over hints`);
        case 'send':
          this.sendSync(r, action.to, action.msg);
          break;
        case 'sendDurable': {
          const { to, msg } = action;
          this.persist(r, undefined, undefined, undefined, () => this.sendSync(r, to, msg));
          break;
        }
        default:
          unreachable(action);
      }
    }
    this.ensureAeTick(r);
  }

  private sendSync(r: SimReplica, to: string, inner: SyncMessage): void {
    const target = this.replicas.get(to);
    if (target !== undefined && target.up && this.network.send(r.id, to, { type: 'sync', inner })) return;
    const incarnation = r.incarnation;
    const at = this.scheduler.now + this.rng.int(...this.options.sendFailMs);
    this.scheduler.schedule(at, `sendFailed ${r.id}->${to} sync ${inner.type}`, () => {
      if (r.incarnation !== incarnation || !r.up) return;
      r.ae?.sendFailed(to, inner, this.scheduler.now);
      this.ensureAeTick(r);
    });
  }

  private replica(id: string): SimReplica {
    const r = this.replicas.get(id);
    if (r === undefined) throw new Error(`no replica ${id}`);
    return r;
  }

  private deliver(from: string, to: string, msg: SimMessage): void {
    const r = this.replica(to);
    if (!r.up) return;
    if (msg.type === 'sync') {
      if (r.ae !== undefined) this.executeSync(r, r.ae.step(from, msg.inner, this.scheduler.now, r.core.config, r));
      return;
    }
    r.core.setPhysicalMs(this.scheduler.now + r.skewMs); // as the runtime does for every peer message
    this.execute(r, r.core.step(from, msg, r, this.scheduler.now));
  }

  /** Runs actions in order, as the runtime must. */
  private execute(r: SimReplica, actions: readonly Action[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'persist':
          this.persist(r, action.key, action.record, action.then);
          break;
        case 'persistConfig': {
          const config = action.config;
          this.god.configAdopted(r.id, config);
          this.god.touchAll(); // a new configuration makes new read quorums assemblable: check every key
          this.scheduler.trace.add(`  ${r.id} adopts epoch ${config.epoch}: ${fmtConfig(config)}`);
          this.persist(r, undefined, undefined, action.then, () => {
            if (config.epoch > r.durableConfig.epoch) r.durableConfig = config;
          });
          break;
        }
        case 'persistAcceptor': {
          const state = action.state;
          this.persist(r, undefined, undefined, action.then, () => {
            r.durableAcceptor = state;
          });
          break;
        }
        case 'flush': {
          const then = action.then;
          if (this.options.bug === 'ackBeforeDurable') this.deliverThen(r, then);
          else this.afterDurable(r, () => this.deliverThen(r, then));
          break;
        }
        case 'send':
          this.send(r, action.to, action.msg);
          break;
        case 'hint':
          this.stats.hints += 1; // hinted handoff is the runtime's (durable hint book); anti-entropy covers it here
          break;
        case 'transferProgress': {
          // Durable in order with the records before it, as the runtime's meta write is.
          const resume = { epoch: action.epoch, after: action.after };
          this.stats.resumePoints += 1;
          this.persist(r, undefined, undefined, undefined, () => {
            r.durableResume = resume;
          });
          break;
        }
        case 'transferComplete':
          break;
        case 'reply': {
          // A reply that waits for durability was decided now, under the configuration of now.
          const { result } = action;
          const config = r.core.config;
          if (action.afterFlush === true) this.afterDurable(r, () => this.reply(r, result, config));
          else this.reply(r, result, config);
          break;
        }
        default:
          unreachable(action);
      }
    }
    this.ensureTick(r);
  }

  /** Applies at once (the next local.get sees it); durable later, in order; then delivers `then`. */
  private persist(r: SimReplica, key: string | undefined, record: VersionedRecord | undefined, then: Envelope | undefined, onDurable?: () => void, fromAe = false): void {
    let stored = record;
    if (key !== undefined && record !== undefined) {
      if (this.options.bug === 'lwwStore' && record.siblings.length > 1) {
        const winner = lwwWinner(record);
        stored = { context: record.context, siblings: winner === undefined ? [] : [winner] };
      }
      r.digest.update(key, r.store.get(key), stored);
      if (!fromAe) r.ae?.noteStored(key, stored, this.scheduler.now);
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
      onDurable?.();
      if (!early && then !== undefined) this.deliverThen(r, then);
    });
  }

  /**
   * Runs `fn` once everything persisted so far is durable, as the store's flush does: it writes nothing itself,
   * so it takes no time of its own when nothing is pending. Lost in a crash, like the persists it waits for.
   */
  private afterDurable(r: SimReplica, fn: () => void): void {
    const incarnation = r.incarnation;
    this.scheduler.schedule(Math.max(this.scheduler.now, r.lastDurableAt), `flush ${r.id}`, () => {
      if (r.incarnation === incarnation) fn();
    });
  }

  private deliverThen(r: SimReplica, then: Envelope): void {
    if (then.to === r.id) this.execute(r, r.core.step(r.id, then.msg, r, this.scheduler.now));
    else this.send(r, then.to, then.msg);
  }

  private send(r: SimReplica, to: string, msg: Message): void {
    if (msg.type === 'transferAck' && msg.resumeAfter !== undefined) this.stats.resumedPushes += 1;
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

  private reply(r: SimReplica, result: ClientResult, config: MembershipConfig): void {
    const change = r.membershipOps.get(result.opId);
    if (change !== undefined) {
      r.membershipOps.delete(result.opId);
      this.scheduler.trace.add(`  ${r.id} op=${result.opId} ${result.type}${result.type === 'failed' ? ` ${result.code}` : ''}`);
      change(result);
      return;
    }
    const op = r.clientOps.get(result.opId);
    if (op === undefined) return;
    r.clientOps.delete(result.opId);
    this.scheduler.trace.add(`  reply ${r.id} op=${result.opId} ${result.type}`);
    const voters = config.voters.length;
    if (result.type === 'written') {
      if (op.dot === undefined) throw new Error(`'written' reply to a read (op ${result.opId} at ${r.id})`);
      this.god.writeAcked(op.dot, op.level, result, voters);
      op.done({ type: 'written', dot: op.dot, record: result.record, required: result.required });
    } else if (result.type === 'read') {
      // A learner answers r=one from its own replica: not a quorum read, whatever the voter count.
      const learnerLocal = op.level === 'one' && !quorumIds(config).includes(r.id);
      this.god.readReturned(op.key, op.level, result, op.ackedBefore, `${r.id} op ${result.opId}`, learnerLocal ? Infinity : voters);
      op.done({ type: 'read', record: result.record, required: result.required });
    } else if (result.type === 'failed') {
      op.done({ type: 'failed', message: result.message });
    } else {
      throw new Error(`unexpected ${result.type} reply to a client operation (op ${result.opId} at ${r.id})`);
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

export function fmtConfig(c: MembershipConfig): string {
  const ids = (ms: readonly { peerId: string }[]): string => ms.map((m) => m.peerId).join(',');
  const joint = c.previousVoters.length > 0 ? ` prev[${c.previousVoters.join(',')}]` : '';
  const learners = c.learners.length > 0 ? ` learners[${ids(c.learners)}]` : '';
  const removed = c.removed.length > 0 ? ` removed[${c.removed.join(',')}]` : '';
  return `voters[${ids(c.voters)}]${joint}${learners}${removed}`;
}

function fmtCtx(vv: VersionVector): string {
  return Object.keys(vv)
    .sort()
    .map((a) => `${a}:${vv[a]}`)
    .join(',');
}

export function describeSimMessage(msg: SimMessage): string {
  if (msg.type !== 'sync') return describeMessage(msg);
  const m = msg.inner;
  switch (m.type) {
    case 'digest':
      return `sync digest s=${m.session} level=${m.level} nodes=${m.nodes.length}`;
    case 'digestReply':
      return `sync digestReply s=${m.session} hashes=${m.hashes.length}`;
    case 'segments':
      return `sync segments s=${m.session} segments=${m.segments.length} entries=${m.entries.length}`;
    case 'segmentsReply':
      return `sync segmentsReply s=${m.session} records=${m.records.length} want=${m.want.length}`;
    case 'push':
      return `sync push s=${m.session} records=${m.records.length}`;
    default:
      return `sync ${m.type} s=${m.session}`;
  }
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

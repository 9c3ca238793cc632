// A simulated cluster: every device runs the daemon's own driver (src/node/runtime.ts: the core, action
// execution, anti-entropy with tombstone purge, hinted handoff with the real hint book, the admission's data
// transfer) on virtual time (injected clocks and timers, test/sim/store.ts for its store: writes visible at once,
// durable after a random delay, lost in a crash), plus the daemon's part modelled here (heartbeats carrying the
// epoch, hand-over and a round on connect, the join loop) and the membership service (test/sim/membership.ts):
// crashes, restarts, storage wipes (same peer ID, new empty store) and clock steps.
import { QuorumdError } from '../../src/core/errors.js';
import type { SyncMessage } from '../../src/core/anti-entropy.js';
import { hlcCompare } from '../../src/core/hlc.js';
import { type MembershipConfig, NO_CONFIG, isJoint, isMember, isRemoved, quorumIds, replacedIds, seatOf, voterIds } from '../../src/core/membership.js';
import type { AcceptorState } from '../../src/core/paxos.js';
import type { Message } from '../../src/core/messages.js';
import { type ConsistencyLevel, majority } from '../../src/core/quorum.js';
import type { VersionedRecord } from '../../src/core/record.js';
import type { ConfigAuth } from '../../src/core/config-proof.js';
import type { ClientResult, ReplicaCore } from '../../src/core/replica.js';
import { type Dot, type VersionVector, dotKey, vvGet } from '../../src/core/vv.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import type { DotAllocator } from '../../src/node/dots.js';
import { NO_MEMORY, type TimerPort } from '../../src/node/driver-ports.js';
import { META_ACCEPTOR, META_MEMBERSHIP, META_TRANSFER_RESUME, Runtime, type RuntimeLogger, type WriteOutcome } from '../../src/node/runtime.js';
import { type GodView, InvariantViolation, type StoreView, fmtRecord } from './checker.js';
import { DeviceMembership, emptyServiceStats } from './membership.js';
import { type NetworkConditions, Network } from './network.js';
import type { Rng } from './rng.js';
import type { Scheduler } from './scheduler.js';
import { SimStore } from './store.js';

/**
 * Deliberately broken runtimes, to prove the checker can fail (faults injected into the real driver's world):
 * - ackBeforeDurable: the store reports writes and flushes durable before they are, so the runtime acknowledges
 *   them early.
 * - lwwStore: the store keeps only the last-writer-wins sibling, silently dropping concurrent writes.
 * - reuseActor: after a crash the device keeps its peer ID as dot actor (with a durable counter). Its next
 *   write's context then covers its own writes lost in the crash, which erases them, and everything they had
 *   superseded, wherever they did arrive (see the KNOWN BUG test in test/core/replica.test.ts).
 * - volatileDotCounter: reuseActor, and the counter is recovered from the data, so lost dots are reissued.
 * - skipSync: a voter change is finalized without its data sync, so new voters count before holding the data.
 * - staleStoreId: the store id survives a storage wipe (kept beside the peer key, outside the wiped database):
 *   a wiped device takes its old seat as if nothing was lost, acknowledging writes and answering reads from its
 *   empty store and voting with a blank acceptor, instead of waiting unseated for its seat's replacement.
 * - readmitRemoved: a member admits a removed device that asks to join or is approved (its old data, whose
 *   deletes may have been purged meanwhile, comes back with it).
 * - noGrace: tombstones are purged as soon as they are stable (tombstoneGraceMs 0): a write or read repair still
 *   under way (resent to a new member, repairing a late replier) brings a purged delete's value back.
 * The correct runtime modelled here takes a fresh actor (`<peer>~<boot>`) on every restart.
 */
export type SimBug = 'ackBeforeDurable' | 'lwwStore' | 'reuseActor' | 'volatileDotCounter' | 'skipSync' | 'staleStoreId' | 'readmitRemoved' | 'noGrace';
export const SIM_BUGS: readonly SimBug[] = ['ackBeforeDurable', 'lwwStore', 'reuseActor', 'volatileDotCounter', 'skipSync', 'staleStoreId', 'readmitRemoved', 'noGrace'];

/**
 * Bugs of src/ that this simulator found; each is fixed in src/ now. The simulator used to run copies of the
 * daemon's logic, and each flag ("workaround") made its copy behave as the fixed code does; it runs the daemon's
 * own runtime, hint book and membership service now, so only silentPushTarget still changes anything; the
 * others are kept as names (SIM_WORKAROUNDS, --workaround) and do nothing. To see one of
 * those bugs again, revert its fix in src/.
 * - takeoverAfterRestart (src/node/membership.ts, fixed): a device that starts in a joint configuration never
 *   armed the joint-phase takeover, so a proposer that restarted during its joint phase left it unfinished.
 *   And, found when the simulator began to run the real service (fixed: src/core/membership-change.ts
 *   TAKEOVER_PATIENCE_LOOKS): a takeover waited for ever while the joint phase's proposer was alive, so a
 *   restarted proposer (or two previous voters that each took the other for the proposer) never finished it
 *   (seeds 128, 583, 902, 936, 965 of 1..1000).
 * - finalizeConflict (src/node/membership.ts, fixed): a finalize that lost its ballot with the configuration
 *   still joint was taken as done and never retried.
 * - hintClockStep (src/node/hints.ts, fixed: hints are confirmed against a renewal mark; the simulator runs the
 *   real hint book now): hints created before
 *   the wall clock stepped back were never taken as delivered, and handovers looped.
 * - silentPushTarget (src/core/replica.ts sync, fixed for syncs with another target: a silent push target is
 *   dropped at its own idle deadline and the sync falls back). The flag used to keep a device whose store is
 *   lost, or that is not a settled member yet, from being wiped again; wipes now come at any moment, and the
 *   sweeps found these liveness bugs of src/node, fixed since: a device wiped before it learned of its admission
 *   was answered "joined" on its lost store and stopped asking (seed 75); a voter being added that lost its store
 *   while a previous voter lost its own left the joint phase unfinishable (900090: re-targeted now); a stale
 *   re-seating request gave the seat back to a lost store (901565); and the first fix of seed 75 re-seated on a
 *   queued stale admission request (903936: admissions found made on another store are refused now). Seeds
 *   900000..904999 pass without the flag (2026-12-05).
 * - acceptedFinalize (src/node/membership.ts finishJoint, fixed: an acceptor holding a value for the next slot
 *   proposes at once, phase 1 recovers it): a finalize chosen by two acceptors, one of which was then wiped,
 *   was learned by nobody else; the others kept re-running the joint phase's sync, which waited for a previous
 *   voter's store that was gone (seeds 208110, 306793: epoch 2 joint for ever).
 * - announceOnce (src/core/replica.ts tellIfStale, fixed: a stale peer is told again after a second; the
 *   simulator runs the real core, so this one needs no flag).
 */
export type KnownBug = 'takeoverAfterRestart' | 'finalizeConflict' | 'hintClockStep' | 'silentPushTarget' | 'acceptedFinalize';
export const KNOWN_BUG_NAMES: readonly KnownBug[] = ['takeoverAfterRestart', 'finalizeConflict', 'hintClockStep', 'silentPushTarget', 'acceptedFinalize'];

/** Wall clocks read about 2023 (ms since 1970) unless a clock step or a boot without a real-time clock moves them. */
export const WALL_BASE_MS = 1_700_000_000_000;

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
  /** Tombstones are purged at causal stability no sooner than this after they were stored (Infinity: never). */
  readonly tombstoneGraceMs: number;
  /** Hint book bounds (src/node/hints.ts); handed over only while anti-entropy runs (it carries the push). */
  readonly hintsMax: number;
  readonly hintTtlMs: number;
  /** Members admit devices that ask to join without an operator (DEFAULTS.autoAdmit). */
  readonly autoAdmit: boolean;
  readonly maxVoters: number;
  /** Known src/ bugs steered around (see KnownBug). */
  readonly workarounds: readonly KnownBug[];
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
  readonly key: string;
  readonly level: ConsistencyLevel;
  readonly request: WriteSubmission | undefined;
  /** The write's dot, once the runtime allocated it. */
  dot: Dot | undefined;
  /** Voter counts of the coordinator's configurations while the operation ran (the reply is decided under one). */
  readonly voters: number[];
  readonly done: (outcome: ClientOutcome) => void;
}

/** Runtime timings, scaled from the daemon's defaults to the run's request timeout (T: 3 s in the daemon). */
export interface SimTimings {
  readonly heartbeatMs: number;
  readonly syncAfterConnectMs: number;
  readonly joinRetryMs: number;
  readonly joinTimeoutMs: number;
  readonly jointTakeoverMs: number;
  readonly catchUpDeferMs: number;
  readonly inboundQuietMs: number;
  readonly transferIdleMs: number;
  readonly changeAttemptsMax: number;
  /** Backoff after a lost epoch: [lo, hi + step × attempt]. */
  readonly changeBackoffMs: readonly [number, number, number];
}

/** A timer of the simulated device's driver (see Cluster.timersOf). */
interface SimTimer {
  at: number;
  readonly run: () => void;
  cancelled: boolean;
}

/** Dots of the writes a device coordinates (the DotAllocator's part the runtime uses): see SimBug reuseActor. */
class SimDots {
  constructor(
    readonly writer: string,
    public current: number,
    private readonly allocated: (dot: Dot) => void,
  ) {}

  next(): Promise<Dot> {
    this.current += 1;
    const dot = { actor: this.writer, counter: this.current };
    this.allocated(dot);
    return Promise.resolve(dot);
  }
}

class SimReplica {
  /** The device's driver: the daemon's own Runtime (src/node/runtime.ts), new at every boot. */
  runtime: Runtime;
  up = true;
  incarnation = 0;
  /** The store the data lives in (a wipe makes a new one). */
  store: SimStore;
  lastDurableAt = 0;
  /** The actor of this boot's dots, and its counter (kept across crashes only by the broken reuseActor). */
  actor: string;
  dotCounter = 0;
  readonly clientOps = new Set<PendingClientOp>();
  /** The write being submitted (its dot is allocated synchronously in Runtime.write), and writes not staged yet. */
  submitting: PendingClientOp | undefined;
  readonly awaitingStage = new Map<string, PendingClientOp>();
  /** Membership operations coordinated here (proposals and syncs) still running. */
  readonly membershipOps = new Set<(result: ClientResult | undefined) => void>();
  /** Anti-entropy timers beyond the current phase's horizon (re-armed when it moves: ensureAeTicks). */
  parkedAe: SimTimer[] = [];
  /** The id the runtime hands the core (the store's, unless the broken staleStoreId keeps the first). */
  coreStoreId: string;
  /** The store each peer last said it runs on (heartbeats, join requests), as the daemon's map (in memory). */
  readonly peerStores = new Map<string, string>();
  storesCreated = 1;
  /** Wall clock = WALL_BASE_MS + now + skew + this (clock steps, a boot at 1970). */
  clockOffsetMs = 0;
  /** Whether the current store ever held a seat (a removed device keeps its data; a wiped one has none yet). */
  storeEverSeated = false;
  /** The daemon's membership service (join loop, join requests, joint-phase takeover); new at every boot. */
  service: DeviceMembership | undefined;

  constructor(
    readonly id: string,
    readonly index: number,
    readonly skewMs: number,
    store: SimStore,
  ) {
    this.runtime = undefined as unknown as Runtime; // set by the cluster's boot right after construction
    this.actor = id;
    this.store = store;
    this.coreStoreId = `${id}.s1`;
  }

  get storeId(): string {
    return this.store.id;
  }

  get core(): ReplicaCore {
    return this.runtime.core;
  }
}

/** Acknowledged handovers in a row that clear no hint before it counts as a busy loop (see watchHandovers). */
const HANDOVER_REPEATS_MAX = 100;

const silentLog: RuntimeLogger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

export class Cluster implements StoreView {
  /** Every simulated device: founding voters first, then spares. */
  readonly nodes: readonly string[];
  readonly founders: readonly string[];
  readonly config: MembershipConfig;
  readonly network: Network<SimMessage>;
  readonly timings: SimTimings;
  readonly stats = {
    crashes: 0,
    restarts: 0,
    wipes: 0,
    clockSteps: 0,
    boots1970: 0,
    sendFailures: 0,
    persists: 0,
    maxSiblings: 0,
    hints: 0,
    handovers: 0,
    purges: 0,
    resumePoints: 0,
    resumedPushes: 0,
    heartbeats: 0,
    connects: 0,
    roundsRefusedFilling: 0,
    hlcBehind: 0,
  };
  /** Every device's membership service counters (joins, replacements, takeovers…), summed. */
  readonly serviceStats = emptyServiceStats();
  /** Anti-entropy ticks are scheduled up to this virtual time (the sim sets it per phase). */
  aeUntilMs = 0;
  /** Heartbeats, join loops and takeovers run up to this virtual time (the sim sets it per phase). */
  daemonUntilMs = 0;
  /** Called after every anti-entropy tick (the final phase watches for convergence). */
  onAeTick: (() => void) | undefined;
  /** Voters the operator (MembershipDriver) is removing right now, with how many proposals (see lossTolerable). */
  readonly pendingVoterRemovals = new Map<string, number>();
  /**
   * The first failure raised inside the drivers' promise continuations (a violated invariant noticed on a
   * message, an exception): the run loop throws it after the step that caused it (takeFailure).
   */
  private failure: { error: unknown } | undefined;
  private readonly replicas = new Map<string, SimReplica>();
  private heartbeatSeq = 0;
  /** Devices wiped at some point (see storageLost). */
  private readonly wipedNodes = new Set<string>();

  constructor(
    private readonly rng: Rng,
    readonly scheduler: Scheduler,
    readonly options: ClusterOptions,
    private readonly god: GodView,
    netRng: Rng,
  ) {
    const t = options.requestTimeoutMs;
    const maxDelay = options.network.maxDelayMs;
    this.timings = {
      heartbeatMs: 2 * t,
      syncAfterConnectMs: 5,
      joinRetryMs: Math.max(10, Math.round(t / 4)),
      joinTimeoutMs: 20 * t,
      jointTakeoverMs: t,
      catchUpDeferMs: Math.max(5, Math.round(t / 12)),
      inboundQuietMs: Math.round(t / 3),
      transferIdleMs: 3 * t,
      changeAttemptsMax: 8,
      changeBackoffMs: [maxDelay, 2 * maxDelay, 2 * maxDelay],
    };
    this.nodes = Array.from({ length: options.nodeCount + options.spares }, (_, i) => `n${i + 1}`);
    this.founders = this.nodes.slice(0, options.nodeCount);
    this.config = {
      clusterId: 'sim',
      epoch: 1,
      voters: this.founders.map((peerId) => ({ peerId, addrs: [], store: `${peerId}.s1` })),
      learners: [],
      removed: [],
      previousVoters: [],
    };
    this.nodes.forEach((id, index) => {
      const skew = rng.int(-options.clockSkewMs, options.clockSkewMs);
      const replica = new SimReplica(id, index, skew, undefined as unknown as SimStore);
      replica.store = this.newStore(replica, `${id}.s1`);
      replica.coreStoreId = replica.store.id;
      if (index < options.nodeCount) {
        // A founder: its store holds the founding configuration (durably) from before the run.
        const text = JSON.stringify(this.config);
        replica.store.meta.set(META_MEMBERSHIP, text);
        replica.store.durableMeta.set(META_MEMBERSHIP, text);
      }
      this.replicas.set(id, replica);
      god.configAdopted(id, this.configOf(id));
    });
    this.network = new Network<SimMessage>(netRng, scheduler, { ...options.network }, (from, to, msg) => this.deliver(from, to, msg), describeSimMessage);
    for (const r of this.replicas.values()) this.boot(r);
  }

  // ------------------------------------------------------------------ failures inside promise continuations

  /** Runs `fn`; an exception is kept for the run loop (see `failure`) instead of becoming a lost rejection. */
  guarded(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.failure ??= { error };
    }
  }

  /** Throws the first failure raised inside a continuation since the last call, if any. */
  takeFailure(): void {
    const failure = this.failure;
    this.failure = undefined;
    if (failure !== undefined) throw failure.error;
  }

  // ------------------------------------------------------------------ StoreView

  visible(node: string, key: string): VersionedRecord | undefined {
    return this.replica(node).store.get(key);
  }

  durable(node: string, key: string): VersionedRecord | undefined {
    return this.replica(node).store.durableRecords.get(key);
  }

  isUp(node: string): boolean {
    return this.replica(node).up;
  }

  /** The configuration `node` works with: its runtime's when up, its durable one (what it restarts with) when down. */
  configOf(node: string): MembershipConfig {
    const r = this.replica(node);
    return r.up && r.runtime !== undefined ? r.runtime.config : storedConfig(r.store.durableMeta.get(META_MEMBERSHIP));
  }

  /** The Paxos acceptor state `node` restarts with. */
  private durableAcceptor(r: SimReplica): AcceptorState | undefined {
    return storedAcceptor(r.store.durableMeta.get(META_ACCEPTOR));
  }

  /**
   * Whether `node` answers reads and acknowledges writes (now, or when it restarts): its runtime's store id holds
   * its seat in its own configuration (ReplicaCore.seated).
   */
  serves(node: string): boolean {
    const r = this.replica(node);
    return seatHeldBy(this.configOf(node), node, r.coreStoreId);
  }

  /** Whether the store `node`'s data really lives in holds its seat in its own configuration. */
  trulySeated(node: string): boolean {
    const r = this.replica(node);
    return seatHeldBy(this.configOf(node), node, r.storeId);
  }

  /** A replica whose store must never show what a purged tombstone superseded: truly seated, not removed. */
  participating(node: string): boolean {
    return this.trulySeated(node) && !isRemoved(this.latestConfig(), node);
  }

  /** Records in `node`'s store now (staged ones included). */
  visibleKeys(node: string): number {
    return this.replica(node).store.records.size;
  }

  /** The store `node`'s data lives in (what an operator approving it would name). */
  storeOf(node: string): string {
    return this.replica(node).storeId;
  }

  /** The store `self` last heard `peer` say it runs on (heartbeats, join requests; undefined: not heard). */
  heardStoreOf(self: string, peer: string): string | undefined {
    return this.replica(self).peerStores.get(peer);
  }

  /** The store id `node`'s runtime knows (sent in its join requests, handed to its core). */
  runtimeStoreOf(node: string): string {
    return this.replica(node).coreStoreId;
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

  /**
   * Up and reachable from `from` now (the daemon's failure detector, as an oracle); a device `from` knows as
   * removed is not (the connection gater refuses it and the daemon closes its connection).
   */
  isAlive(from: string, peer: string): boolean {
    return peer !== from && this.isUp(peer) && this.network.connected(from, peer) && !isRemoved(this.configOf(from), peer);
  }

  /** The device's wall clock (ms since 1970). */
  wallMs(node: string): number {
    const r = this.replica(node);
    return WALL_BASE_MS + this.scheduler.now + r.skewMs + r.clockOffsetMs;
  }

  core(node: string): ReplicaCore {
    return this.replica(node).core;
  }

  service(node: string): DeviceMembership | undefined {
    const r = this.replica(node);
    return r.up ? r.service : undefined;
  }

  /** Hints waiting on every device, and the hint books' counters (this boot's) summed. */
  hintStats(): Record<string, number> {
    const out = { queued: 0, added: this.stats.hints, delivered: 0, dropped: 0, expired: 0 };
    for (const r of this.replicas.values()) {
      const st = r.runtime.hints.stats();
      out.queued += st.queued;
      out.delivered += st.delivered;
      out.dropped += st.dropped;
      out.expired += st.expired;
    }
    return out;
  }

  // ------------------------------------------------------------------ membership

  /**
   * Proposes `next` at `node` (Runtime.changeConfig); `done` gets the result, or undefined when the node is down
   * or crashes first.
   */
  proposeConfig(node: string, next: MembershipConfig, done: (result: ClientResult | undefined) => void): void {
    const r = this.replica(node);
    if (!r.up) return done(undefined);
    this.scheduler.trace.add(`  propose ${r.id} epoch ${next.epoch}: ${fmtConfig(next)}`);
    this.membershipOp(r, done, r.runtime.changeConfig(next), (config) => ({ type: 'configCommitted', opId: 0, config }));
  }

  /** Sends `config` from a device that holds it to every up device still on an older epoch. */
  announce(config: MembershipConfig): void {
    const holder = this.nodes.find((n) => this.isUp(n) && this.configOf(n).epoch === config.epoch);
    if (holder === undefined) return;
    for (const node of this.nodes) {
      if (node !== holder && this.isUp(node) && this.configOf(node).epoch < config.epoch) {
        this.sendPlain(holder, node, { type: 'config', epoch: config.epoch, config });
      }
    }
  }

  /** Runs a data sync at `node` (Runtime.sync: after a joint commit, or to fill learners `targets`). */
  sync(node: string, targets: readonly string[] | undefined, done: (result: ClientResult | undefined) => void): void {
    const r = this.replica(node);
    if (!r.up) return done(undefined);
    if (this.options.bug === 'skipSync') return done({ type: 'synced', opId: 0, epoch: r.core.epoch, keys: 0 });
    this.scheduler.trace.add(`  sync ${r.id} epoch ${r.core.epoch}${targets === undefined ? '' : ` to ${targets.join(',')}`}`);
    const epoch = r.core.epoch;
    this.membershipOp(r, done, r.runtime.sync(targets), (keys) => ({ type: 'synced', opId: 0, epoch, keys }));
  }

  private membershipOp<T>(r: SimReplica, done: (result: ClientResult | undefined) => void, work: Promise<T>, ok: (value: T) => ClientResult): void {
    const incarnation = r.incarnation;
    r.membershipOps.add(done);
    const finish = (result: ClientResult): void => {
      if (r.incarnation !== incarnation || !r.membershipOps.delete(done)) return;
      this.scheduler.trace.add(`  ${r.id} membership op ${result.type}${result.type === 'failed' ? ` ${result.code}` : ''}`);
      this.guarded(() => done(result));
    };
    work.then(
      (value) => finish(ok(value)),
      (error: unknown) => finish(failedResult(error)),
    );
  }

  /** Adopts a configuration learned outside the core's messages (a join reply). */
  adoptConfig(node: string, config: MembershipConfig, from?: string): void {
    const r = this.replica(node);
    if (!r.up) return;
    r.runtime.adoptConfig(config, from);
  }

  /** Sends a runtime-level message (join request or reply); false when `to` cannot be reached now. */
  sendPlain(from: string, to: string, msg: Message): boolean {
    const target = this.replicas.get(to);
    return target !== undefined && target.up && this.network.send(from, to, msg);
  }

  // ------------------------------------------------------------------ clients (through the runtime's API)

  submitWrite(coordinator: string, request: WriteSubmission, done: (outcome: ClientOutcome) => void): void {
    const r = this.replica(coordinator);
    if (!r.up) return done({ type: 'rejected', error: 'coordinator down' });
    const op: PendingClientOp = { key: request.key, level: request.level, request, dot: undefined, voters: [r.runtime.config.voters.length], done };
    const context = request.context === undefined ? undefined : { vv: request.context, unseen: [] };
    r.submitting = op;
    let work: Promise<WriteOutcome>;
    try {
      work = r.runtime.write(request.key, request.value, context, request.level);
    } finally {
      r.submitting = undefined;
    }
    this.clientOp(r, op, work, (outcome) => {
      const dot = op.dot;
      if (dot === undefined) throw new Error(`write of ${request.key} at ${r.id} answered without a dot`);
      const voters = votersOf(this.god, op, outcome.required);
      this.god.writeAcked(dot, op.level, { required: outcome.required, acks: outcome.acks, record: outcome.record }, voters);
      return { type: 'written', dot, record: outcome.record, required: outcome.required };
    });
  }

  submitRead(coordinator: string, key: string, level: ConsistencyLevel, done: (outcome: ClientOutcome) => void): void {
    const r = this.replica(coordinator);
    if (!r.up) return done({ type: 'rejected', error: 'coordinator down' });
    const ackedBefore = this.god.ackedQuorumDots(key);
    const op: PendingClientOp = { key, level, request: undefined, dot: undefined, voters: [r.runtime.config.voters.length], done };
    this.scheduler.trace.add(`  read ${r.id} ${key} level=${String(level)}`);
    this.clientOp(r, op, r.runtime.read(key, level), (outcome) => {
      // A learner answers r=one from its own replica: not a quorum read, whatever the voter count.
      const learnerLocal = level === 'one' && !quorumIds(r.runtime.config).includes(r.id);
      const voters = learnerLocal ? Infinity : votersOf(this.god, op, outcome.required);
      this.god.readReturned(key, level, { record: outcome.record, required: outcome.required, replies: outcome.replies }, ackedBefore, `${r.id} t=${this.scheduler.now}`, voters);
      return { type: 'read', record: outcome.record, required: outcome.required };
    });
  }

  private clientOp<T>(r: SimReplica, op: PendingClientOp, work: Promise<T>, ok: (value: T) => ClientOutcome): void {
    const incarnation = r.incarnation;
    r.clientOps.add(op);
    const finish = (outcome: () => ClientOutcome): void => {
      if (r.incarnation !== incarnation || !r.clientOps.delete(op)) return;
      this.guarded(() => {
        const out = outcome();
        this.scheduler.trace.add(`  reply ${r.id} ${op.key} ${out.type}`);
        op.done(out);
      });
    };
    work.then(
      (value) => finish(() => ok(value)),
      (error: unknown) =>
        finish(() => {
          if (error instanceof QuorumdError && REFUSALS.has(error.code)) return { type: 'rejected', error: error.code };
          if (error instanceof QuorumdError) return { type: 'failed', message: error.message };
          throw error;
        }),
    );
  }

  /** The runtime persists a record: a write coordinated here is registered with the god view on its first. */
  private staged(r: SimReplica, key: string, before: VersionedRecord | undefined, record: VersionedRecord): void {
    this.stats.persists += 1;
    this.stats.maxSiblings = Math.max(this.stats.maxSiblings, record.siblings.length);
    if (r.awaitingStage.size === 0) return;
    for (const sibling of record.siblings) {
      const id = dotKey(sibling.dot);
      const op = r.awaitingStage.get(id);
      const request = op?.request;
      if (op === undefined || request === undefined) continue;
      r.awaitingStage.delete(id);
      // Without a context the write supersedes what the coordinator held: that is what it "saw".
      const seen = request.context === undefined ? (before?.siblings ?? []).map((s) => dotKey(s.dot)) : request.seen;
      // A clock behind what the write supersedes (a step back, a boot at 1970 with the HLC not restored) makes a
      // last-writer-wins pick prefer the older version: counted, not a violation (siblings are kept by causality).
      if ((before?.siblings ?? []).some((s) => hlcCompare(s.hlc, sibling.hlc) >= 0)) this.stats.hlcBehind += 1;
      this.god.writeIssued(r.id, key, sibling.dot, request.value, sibling.hlc, seen);
      this.scheduler.trace.add(`  write ${id} ${key} level=${String(request.level)} ctx=${request.context === undefined ? '(local)' : fmtCtx(request.context)}`);
    }
  }

  // ------------------------------------------------------------------ faults

  crash(node: string): void {
    const r = this.replica(node);
    if (!r.up) return;
    this.stats.crashes += 1;
    r.up = false;
    r.peerStores.clear(); // the daemon's memory
    r.incarnation += 1;
    r.parkedAe = [];
    r.service?.stop();
    r.service = undefined;
    r.runtime.stop();
    const touched = new Set([...r.store.records.keys(), ...r.store.durableRecords.keys()]);
    r.store.crash();
    for (const key of touched) this.god.changed(node, key, false);
    this.god.crashed(node);
    this.god.touchAll();
    const ops = [...r.clientOps];
    r.clientOps.clear();
    r.awaitingStage.clear();
    for (const op of ops) op.done({ type: 'lost' });
    const changes = [...r.membershipOps];
    r.membershipOps.clear();
    for (const done of changes) done(undefined);
  }

  /**
   * The device's storage is lost (disk replaced, database deleted, re-flashed), its identity (peer key) kept:
   * it goes down at once and restarts (restart()) with an empty store under a new store id, no configuration,
   * no acceptor state and no hints. It then asks to join, and the member it asks gives its seat to the new store.
   */
  wipe(node: string): void {
    const r = this.replica(node);
    this.crash(node);
    this.stats.wipes += 1;
    const touched = new Set([...r.store.records.keys(), ...r.store.durableRecords.keys()]);
    r.storesCreated += 1;
    this.wipedNodes.add(node);
    r.store = this.newStore(r, `${r.id}.s${r.storesCreated}`);
    r.storeEverSeated = false;
    if (this.options.bug !== 'staleStoreId') r.coreStoreId = r.storeId;
    for (const key of touched) this.god.changed(node, key, true);
    this.god.wiped(node);
    this.god.touchAll();
    this.scheduler.trace.add(`  wipe ${node}: new store ${r.storeId}`);
  }

  clockOffsetOf(node: string): number {
    return this.replica(node).clockOffsetMs;
  }

  /**
   * Whether `node`'s seat in `latest` (or its place among the previous voters) is without its data: it was wiped
   * and no finished change gave its seat to the new store (still joint, or the seat names another store).
   */
  storageLost(node: string, latest: MembershipConfig = this.latestConfig()): boolean {
    if (!this.wipedNodes.has(node)) return false;
    const seat = seatOf(latest, node);
    if (seat === undefined) return latest.previousVoters.includes(node);
    return isJoint(latest) || seat.store !== this.storeOf(node);
  }

  /**
   * The fault model's bound (see sim.test.ts): the voters whose store is lost stay a minority of the voters, of
   * the previous voters while joint, and of the voters left once the removals in flight are done, with lost
   * learners counted as voters (one may be promoted before its seat is given to its new store). `extraLost`: a
   * device about to be wiped; `extraRemoved`: a voter about to be removed.
   */
  lossTolerable(extraLost?: string, extraRemoved?: string): boolean {
    const latest = this.latestConfig();
    const lost = (n: string): boolean => n === extraLost || this.storageLost(n, latest);
    const removing = new Set([...this.pendingVoterRemovals.keys(), ...(extraRemoved === undefined ? [] : [extraRemoved])]);
    const base = [...voterIds(latest), ...latest.learners.map((m) => m.peerId).filter(lost)];
    // Concurrent removals compete for the next epoch: any one of them, or all in turn, may win.
    const sets = [base, base.filter((n) => !removing.has(n)), ...[...removing].map((p) => base.filter((n) => n !== p))];
    if (isJoint(latest)) sets.push([...latest.previousVoters]);
    // A value some acceptor accepted for a later epoch may still be chosen (its proposer may be long gone).
    for (const r of this.replicas.values()) {
      for (const state of [r.up ? r.core.acceptorState : undefined, this.durableAcceptor(r)]) {
        const accepted = state?.accepted?.config;
        if (accepted === undefined || accepted.epoch <= latest.epoch) continue;
        sets.push([...voterIds(accepted), ...accepted.learners.map((m) => m.peerId).filter(lost)]);
        if (isJoint(accepted)) sets.push([...accepted.previousVoters]);
      }
    }
    // An empty set (every voter being removed at once) cannot commit: concurrent removals conflict.
    return sets.every((set) => set.length === 0 || set.filter(lost).length <= set.length - majority(set.length));
  }

  /** Whether a membership change or data sync is being coordinated anywhere, or a value accepted for a later epoch. */
  membershipInFlight(): boolean {
    const latest = this.latestConfig();
    for (const r of this.replicas.values()) {
      if (r.up && r.core.membershipBusy()) return true;
      for (const state of [r.up ? r.core.acceptorState : undefined, this.durableAcceptor(r)]) {
        if ((state?.accepted?.config.epoch ?? 0) > latest.epoch) return true;
      }
    }
    return false;
  }

  /** Steps `node`'s wall clock by `deltaMs` (NTP correcting a drifted clock, an operator setting the date). */
  stepClock(node: string, deltaMs: number): void {
    const r = this.replica(node);
    r.clockOffsetMs += deltaMs;
    this.stats.clockSteps += 1;
    this.scheduler.trace.add(`  clock ${node} ${deltaMs >= 0 ? '+' : ''}${deltaMs} ms`);
  }

  restart(node: string, options: { bootAt1970?: boolean } = {}): void {
    const r = this.replica(node);
    if (r.up) return;
    this.stats.restarts += 1;
    r.up = true;
    r.lastDurableAt = this.scheduler.now;
    if (options.bootAt1970 === true) {
      // No real-time clock and no network time yet: the wall clock starts near 0 (1970).
      r.clockOffsetMs = -(WALL_BASE_MS + this.scheduler.now + r.skewMs) + this.rng.int(0, 5_000);
      this.stats.boots1970 += 1;
      this.scheduler.trace.add(`  ${node} boots with its clock at ${this.wallMs(node)} ms`);
    }
    if (this.options.bug === 'volatileDotCounter') {
      r.dotCounter = Math.max(0, ...[...r.store.durableRecords.values()].map((rec) => vvGet(rec.context, r.id)));
    } else if (this.options.bug !== 'reuseActor') {
      r.actor = `${r.id}~${r.incarnation}`;
      r.dotCounter = 0;
    }
    this.boot(r);
    this.god.touchAll();
    this.connected(this.nodes.filter((n) => n !== node && this.isUp(n) && this.network.connected(node, n)).map((n) => [node, n] as const));
  }

  /** Splits the network (see Network.partition); pairs connected again get the daemon's on-connect work. */
  partition(groups: ReadonlyArray<readonly string[]>): void {
    const before = this.connectedPairs();
    this.network.partition(groups);
    this.connected([...this.connectedPairs().values()].filter((p) => !before.has(`${p[0]} ${p[1]}`)));
  }

  heal(): void {
    const before = this.connectedPairs();
    this.network.heal();
    this.connected([...this.connectedPairs().values()].filter((p) => !before.has(`${p[0]} ${p[1]}`)));
  }

  // ------------------------------------------------------------------ the device: its store, timers and driver

  /** A store whose writes become durable on this device's schedule (see SimStore). */
  private newStore(r: SimReplica, id: string): SimStore {
    return new SimStore(
      id,
      {
        persist: (label, apply) => this.durableLater(r, label, apply),
        flushed: () => this.afterDurable(r),
        changed: (key, durable) => this.god.changed(r.id, key, durable),
        staged: (key, before, record) => this.staged(r, key, before, record),
        purging: (key, current) => {
          this.stats.purges += 1;
          this.scheduler.trace.add(`  purge ${r.id} ${key} ${fmtRecord(current)}`);
          this.god.purged(r.id, key, current);
        },
        metaSet: (name) => {
          if (name.startsWith('hint:')) this.stats.hints += 1;
          else if (name === META_TRANSFER_RESUME) this.stats.resumePoints += 1;
        },
      },
      { ackBeforeDurable: this.options.bug === 'ackBeforeDurable', lwwStore: this.options.bug === 'lwwStore' },
    );
  }

  /** Durable after a random delay (fsync), in order with the device's earlier writes; lost in a crash. */
  private durableLater(r: SimReplica, label: string, apply: () => void): Promise<void> {
    const at = Math.max(this.scheduler.now + this.rng.int(...this.options.durabilityMs), r.lastDurableAt);
    r.lastDurableAt = at;
    const incarnation = r.incarnation;
    return new Promise((resolve) => {
      this.scheduler.schedule(at, `durable ${r.id} ${label}`, () => {
        if (r.incarnation !== incarnation) return; // lost in a crash
        apply();
        resolve();
      });
    });
  }

  /** Once everything persisted so far is durable (a flush writes nothing itself); lost in a crash. */
  private afterDurable(r: SimReplica): Promise<void> {
    const incarnation = r.incarnation;
    return new Promise((resolve) => {
      this.scheduler.schedule(Math.max(this.scheduler.now, r.lastDurableAt), `flush ${r.id}`, () => {
        if (r.incarnation === incarnation) resolve();
      });
    });
  }

  /** The driver's timers on virtual time; anti-entropy's (`bounded`) only up to aeUntilMs, parked beyond. */
  private timersOf(r: SimReplica, bounded: boolean): TimerPort {
    const incarnation = r.incarnation;
    return {
      set: (run, delayMs) => {
        const timer: SimTimer = { at: this.scheduler.now + Math.max(0, delayMs), run, cancelled: false };
        if (bounded) this.armAe(r, timer, incarnation);
        else this.scheduler.schedule(timer.at, `timer ${r.id}`, () => {
          if (r.incarnation === incarnation && !timer.cancelled) this.guarded(run);
        });
        return timer;
      },
      clear: (handle) => {
        (handle as SimTimer).cancelled = true;
      },
    };
  }

  private armAe(r: SimReplica, timer: SimTimer, incarnation: number): void {
    if (timer.at > this.aeUntilMs) {
      r.parkedAe.push(timer);
      return;
    }
    this.scheduler.schedule(timer.at, `aeTick ${r.id}`, () => {
      if (r.incarnation !== incarnation || timer.cancelled || !r.up) return;
      timer.cancelled = true;
      this.guarded(timer.run);
      this.onAeTick?.();
    });
  }

  /** What the daemon does at start-up: the runtime on the store's durable state, the membership service, heartbeats. */
  private boot(r: SimReplica): void {
    const store = r.store;
    const t = this.options.requestTimeoutMs;
    const opIdBase = (r.index + 1) * 1_000_000_000 + r.incarnation * 1_000_000;
    const dots = new SimDots(r.actor, r.dotCounter, (dot) => {
      r.dotCounter = dot.counter;
      const op = r.submitting;
      if (op === undefined) return;
      op.dot = dot;
      r.awaitingStage.set(dotKey(dot), op);
    });
    const aeOn = this.options.antiEntropyIntervalMs > 0;
    r.parkedAe = [];
    r.runtime = new Runtime({
      self: r.id,
      store,
      dots: dots as unknown as DotAllocator,
      config: storedConfig(store.getMeta(META_MEMBERSHIP)),
      acceptor: storedAcceptor(store.getMeta(META_ACCEPTOR)),
      requestTimeoutMs: t,
      membershipTimeoutMs: t * 4,
      transferIdleMs: this.timings.transferIdleMs,
      transferBatchRecords: 2,
      transferBatchBytes: DEFAULTS.transferBatchBytes,
      opsInFlightMax: Number.MAX_SAFE_INTEGER,
      opIdBase,
      storeId: r.coreStoreId,
      legacySeat: false,
      antiEntropy: {
        intervalMs: aeOn ? this.options.antiEntropyIntervalMs : 1_000,
        bytesPerSec: 1e9,
        requestTimeoutMs: t * 4,
        tombstoneGraceMs: this.options.bug === 'noGrace' ? 0 : this.options.tombstoneGraceMs,
      },
      hints: { hintsMax: this.options.hintsMax, hintTtlMs: this.options.hintTtlMs },
      log: silentLog,
      random: () => this.rng.float(),
      wallClockMs: () => this.wallMs(r.id),
      monotonicMs: () => this.scheduler.now,
      timers: this.timersOf(r, false),
      syncTimers: this.timersOf(r, true),
      catchUpDeferMs: this.timings.catchUpDeferMs,
      inboundStreamQuietMs: this.timings.inboundQuietMs,
      memory: NO_MEMORY,
      auth: simAuth(r.id),
    });
    r.runtime.onConfigChange((config) => this.guarded(() => this.configAdopted(r, config)));
    this.watchHandovers(r);
    r.runtime.attachTransport({ send: (to, msg) => this.send(r, to, msg), isConnected: (peer) => this.isAlive(r.id, peer) });
    if (this.trulySeated(r.id)) r.storeEverSeated = true;
    r.runtime.resumeJoinTransfer(); // as the daemon: an admission whose data transfer a restart interrupted
    if (aeOn) r.runtime.attachSync({ send: (to, msg) => this.sendSync(r, to, msg) }, (peer) => this.isAlive(r.id, peer));
    r.service = new DeviceMembership(r.id, this, this.rng.fork(), r.runtime, opIdBase + 500_000);
    r.service.start();
    this.scheduleHeartbeat(r);
  }

  /**
   * (l) Acknowledged handovers in a row that clear no hint: the runtime starts the next handover as soon as one
   * is delivered, so hints that are never taken as delivered make a busy loop of pushes. Watched on the hint
   * book's confirmations (HintBook.delivered).
   */
  private watchHandovers(r: SimReplica): void {
    const book = r.runtime.hints;
    const delivered = book.delivered.bind(book);
    const repeats = new Map<string, number>();
    book.delivered = (peer, keys, mark) => {
      const before = book.stats().delivered;
      const done = delivered(peer, keys, mark);
      const cleared = book.stats().delivered - before;
      const inARow = cleared === 0 && keys.length > 0 ? (repeats.get(peer) ?? 0) + 1 : 0;
      repeats.set(peer, inARow);
      if (inARow >= HANDOVER_REPEATS_MAX) {
        this.guarded(() => {
          throw new InvariantViolation('l', `t=${this.scheduler.now}: ${r.id} handed the hints of ${keys.length} key(s) (${keys.slice(0, 3).join(', ')}) over to ${peer} ${inARow} times in a row, acknowledged each time, and never took them as delivered: a busy loop of pushes`);
        });
      }
      return done;
    };
  }

  /** The runtime adopted `config` (its configuration listener). */
  private configAdopted(r: SimReplica, config: MembershipConfig): void {
    this.god.configAdopted(r.id, config);
    this.god.touchAll(); // a new configuration makes new read quorums assemblable: check every key
    this.scheduler.trace.add(`  ${r.id} adopts epoch ${config.epoch}: ${fmtConfig(config)}`);
    if (this.trulySeated(r.id)) r.storeEverSeated = true;
    for (const op of r.clientOps) op.voters.push(config.voters.length);
    r.service?.configChanged(config);
  }

  // ------------------------------------------------------------------ the daemon's part

  /** Every connected pair sends heartbeats carrying its epoch (a peer behind is told the configuration). */
  private scheduleHeartbeat(r: SimReplica): void {
    const at = this.scheduler.now + this.timings.heartbeatMs * (0.5 + this.rng.float());
    if (at > this.daemonUntilMs) return;
    const incarnation = r.incarnation;
    this.scheduler.schedule(at, `heartbeat ${r.id}`, () => {
      if (r.incarnation !== incarnation || !r.up) return;
      this.heartbeat(r);
      this.scheduleHeartbeat(r);
    });
  }

  private heartbeat(r: SimReplica, only?: string): void {
    this.heartbeatSeq += 1;
    for (const peer of only === undefined ? this.nodes : [only]) {
      if (peer === r.id || !this.isAlive(r.id, peer)) continue;
      this.stats.heartbeats += 1;
      this.network.send(r.id, peer, { type: 'heartbeat', opId: this.heartbeatSeq, epoch: r.core.epoch, store: r.coreStoreId });
    }
  }

  /** Restarts heartbeats (the final phase extends `daemonUntilMs`). */
  ensureDaemons(): void {
    for (const r of this.replicas.values()) {
      if (!r.up) continue;
      this.scheduleHeartbeat(r);
      r.service?.resume();
    }
  }

  private connectedPairs(): Map<string, readonly [string, string]> {
    const out = new Map<string, readonly [string, string]>();
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if (a < b && this.isUp(a) && this.isUp(b) && this.network.connected(a, b)) out.set(`${a} ${b}`, [a, b]);
      }
    }
    return out;
  }

  /**
   * Newly connected pairs (a restart, a healed partition), as the daemon's onPeerConnect: a heartbeat at once,
   * then each side hands over the writes the other missed and the lower peer ID starts a round; a device
   * waiting to join asks at once.
   */
  private connected(pairs: ReadonlyArray<readonly [string, string]>): void {
    for (const [a, b] of pairs) {
      this.stats.connects += 1;
      const ra = this.replica(a);
      const rb = this.replica(b);
      const ia = ra.incarnation;
      const ib = rb.incarnation;
      this.heartbeat(ra, b);
      this.heartbeat(rb, a);
      this.scheduler.schedule(this.scheduler.now + this.timings.syncAfterConnectMs, `connect ${a} ${b}`, () => {
        if (ra.incarnation !== ia || rb.incarnation !== ib || !ra.up || !rb.up) return;
        ra.runtime.handOver(b);
        rb.runtime.handOver(a);
        (a < b ? ra : rb).runtime.syncWith(a < b ? b : a);
      });
      ra.service?.wake();
      rb.service?.wake();
    }
  }

  // ------------------------------------------------------------------ anti-entropy

  /** Keeps every up replica's anti-entropy ticking until `aeUntilMs` (re-arms the timers parked beyond it). */
  ensureAeTicks(): void {
    for (const r of this.replicas.values()) {
      if (!r.up) continue;
      const parked = r.parkedAe;
      r.parkedAe = [];
      for (const timer of parked) {
        if (timer.cancelled) continue;
        timer.at = Math.max(timer.at, this.scheduler.now);
        this.armAe(r, timer, r.incarnation);
      }
    }
  }

  /** Anti-entropy counters summed over the current incarnations. */
  aeStats(): Record<string, number> {
    const out = { rounds: 0, matchedRounds: 0, failedRounds: 0, keysRepaired: 0, bytes: 0, tombstonesPurged: 0 };
    for (const r of this.replicas.values()) {
      const st = r.runtime.ae.stats;
      out.rounds += st.rounds;
      out.matchedRounds += st.matchedRounds;
      out.failedRounds += st.failedRounds;
      out.keysRepaired += st.keysRepaired;
      out.bytes += st.bytes;
      out.tombstonesPurged += st.tombstonesPurged;
    }
    return out;
  }

  /** Tombstones stored on `nodes` and not purged yet. */
  tombstonesWaiting(nodes: readonly string[]): number {
    let waiting = 0;
    for (const n of nodes) {
      const r = this.replica(n);
      waiting += r.runtime.ae.tombstoneView(r.core.config).waiting;
    }
    return waiting;
  }

  /** True when every node in `nodes` is up with the same digest root. */
  digestsEqual(nodes: readonly string[]): boolean {
    const roots = nodes.map((n) => {
      const r = this.replica(n);
      const root = r.runtime.digest.root();
      return r.up ? `${root.hi}:${root.lo}` : 'down';
    });
    return roots.every((x) => x !== 'down' && x === roots[0]);
  }

  // ------------------------------------------------------------------ the transports

  /** The runtime's replica transport: false when `to` cannot be reached now (the runtime reports it to the core). */
  private send(r: SimReplica, to: string, msg: Message): boolean {
    this.guarded(() => this.checkUnseated(r, to, msg));
    if (msg.type === 'transferAck' && msg.resumeAfter !== undefined) this.stats.resumedPushes += 1;
    const target = this.replicas.get(to);
    if (r.up && target !== undefined && target.up && this.network.send(r.id, to, msg)) return true;
    this.stats.sendFailures += 1;
    return false;
  }

  /** The runtime's sync transport. */
  private sendSync(r: SimReplica, to: string, inner: SyncMessage): boolean {
    this.guarded(() => this.checkUnseatedSync(r, to, inner));
    if (inner.type === 'refused') this.stats.roundsRefusedFilling += 1;
    if (inner.type === 'push') this.stats.handovers += 1;
    const target = this.replicas.get(to);
    return r.up && target !== undefined && target.up && this.network.send(r.id, to, { type: 'sync', inner });
  }

  /**
   * Whether `r` holds data the cluster must not count on: a member whose seat names another store (wiped,
   * not re-seated yet), or a device whose store never held a seat. (A removed device keeps the data it held.)
   */
  private storeWithoutSeat(r: SimReplica): boolean {
    if (this.trulySeated(r.id)) {
      r.storeEverSeated = true;
      return false;
    }
    return isMember(r.core.config, r.id) || !r.storeEverSeated;
  }

  /**
   * (j) A device whose store does not hold its seat acknowledges, answers, votes and serves nothing: checked on
   * every message it produces that says "my store holds this" (the core's own rule, checked from the outside
   * with the store the data really lives in).
   */
  private checkUnseated(r: SimReplica, to: string, msg: Message): void {
    if (!this.storeWithoutSeat(r)) return;
    const says =
      msg.type === 'writeAck' ||
      (msg.type === 'readReply' && msg.unavailable !== true) ||
      ((msg.type === 'configPromise' || msg.type === 'configAccepted') && msg.ok) ||
      msg.type === 'transfer' ||
      msg.type === 'transferAck';
    if (says) {
      throw new InvariantViolation('j', `t=${this.scheduler.now}: ${r.id} (store ${r.storeId}, holding no seat in its epoch ${r.core.epoch}) sends ${describeMessage(msg)} to ${to}`);
    }
  }

  private checkUnseatedSync(r: SimReplica, to: string, msg: SyncMessage): void {
    if (msg.type === 'refused' || !this.storeWithoutSeat(r)) return;
    throw new InvariantViolation('j', `t=${this.scheduler.now}: ${r.id} (store ${r.storeId}, holding no seat in its epoch ${r.core.epoch}) takes part in anti-entropy: ${describeSimMessage({ type: 'sync', inner: msg })} to ${to}`);
  }

  private replica(id: string): SimReplica {
    const r = this.replicas.get(id);
    if (r === undefined) throw new Error(`no replica ${id}`);
    return r;
  }

  private deliver(from: string, to: string, msg: SimMessage): void {
    const r = this.replica(to);
    if (!r.up) return;
    switch (msg.type) {
      case 'sync':
        return r.runtime.receiveSync(from, msg.inner);
      case 'heartbeat':
      case 'heartbeatAck':
        if (msg.type === 'heartbeat' && msg.store !== undefined) r.peerStores.set(from, msg.store);
        return r.runtime.notePeerEpoch(from, msg.epoch);
      case 'joinRequest':
      case 'joinReply':
        if (msg.type === 'joinRequest' && msg.store !== undefined && msg.store.length > 0) r.peerStores.set(from, msg.store);
        return r.service?.handle(from, msg);
      default:
        return r.runtime.receive(from, msg);
    }
  }
}

/** Codes of errors the runtime refuses an operation with at once (the rest fail it after trying). */
const REFUSALS: ReadonlySet<string> = new Set(['invalid_consistency', 'not_member']);

/** The voter count the coordinator's reply was decided with: of the configurations it had meanwhile, the one whose arithmetic gives `required`. */
function votersOf(god: GodView, op: PendingClientOp, required: number): number {
  for (let i = op.voters.length - 1; i >= 0; i--) {
    const voters = op.voters[i] as number;
    if (god.required(op.level, voters) === required) return voters;
  }
  return op.voters[op.voters.length - 1] as number;
}

/** A runtime's rejection as a failed result with the error's code. */
function failedResult(error: unknown): ClientResult {
  if (!(error instanceof QuorumdError)) throw error;
  return { type: 'failed', opId: 0, code: error.code as Extract<ClientResult, { type: 'failed' }>['code'], message: error.message, acks: 0, required: 0, voters: 0 };
}

/** The configuration a store holds (META_MEMBERSHIP), as the daemon loads it; none (epoch 0) when absent. */
function storedConfig(text: string | undefined): MembershipConfig {
  if (text === undefined) return NO_CONFIG;
  return { previousVoters: [], ...(JSON.parse(text) as Partial<MembershipConfig>) } as MembershipConfig;
}

function storedAcceptor(text: string | undefined): AcceptorState | undefined {
  return text === undefined ? undefined : (JSON.parse(text) as AcceptorState);
}

/** ReplicaCore.seated for a store id: `node` is a member of `config` and its seat names `store`. */
export function seatHeldBy(config: MembershipConfig, node: string, store: string): boolean {
  if (config.epoch === 0) return false;
  return seatOf(config, node)?.store === store;
}

export function fmtConfig(c: MembershipConfig): string {
  const seat = (m: { peerId: string; store?: string | undefined }): string => (m.store === undefined || m.store === `${m.peerId}.s1` ? m.peerId : `${m.peerId}@${m.store.slice(m.peerId.length + 1)}`);
  const ids = (ms: readonly { peerId: string; store?: string | undefined }[]): string => ms.map(seat).join(',');
  const joint = c.previousVoters.length > 0 ? ` prev[${c.previousVoters.join(',')}]` : '';
  const replaced = replacedIds(c).length > 0 ? ` replaced[${replacedIds(c).join(',')}]` : '';
  const learners = c.learners.length > 0 ? ` learners[${ids(c.learners)}]` : '';
  const removed = c.removed.length > 0 ? ` removed[${c.removed.join(',')}]` : '';
  return `voters[${ids(c.voters)}]${joint}${replaced}${learners}${removed}`;
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
      return `sync segmentsReply s=${m.session} records=${m.records.length} want=${m.want.length} purged=${m.purged.length}`;
    case 'push':
      return `sync push s=${m.session} records=${m.records.length} purged=${m.purged.length}`;
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
      return `readReply op=${msg.opId} ${msg.key} ${msg.unavailable === true ? 'unavailable' : fmtRecord(msg.record)}`;
    case 'read':
      return `read op=${msg.opId} ${msg.key}`;
    case 'writeAck':
      return `writeAck op=${msg.opId}`;
    case 'joinRequest':
      return `joinRequest op=${msg.opId} store=${msg.store ?? ''}`;
    case 'joinReply':
      return `joinReply op=${msg.opId} ${msg.ok ? `ok${msg.error === '' ? '' : ` (${msg.error})`}` : `refused: ${msg.error}`}`;
    default:
      return `${msg.type} e=${msg.epoch}`;
  }
}

/**
 * Configuration proofs in the simulation: a deterministic stand-in for Ed25519 (the signer's ID and a hash of the
 * payload), so every membership change is proven and checked as on devices; forging is not what is simulated.
 */
export function simAuth(self: string): ConfigAuth {
  const digest = (payload: Uint8Array): string => {
    let h = 0x811c9dc5;
    for (const byte of payload) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
    return h.toString(16);
  };
  return {
    sign: (payload) => `${self}:${digest(payload)}`,
    verify: (peer, payload, signature) => signature === `${peer}:${digest(payload)}`,
  };
}

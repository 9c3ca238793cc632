// A simulated cluster: ReplicaCore replicas with in-memory stores, executing the core's actions like the real
// runtime (src/node/runtime.ts: persist visible at once, durable after a random delay, then its `then`; anti-
// entropy with tombstone purge; hinted handoff; a device without its seat kept out of anti-entropy; the
// admission's data transfer), plus the daemon's part (heartbeats carrying the epoch, hand-over and a round on
// connect, the join loop): crashes, restarts, storage wipes (same peer ID, new empty store) and clock steps.
import { unreachable } from '../../src/core/assert.js';
import { QuorumdError } from '../../src/core/errors.js';
import { AntiEntropy, type SyncAction, type SyncMessage } from '../../src/core/anti-entropy.js';
import { MerkleDigest } from '../../src/core/digest.js';
import { hlcCompare } from '../../src/core/hlc.js';
import { type MembershipConfig, NO_CONFIG, isJoint, isMember, isRemoved, quorumIds, replacedIds, seatOf, voterIds } from '../../src/core/membership.js';
import { InboundStreamWatch, admissionTransferOver, admittedWithData, roundsDecision } from '../../src/core/fill.js';
import type { AcceptorState } from '../../src/core/paxos.js';
import type { KeyedRecord, Message } from '../../src/core/messages.js';
import { type ConsistencyLevel, majority } from '../../src/core/quorum.js';
import { type VersionedRecord, lwwWinner, recordsEqual } from '../../src/core/record.js';
import type { ConfigAuth } from '../../src/core/config-proof.js';
import { type Action, type ClientResult, type Envelope, type LocalView, ReplicaCore } from '../../src/core/replica.js';
import { type Dot, type VersionVector, dotKey, vvGet } from '../../src/core/vv.js';
import { type GodView, InvariantViolation, type StoreView, fmtRecord } from './checker.js';
import { SimHintBook } from './hints.js';
import { DeviceMembership, emptyServiceStats } from './membership.js';
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
 * Bugs of src/ that this simulator found; each is fixed in src/ now, and its flag ("workaround") makes this
 * simulator's copy of the daemon's logic behave as the fixed code does. The CI sweeps run with every flag on;
 * a run without one models the code before its fix (to see the bug again: SIM_WORKAROUNDS).
 * - takeoverAfterRestart (src/node/membership.ts, fixed): a device that starts in a joint configuration never
 *   armed the joint-phase takeover, so a proposer that restarted during its joint phase left it unfinished.
 * - finalizeConflict (src/node/membership.ts, fixed): a finalize that lost its ballot with the configuration
 *   still joint was taken as done and never retried.
 * - hintClockStep (src/node/hints.ts, fixed: hints are confirmed against a renewal mark): hints created before
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
  readonly kind: 'write' | 'read';
  readonly key: string;
  readonly level: ConsistencyLevel;
  readonly dot: Dot | undefined;
  readonly ackedBefore: readonly string[];
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
  /** The configurations kept with their proofs (the runtime's META_CONFIG_HISTORY). */
  durableHistory: readonly MembershipConfig[] = [];
  durableAcceptor: AcceptorState | undefined = undefined;
  /** The durable resume point of data-sync pushes (the runtime's META_TRANSFER_RESUME). */
  durableResume: { epoch: number; after: string } | undefined = undefined;
  /** The store the data lives in (a wipe makes a new one), and the id the runtime hands the core. */
  storeId: string;
  coreStoreId: string;
  /** The store each peer last said it runs on (heartbeats, join requests), as the daemon's map (in memory). */
  readonly peerStores = new Map<string, string>();
  storesCreated = 1;
  /** Wall clock = WALL_BASE_MS + now + skew + this (clock steps, a boot at 1970). */
  clockOffsetMs = 0;
  hints: SimHintBook | undefined;
  readonly handoverSentAtMs = new Map<string, number>();
  /** Handovers to each peer in a row that it acknowledged but that cleared no hint (see HANDOVER_REPEATS_MAX). */
  readonly handoverRepeats = new Map<string, number>();
  /** The runtime's META_JOIN_TRANSFER ('pending' between an admission and its data), in memory and durable. */
  joinPending = false;
  durableJoinPending = false;
  joinPendingSinceMs = 0;
  /** The runtime's watch of inbound data streams (src/core/fill.ts), new at every boot. */
  inbound = new InboundStreamWatch(0);
  wasSeated = false;
  /** Whether the current store ever held a seat (a removed device keeps its data; a wiped one has none yet). */
  storeEverSeated = false;
  /** The daemon's membership service (join loop, join requests, joint-phase takeover); new at every boot. */
  service: DeviceMembership | undefined;

  constructor(
    readonly id: string,
    readonly index: number,
    readonly skewMs: number,
    config: MembershipConfig,
  ) {
    this.durableConfig = config;
    this.core = undefined as unknown as ReplicaCore; // set by the cluster right after construction
    this.actor = id;
    this.storeId = `${id}.s1`;
    this.coreStoreId = this.storeId;
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

/** Keys handed over per push (the runtime's HANDOVER_KEYS_PER_PUSH). */
const HANDOVER_KEYS_PER_PUSH = 1_024;
/**
 * (l) Acknowledged handovers in a row that clear no hint: the runtime starts the next handover as soon as one is
 * delivered, so hints that are never taken as delivered make a busy loop of pushes.
 */
const HANDOVER_REPEATS_MAX = 100;

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
    hintsDelivered: 0,
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
      const replica = new SimReplica(id, index, skew, index < options.nodeCount ? this.config : NO_CONFIG);
      this.replicas.set(id, replica);
      god.configAdopted(id, replica.durableConfig);
    });
    this.network = new Network<SimMessage>(netRng, scheduler, { ...options.network }, (from, to, msg) => this.deliver(from, to, msg), describeSimMessage);
    for (const r of this.replicas.values()) this.boot(r);
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

  /** Hints waiting on every device, and the hint books' counters summed. */
  hintStats(): Record<string, number> {
    const out = { queued: 0, added: 0, delivered: 0, dropped: 0, expired: 0 };
    for (const r of this.replicas.values()) {
      if (r.hints === undefined) continue;
      out.queued += r.hints.size;
      out.added += r.hints.counters.added;
      out.delivered += r.hints.counters.delivered;
      out.dropped += r.hints.counters.dropped;
      out.expired += r.hints.counters.expired;
    }
    return out;
  }

  // ------------------------------------------------------------------ membership

  /**
   * Proposes `next` at `node` (like src/node/membership.ts does); `done` gets the result, or undefined when the
   * node is down or crashed; a proposal the core refuses to start fails with the refusal's code.
   */
  proposeConfig(node: string, next: MembershipConfig, done: (result: ClientResult | undefined) => void): void {
    const r = this.replica(node);
    if (!r.up) return done(undefined);
    let out: { opId: number; actions: Action[] };
    try {
      out = r.core.proposeConfig(next, this.scheduler.now, r);
    } catch (error) {
      if (error instanceof QuorumdError) return done(refusal(error));
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
      if (error instanceof QuorumdError) return done(refusal(error));
      throw error;
    }
    this.scheduler.trace.add(`  sync ${r.id} op=${out.opId} epoch ${r.core.epoch}${targets === undefined ? '' : ` to ${targets.join(',')}`}`);
    r.membershipOps.set(out.opId, done);
    this.execute(r, out.actions);
  }

  /** Adopts a configuration learned outside the core's messages (a join reply). */
  adoptConfig(node: string, config: MembershipConfig, from?: string): void {
    const r = this.replica(node);
    if (!r.up) return;
    this.execute(r, r.core.adoptConfig(config, r, this.scheduler.now, from));
  }

  /** Sends a runtime-level message (join request or reply); false when `to` cannot be reached now. */
  sendPlain(from: string, to: string, msg: Message): boolean {
    const target = this.replicas.get(to);
    return target !== undefined && target.up && this.network.send(from, to, msg);
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
      out = r.core.write({ key, value, context, level, dot, nowMs: now, physicalMs: this.wallMs(r.id) }, r);
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
    // A clock behind what the write supersedes (a step back, a boot at 1970 with the HLC not restored) makes a
    // last-writer-wins pick prefer the older version: counted, not a violation (siblings are kept by causality).
    if ((before?.siblings ?? []).some((s) => hlcCompare(s.hlc, sibling.hlc) >= 0)) this.stats.hlcBehind += 1;
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
    r.peerStores.clear(); // the daemon's memory
    r.incarnation += 1;
    r.tickAt = undefined;
    r.aeTickAt = undefined;
    r.service?.stop();
    r.service = undefined;
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

  /**
   * The device's storage is lost (disk replaced, database deleted, re-flashed), its identity (peer key) kept:
   * it goes down at once and restarts (restart()) with an empty store under a new store id, no configuration,
   * no acceptor state and no hints. It then asks to join, and the member it asks gives its seat to the new store.
   */
  wipe(node: string): void {
    const r = this.replica(node);
    this.crash(node);
    this.stats.wipes += 1;
    const touched = new Set([...r.store.keys(), ...r.durable.keys()]);
    r.store = new Map();
    r.durable.clear();
    r.durableConfig = NO_CONFIG;
    r.durableHistory = [];
    r.durableAcceptor = undefined;
    r.durableResume = undefined;
    r.durableJoinPending = false;
    r.hints = undefined;
    r.storesCreated += 1;
    this.wipedNodes.add(node);
    r.storeId = `${r.id}.s${r.storesCreated}`;
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
      for (const state of [r.up ? r.core.acceptorState : undefined, r.durableAcceptor]) {
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
      for (const state of [r.up ? r.core.acceptorState : undefined, r.durableAcceptor]) {
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
      r.dotCounter = Math.max(0, ...[...r.durable.values()].map((rec) => vvGet(rec.context, r.id)));
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

  // ------------------------------------------------------------------ the daemon's part

  /** What the runtime and daemon do at start-up: the core from the durable state, digest, hints, join loop. */
  private boot(r: SimReplica): void {
    r.core = this.newCore(r);
    if (r.durableResume !== undefined) r.core.setTransferResume(r.durableResume.epoch, r.durableResume.after);
    r.digest = new MerkleDigest();
    r.ae = this.newAe(r);
    r.aeTickAt = undefined;
    r.tickAt = undefined;
    // The runtime's start-up scan: in key order, every record into the digest and anti-entropy's tombstone list.
    for (const key of [...r.store.keys()].sort()) {
      const record = r.store.get(key) as VersionedRecord;
      r.digest.update(key, undefined, record);
      r.ae?.noteStored(key, record, this.scheduler.now);
    }
    const incarnation = r.incarnation;
    const hintClock = this.options.workarounds.includes('hintClockStep') ? () => WALL_BASE_MS + this.scheduler.now : () => this.wallMs(r.id);
    r.hints = new SimHintBook({ hintsMax: this.options.hintsMax, hintTtlMs: this.options.hintTtlMs }, hintClock, (apply) => this.persist(r, undefined, undefined, undefined, () => r.incarnation === incarnation && apply()), r.hints?.durable);
    r.handoverSentAtMs.clear();
    r.joinPending = r.durableJoinPending;
    r.joinPendingSinceMs = this.scheduler.now;
    r.inbound = new InboundStreamWatch(this.timings.inboundQuietMs);
    r.wasSeated = r.core.seated();
    if (this.trulySeated(r.id)) r.storeEverSeated = true;
    this.checkJoinTransfer(r, r.core.config, true);
    r.service = new DeviceMembership(r.id, this, this.rng.fork());
    r.service.start();
    // Known bug takeoverAfterRestart: the daemon arms no takeover for the configuration it starts with.
    if (this.options.workarounds.includes('takeoverAfterRestart')) r.service.onConfigChange(r.core.config);
    this.scheduleHeartbeat(r);
    this.ensureAeTick(r);
  }

  private newCore(r: SimReplica): ReplicaCore {
    const opIdBase = (r.index + 1) * 1_000_000_000 + r.incarnation * 1_000_000;
    return new ReplicaCore({
      self: r.id,
      config: r.durableConfig,
      acceptor: r.durableAcceptor,
      requestTimeoutMs: this.options.requestTimeoutMs,
      membershipTimeoutMs: this.options.requestTimeoutMs * 4,
      transferIdleMs: this.timings.transferIdleMs,
      transferBatchRecords: 2,
      opIdBase,
      store: r.coreStoreId,
      auth: simAuth(r.id),
      history: r.durableHistory,
    });
  }

  private newAe(r: SimReplica): AntiEntropy | undefined {
    if (this.options.antiEntropyIntervalMs <= 0) return undefined;
    return new AntiEntropy({
      self: r.id,
      intervalMs: this.options.antiEntropyIntervalMs,
      bytesPerSec: 1e9,
      requestTimeoutMs: this.options.requestTimeoutMs * 4,
      tombstoneGraceMs: this.options.bug === 'noGrace' ? 0 : this.options.tombstoneGraceMs,
    });
  }

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
        this.handOver(ra, b);
        this.handOver(rb, a);
        this.syncWith(a < b ? ra : rb, a < b ? b : a);
      });
      ra.service?.wake();
      rb.service?.wake();
    }
  }

  /** The configuration anti-entropy works with: none while this device holds no seat (Runtime.aeConfig). */
  private aeConfig(r: SimReplica): MembershipConfig {
    const config = r.core.config;
    return r.core.seated(config) ? config : { ...config, voters: [], learners: [], previousVoters: [], replaced: [] };
  }

  private handOver(r: SimReplica, peer: string): void {
    const ae = r.ae;
    if (ae === undefined || r.hints === undefined || !r.up || !this.isAlive(r.id, peer)) return;
    const keys = r.hints.take(peer, HANDOVER_KEYS_PER_PUSH);
    if (keys.length === 0) return;
    const actions = ae.handOver(peer, keys, this.scheduler.now, this.aeConfig(r), r);
    if (actions.length > 0) {
      r.handoverSentAtMs.set(peer, this.options.workarounds.includes('hintClockStep') ? WALL_BASE_MS + this.scheduler.now : this.wallMs(r.id));
      this.stats.handovers += 1;
    }
    this.executeSync(r, actions);
  }

  private handOverAll(r: SimReplica): void {
    const hints = r.hints;
    if (hints === undefined) return;
    hints.expire();
    const config = r.core.config;
    for (const peer of hints.peers()) {
      if (config.epoch > 0 && !isMember(config, peer)) hints.dropPeer(peer);
      else this.handOver(r, peer);
    }
  }

  private syncWith(r: SimReplica, peer: string): void {
    if (r.ae === undefined) return;
    this.executeSync(r, r.ae.startRound(peer, this.scheduler.now, this.aeConfig(r), r));
  }

  // ------------------------------------------------------------------ the admission's data transfer (runtime)
  // The decisions are the runtime's own (src/core/fill.ts); the state and its durability are modelled here.

  private setJoinPending(r: SimReplica, pending: boolean): void {
    r.joinPending = pending;
    if (pending) r.joinPendingSinceMs = this.scheduler.now;
    this.persist(r, undefined, undefined, undefined, () => {
      r.durableJoinPending = pending;
    });
  }

  private checkJoinTransfer(r: SimReplica, config: MembershipConfig, startingUp: boolean): void {
    if (r.joinPending && admissionTransferOver(config, r.id, r.core.seated(config), startingUp)) this.setJoinPending(r, false);
  }

  private holdRounds(r: SimReplica): boolean {
    const decision = roundsDecision({
      joinPending: r.joinPending,
      inboundActive: this.inboundStreamActive(r),
      config: r.core.config,
      self: r.id,
      nowMs: this.scheduler.now,
      joinPendingSinceMs: r.joinPendingSinceMs,
      inboundChangedAtMs: r.inbound.changedAt,
      transferIdleMs: this.timings.transferIdleMs,
    });
    if (decision !== 'stalled') return decision === 'hold';
    this.setJoinPending(r, false);
    return false;
  }

  private inboundStreamActive(r: SimReplica): boolean {
    let keys = 0;
    for (const s of r.core.streams()) if (s.role === 'receiving') keys += s.keys;
    return r.inbound.observe(keys, this.scheduler.now);
  }

  // ------------------------------------------------------------------ anti-entropy

  /** Keeps every up replica's anti-entropy ticking until `aeUntilMs`. */
  ensureAeTicks(): void {
    for (const r of this.replicas.values()) this.ensureAeTick(r);
  }

  private ensureAeTick(r: SimReplica, at?: number): void {
    const ae = r.ae;
    if (!r.up || ae === undefined) return;
    const deadline = at ?? Math.max(ae.nextDeadlineMs() ?? this.scheduler.now, this.scheduler.now);
    if (deadline > this.aeUntilMs || (r.aeTickAt !== undefined && r.aeTickAt <= deadline)) return;
    r.aeTickAt = deadline;
    const incarnation = r.incarnation;
    this.scheduler.schedule(deadline, `aeTick ${r.id}`, () => {
      if (r.incarnation !== incarnation || r.aeTickAt !== deadline || !r.up) return;
      r.aeTickAt = undefined;
      if (!ae.stats.running && this.holdRounds(r)) {
        // A membership sync is streaming everything here (or will): rounds would fetch it twice.
        const later = this.scheduler.now + this.timings.catchUpDeferMs;
        ae.wake(later);
        this.ensureAeTick(r, later);
        return;
      }
      const isAlive = (p: string): boolean => this.isAlive(r.id, p);
      this.executeSync(r, ae.tick(this.scheduler.now, this.rng.float(), this.aeConfig(r), isAlive, r));
      this.handOverAll(r);
      this.onAeTick?.();
    });
  }

  /** Anti-entropy counters summed over the current incarnations. */
  aeStats(): Record<string, number> {
    const out = { rounds: 0, matchedRounds: 0, failedRounds: 0, keysRepaired: 0, bytes: 0, tombstonesPurged: 0 };
    for (const r of this.replicas.values()) {
      const st = r.ae?.stats;
      if (st === undefined) continue;
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
      waiting += r.ae?.tombstoneView(r.core.config).waiting ?? 0;
    }
    return waiting;
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
        case 'purge': {
          const current = r.store.get(action.key);
          // The core decides a purge on the store it reads, in the same step: anything else is a core bug.
          if (current === undefined || !recordsEqual(current, action.record)) throw new Error(`purge of ${action.key} at ${r.id}: the stored version is not the one decided on`);
          this.stats.purges += 1;
          this.scheduler.trace.add(`  purge ${r.id} ${action.key} ${fmtRecord(current)}`);
          this.god.purged(r.id, action.key, current);
          this.persist(r, action.key, null, undefined, undefined, true);
          break;
        }
        case 'hintsDelivered': {
          const sentAtMs = r.handoverSentAtMs.get(action.peer) ?? -Infinity;
          r.handoverSentAtMs.delete(action.peer);
          const key = action.keys[0];
          const createdAt = key === undefined ? undefined : r.hints?.createdAt(action.peer, key);
          const cleared = r.hints?.delivered(action.peer, action.keys, sentAtMs) ?? 0;
          const repeats = cleared === 0 && action.keys.length > 0 ? (r.handoverRepeats.get(action.peer) ?? 0) + 1 : 0;
          r.handoverRepeats.set(action.peer, repeats);
          if (repeats >= HANDOVER_REPEATS_MAX) {
            throw new InvariantViolation(
              'l',
              `t=${this.scheduler.now}: ${r.id} handed the hints of ${action.keys.length} key(s) (${action.keys.slice(0, 3).join(', ')}) over to ${action.peer} ${repeats} times in a row, acknowledged each time, and never took them as delivered (hint of ${key} created at wall ${createdAt} ms, handovers started at wall ${sentAtMs} ms): a busy loop of pushes`,
            );
          }
          this.stats.hintsDelivered += action.keys.length;
          this.handOver(r, action.peer); // the next batch, if any
          break;
        }
        case 'send':
          this.checkUnseatedSync(r, action.to, action.msg);
          this.sendSync(r, action.to, action.msg);
          break;
        case 'sendDurable': {
          const { to, msg } = action;
          this.checkUnseatedSync(r, to, msg);
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

  /** Runtime.receiveSync: rounds held while a data stream fills this device, refused while it is filling. */
  private receiveSync(r: SimReplica, from: string, msg: SyncMessage): void {
    const ae = r.ae;
    if (ae === undefined) return;
    if ((msg.type === 'digestReply' || msg.type === 'segmentsReply') && this.holdRounds(r)) {
      ae.abortRound(this.scheduler.now);
      ae.wake(this.scheduler.now + this.timings.catchUpDeferMs);
      this.ensureAeTick(r);
      return;
    }
    if ((msg.type === 'digest' || msg.type === 'segments') && r.joinPending) {
      this.stats.roundsRefusedFilling += 1;
      this.sendSync(r, from, { type: 'refused', session: msg.session, reason: 'catching up' });
      return;
    }
    this.executeSync(r, ae.step(from, msg, this.scheduler.now, this.aeConfig(r), r));
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
        return this.receiveSync(r, from, msg.inner);
      case 'heartbeat':
      case 'heartbeatAck':
        if (msg.type === 'heartbeat' && msg.store !== undefined) r.peerStores.set(from, msg.store);
        return this.execute(r, r.core.peerEpoch(from, msg.epoch, this.scheduler.now));
      case 'joinRequest':
      case 'joinReply':
        if (msg.type === 'joinRequest' && msg.store !== undefined && msg.store.length > 0) r.peerStores.set(from, msg.store);
        return r.service?.handle(from, msg);
      default:
        r.core.setPhysicalMs(this.wallMs(r.id)); // as the runtime does for every peer message
        return this.execute(r, r.core.step(from, msg, r, this.scheduler.now));
    }
  }

  // ------------------------------------------------------------------ executing the core's actions

  /** Runs actions in order, as the runtime must. */
  private execute(r: SimReplica, actions: readonly Action[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'persist':
          if (action.then !== undefined && action.then.to !== r.id) this.checkUnseated(r, action.then.to, action.then.msg);
          this.persist(r, action.key, action.record, action.then);
          break;
        case 'persistConfig': {
          const config = action.config;
          this.god.configAdopted(r.id, config);
          this.god.touchAll(); // a new configuration makes new read quorums assemblable: check every key
          this.scheduler.trace.add(`  ${r.id} adopts epoch ${config.epoch}: ${fmtConfig(config)}`);
          const history = action.history;
          this.persist(r, undefined, undefined, action.then, () => {
            if (config.epoch > r.durableConfig.epoch) r.durableConfig = config;
            if (history !== undefined && config.epoch >= r.durableConfig.epoch) r.durableHistory = history;
          });
          // The runtime: an admission (or its seat given to this new store) in a cluster that has data: the
          // data arrives by the admitting change's sync; the membership service reacts to the new configuration.
          const seated = r.core.seated(config);
          if (this.trulySeated(r.id)) r.storeEverSeated = true;
          if (admittedWithData(config, r.id, seated, r.wasSeated)) this.setJoinPending(r, true);
          r.wasSeated = seated;
          this.checkJoinTransfer(r, config, false);
          r.service?.onConfigChange(config);
          break;
        }
        case 'persistAcceptor': {
          const state = action.state;
          if (action.then.to !== r.id) this.checkUnseated(r, action.then.to, action.then.msg);
          this.persist(r, undefined, undefined, action.then, () => {
            r.durableAcceptor = state;
          });
          break;
        }
        case 'flush': {
          const then = action.then;
          if (then.to !== r.id) this.checkUnseated(r, then.to, then.msg);
          if (this.options.bug === 'ackBeforeDurable') this.deliverThen(r, then);
          else this.afterDurable(r, () => this.deliverThen(r, then));
          break;
        }
        case 'send':
          this.checkUnseated(r, action.to, action.msg);
          this.send(r, action.to, action.msg);
          break;
        case 'hint':
          this.stats.hints += 1;
          r.hints?.add(action.peer, action.key);
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
          if (r.joinPending) this.setJoinPending(r, false);
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

  /**
   * Applies at once (the next local.get sees it); durable later, in order; then delivers `then`. `record` null
   * removes the key (a purge); undefined with no key persists nothing but orders `then` and `onDurable`.
   */
  private persist(r: SimReplica, key: string | undefined, record: VersionedRecord | null | undefined, then: Envelope | undefined, onDurable?: () => void, fromAe = false): void {
    let stored = record;
    if (key !== undefined && record !== undefined) {
      if (this.options.bug === 'lwwStore' && record !== null && record.siblings.length > 1) {
        const winner = lwwWinner(record);
        stored = { context: record.context, siblings: winner === undefined ? [] : [winner] };
      }
      r.digest.update(key, r.store.get(key), stored ?? undefined);
      if (!fromAe) r.ae?.noteStored(key, stored ?? undefined, this.scheduler.now);
      if (stored === null) r.store.delete(key);
      else r.store.set(key, stored as VersionedRecord);
      this.god.changed(r.id, key, false);
      this.stats.persists += 1;
      if (stored !== null) this.stats.maxSiblings = Math.max(this.stats.maxSiblings, (stored as VersionedRecord).siblings.length);
    }
    const at = Math.max(this.scheduler.now + this.rng.int(...this.options.durabilityMs), r.lastDurableAt);
    r.lastDurableAt = at;
    const incarnation = r.incarnation;
    const early = this.options.bug === 'ackBeforeDurable';
    if (early && then !== undefined) this.deliverThen(r, then);
    this.scheduler.schedule(at, `durable ${r.id} ${key ?? 'meta'} ${stored === null ? '(purged)' : fmtRecord(stored)}`, () => {
      if (r.incarnation !== incarnation) return; // lost in a crash
      if (key !== undefined && stored !== undefined) {
        if (stored === null) r.durable.delete(key);
        else r.durable.set(key, stored);
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

/** ReplicaCore.seated for a store id: `node` is a member of `config` and its seat names `store`. */
export function seatHeldBy(config: MembershipConfig, node: string, store: string): boolean {
  if (config.epoch === 0) return false;
  return seatOf(config, node)?.store === store;
}

/** A refusal at the start of a membership operation, as a failed result with the error's code. */
function refusal(error: QuorumdError): ClientResult {
  return { type: 'failed', opId: 0, code: error.code as Extract<ClientResult, { type: 'failed' }>['code'], message: error.message, acks: 0, required: 0, voters: 0 };
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
function simAuth(self: string): ConfigAuth {
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

// The replica state machine: coordinates client writes, reads and deletes (any member may coordinate), serves
// replica requests, decides membership changes (single-decree Paxos per epoch, any member may propose) and runs
// the data syncs that make a voter change safe. Pure: inputs are calls, outputs are Actions the runtime executes
// in order (persist, send, reply), like etcd-io/raft's Ready. Time comes in as `nowMs`.
//
// This module is the facade: it owns the configuration in force (adoption, telling peers that are behind), the
// operation table and the clock, routes each message to its sub-machine and composes them:
// coordinators.ts (client writes, reads, probes), serving.ts (answering replica requests), config-change.ts
// (Paxos proposer and acceptor), streams.ts (data syncs and their streams). actions.ts is the Ready contract.
import type { Action, ClientResult, Envelope, FailureCode, LocalView, ReadRequest, ReplicaCoreOptions, StreamProgress, WriteRequest } from './actions.js';
import { AssertionError, assert, unreachable } from './assert.js';
import { ConfigChange } from './config-change.js';
import { CHAIN_SENT_MAX, CONFIG_HISTORY_MAX, type ConfigAuth, provenChain } from './config-proof.js';
import { Coordinators } from './coordinators.js';
import { DEFAULTS } from '../config/defaults.js';
import { NotMemberError } from './errors.js';
import { type Hlc, HLC_ZERO, hlcAdopt, hlcTick } from './hlc.js';
import { type MembershipConfig, isMember, isRemoved, replicaIds, seatOf } from './membership.js';
import type { Message } from './messages.js';
import type { Op, ProbeOp, ReplicaHost } from './ops.js';
import { type AcceptorState, acceptorFor, emptyAcceptor } from './paxos.js';
import type { VersionedRecord } from './record.js';
import { Serving } from './serving.js';
import { DataStreams } from './streams.js';

// Every name this module exported before it was split, so importers need no change.
export type { Action, ClientResult, Envelope, FailureCode, LocalView, ProbeReply, ReadRequest, ReplicaCoreOptions, StreamProgress, WriteRequest } from './actions.js';
export { AWAITING_ACKS_MAX, previousNeeded } from './coordinators.js';
export { OUT_STREAMS_MAX } from './streams.js';

/** Upper bound on concurrently coordinated operations; the runtime refuses more (backpressure). */
export const OPS_IN_FLIGHT_MAX = 100_000;
/** Peers remembered as told about our configuration (forgotten all at once beyond this). */
const TOLD_PEERS_MAX = 1024;
/**
 * A peer still speaking from an older epoch this long after it was told ours is told again: the announcement
 * was lost, or the peer is another store under the same peer ID (an old card put back), which must learn it.
 */
const RETELL_STALE_MS = 1_000;
/**
 * A configuration a non-member brings is checked (its proof verified) at most once per this interval, all
 * non-members together: bounds the CPU a key holder can make us spend on forged proofs (10 checks a second, a
 * few ms); a genuine one from a voter we do not know yet is retold every second (RETELL_STALE_MS).
 */
const STRANGER_CONFIG_CHECK_INTERVAL_MS = 100;
/** Join targets remembered (see admissionFrom): a join loop asks a few members in turn. */
const ADMISSION_PEERS_MAX = 16;

export class ReplicaCore {
  readonly self: string;
  private configCurrent: MembershipConfig;
  private opIdNext: number;
  /** The first operation id of this run: ids from opIdFirst to opIdNext - 1 are this replica's own. */
  private readonly opIdFirst: number;
  private hlcLast: Hlc;
  private readonly hlcDriftMaxMs: number;
  /** The wall clock as last given (setPhysicalMs, or a write's physicalMs); -Infinity: unknown, adopt nothing. */
  private physicalMs = -Infinity;
  /** This device's store id and whether seats without one are ours (see ReplicaCoreOptions). */
  private readonly store: string | undefined;
  private readonly legacySeat: boolean;
  /** Peers told our configuration because they spoke from an older epoch: peer -> epoch told (bounded). */
  private readonly toldEpoch = new Map<string, { readonly epoch: number; readonly atMs: number; readonly heard: number }>();
  private readonly ops = new Map<number, Op>();
  /** Peers we asked to join, whose announcement of a configuration seating us is adopted at epoch 0 (bounded). */
  private readonly admissionPeers = new Set<string>();
  /** Before this time a configuration from a non-member is not checked (see onConfigAnnounced). */
  private strangerConfigCheckAtMs = -Infinity;
  /** Committed configurations in epoch order, ending with the current one, with their proofs (bounded). */
  private history: MembershipConfig[];
  /** Verifies the proofs of configurations we adopt (see ReplicaCoreOptions.auth); signs our accepts. */
  private readonly auth: ConfigAuth | undefined;
  private readonly coordinators: Coordinators;
  private readonly serving: Serving;
  private readonly configChange: ConfigChange;
  private readonly dataStreams: DataStreams;

  constructor(options: ReplicaCoreOptions) {
    assert(options.requestTimeoutMs > 0, 'requestTimeoutMs is positive');
    assert(Number.isSafeInteger(options.opIdBase) && options.opIdBase >= 0, 'opIdBase is a safe integer');
    this.self = options.self;
    this.configCurrent = options.config;
    this.opIdNext = options.opIdBase + 1;
    this.opIdFirst = this.opIdNext;
    this.hlcLast = options.hlc ?? HLC_ZERO;
    this.store = options.store;
    this.legacySeat = options.legacySeat ?? false;
    // Devices pass src/config/defaults.ts's hlcDriftMaxMs; cores built without one (tests) get the same default.
    this.hlcDriftMaxMs = options.hlcDriftMaxMs ?? DEFAULTS.hlcDriftMaxMs;
    this.auth = options.auth;
    const kept = (options.history ?? []).filter((c) => c.epoch < options.config.epoch && c.clusterId === options.config.clusterId);
    this.history = options.config.epoch === 0 ? [] : [...kept, options.config].slice(-CONFIG_HISTORY_MAX);
    const host: ReplicaHost = {
      self: this.self,
      ops: this.ops,
      config: () => this.configCurrent,
      epoch: () => this.epoch,
      seated: (config) => this.seated(config),
      assertMember: () => this.assertMember(),
      allocateOpId: () => this.allocateOpId(),
      ownsOpId: (opId) => opId >= this.opIdFirst && opId < this.opIdNext,
      observe: (record) => this.observe(record),
      tickHlc: (physicalMs) => {
        this.physicalMs = physicalMs;
        this.hlcLast = hlcTick(this.hlcLast, physicalMs);
        return this.hlcLast;
      },
      maybeAdopt: (config, local, nowMs, chain) => this.maybeAdopt(config, local, nowMs, chain),
      deliverTo: (to, msg, actions, local, nowMs) => this.deliverTo(to, msg, actions, local, nowMs),
      configFor: (peerEpoch) => this.configFor(peerEpoch),
      acceptsDataFrom: (from, epoch) => this.serving.acceptsDataFrom(from, epoch),
    };
    this.coordinators = new Coordinators(host, options.requestTimeoutMs);
    this.serving = new Serving(host);
    const acceptor = acceptorFor(options.acceptor ?? emptyAcceptor(options.config.epoch), options.config.epoch);
    this.configChange = new ConfigChange(host, acceptor, options.membershipTimeoutMs ?? options.requestTimeoutMs, this.auth);
    const { transferIdleMs, transferBatchRecords, transferBatchBytes } = options;
    this.dataStreams = new DataStreams(host, { epoch: options.config.epoch, transferIdleMs, transferBatchRecords, transferBatchBytes });
  }

  /** The configurations kept with their proofs (see the persistConfig action), oldest first. */
  get configHistory(): readonly MembershipConfig[] {
    return this.history;
  }

  /** The wall-clock time now (ms since the epoch): bounds how far remote timestamps may move our clock. */
  setPhysicalMs(physicalMs: number): void {
    this.physicalMs = physicalMs;
  }

  /** The hybrid logical clock: at least every timestamp issued here (the runtime keeps it durably). */
  get hlc(): Hlc {
    return this.hlcLast;
  }

  /**
   * Whether this device holds its seat in `config` (default: the current one): it is a member there and the
   * seat's store is this device's store. Only a seated device acknowledges writes and data, answers reads,
   * votes in membership decisions, serves data streams or coordinates anything: a device whose storage was
   * wiped (same peer ID, new store) would otherwise answer from an empty store, or vote without the promises
   * it lost. It waits, unseated, for a change that gives the seat to its store (withSeatReplaced).
   */
  seated(config: MembershipConfig = this.configCurrent): boolean {
    if (config.epoch === 0) return false;
    const seat = seatOf(config, this.self);
    if (seat === undefined) return false;
    return seat.store === this.store || (seat.store === undefined && this.legacySeat);
  }

  /**
   * The proposer whose value this acceptor last accepted for the configuration of `epoch` (usually the device
   * that committed it and now runs its data sync), or else the first device that announced it to us.
   */
  proposerOf(epoch: number): string | undefined {
    return this.configChange.proposerOf(epoch);
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

  get acceptorState(): AcceptorState {
    return this.configChange.acceptor;
  }

  /** Data streams in progress (and recently finished incoming ones), for /status. */
  streams(): StreamProgress[] {
    return this.dataStreams.streams();
  }

  /** After a restart: pushes of `epoch` were durable here up to `after` (the last transferProgress action). */
  setTransferResume(epoch: number, after: string): void {
    this.dataStreams.setTransferResume(epoch, after);
  }

  /** Whether a membership change or a sync is being coordinated here. */
  membershipBusy(): boolean {
    for (const op of this.ops.values()) if (op.kind === 'config' || op.kind === 'sync') return true;
    return false;
  }

  /** The deadline of one operation (undefined once it is finished). */
  deadlineOf(opId: number): number | undefined {
    return this.ops.get(opId)?.deadlineMs;
  }

  /** The earliest operation deadline, so the runtime knows when to call tick(). */
  nextDeadlineMs(): number | undefined {
    let next: number | undefined;
    for (const op of this.ops.values()) {
      if (next === undefined || op.deadlineMs < next) next = op.deadlineMs;
    }
    const streams = this.dataStreams.nextDeadlineMs();
    if (streams !== undefined && (next === undefined || streams < next)) next = streams;
    const awaiting = this.coordinators.nextAwaitingDeadlineMs();
    if (awaiting !== undefined && (next === undefined || awaiting < next)) next = awaiting;
    return next;
  }

  /** Client write or delete coordinated here (see Coordinators.write). */
  write(request: WriteRequest, local: LocalView): { opId: number; actions: Action[] } {
    return this.coordinators.write(request, local);
  }

  /** Client read coordinated here (see Coordinators.read). */
  read(request: ReadRequest, local: LocalView): { opId: number; actions: Action[] } {
    return this.coordinators.read(request, local);
  }

  /** Asks every replica for its copy of `key`, repairing nothing (see Coordinators.probe). */
  probe(key: string, nowMs: number, local: LocalView, timeoutMs = this.coordinators.requestTimeoutMs): { opId: number; actions: Action[] } {
    return this.coordinators.probe(key, nowMs, local, timeoutMs);
  }

  /** Proposes `proposed` as the configuration of the next epoch (see ConfigChange.proposeConfig). */
  proposeConfig(proposed: MembershipConfig, nowMs: number, local: LocalView): { opId: number; actions: Action[] } {
    return this.configChange.proposeConfig(proposed, nowMs, local);
  }

  /** Starts a data sync (see DataStreams.sync). */
  sync(nowMs: number, local: LocalView, targets?: readonly string[]): { opId: number; actions: Action[] } {
    return this.dataStreams.sync(nowMs, local, targets);
  }

  /** A message from another replica (or this one's own acknowledgement after a durable write). */
  step(from: string, msg: Message, local: LocalView, nowMs: number): Action[] {
    // Membership is the authority for every message: only a member of our configuration is heard (and
    // answered). Anyone else holding the cluster key gets the join protocol (handled by the runtime) and
    // nothing here: no data, no acknowledgement, no configuration. A configuration is the one exception: it is
    // taken from anyone, but only with proof that the voters chose it (see maybeAdopt).
    if (from !== this.self && !this.hears(from, msg)) return this.tellRemoved(from, msg, nowMs);
    const actions = this.dispatch(from, msg, local, nowMs);
    if (from !== this.self && this.fromMember(from)) this.tellIfStale(from, msg.epoch, nowMs, actions);
    return actions;
  }

  /**
   * A device our configuration removed, speaking from an older epoch (it was down when its removal was
   * announced), is told the configuration that removed it, with its proof chain: it held the membership, so that
   * tells it nothing new, and until it knows it keeps serving its stale copy to its local clients (seed 516684:
   * a purged delete's value read back there) instead of showing role `removed`. Nothing else is answered.
   */
  private tellRemoved(from: string, msg: Message, nowMs: number): Action[] {
    if (from === this.self || !isRemoved(this.configCurrent, from)) return [];
    const actions: Action[] = [];
    this.tellIfStale(from, msg.epoch, nowMs, actions);
    return actions;
  }

  /**
   * Whether `peer` speaks for a seat of our configuration: a voter, a learner, or (joint phase) a previous
   * voter; never a removed device. A device of a newer configuration that we have not adopted yet is not
   * heard until we have: it (or anyone) brings us that configuration with its proof first.
   */
  fromMember(peer: string): boolean {
    const config = this.configCurrent;
    if (config.epoch === 0 || isRemoved(config, peer)) return false;
    return isMember(config, peer) || config.previousVoters.includes(peer);
  }

  private hears(from: string, msg: Message): boolean {
    if (msg.type === 'config') return true;
    // Not a member of anything yet (waiting to join, or a wiped device): we hold nothing we would serve, so a
    // read is answered "unavailable" (which says nothing) and everything else is dropped.
    if (this.epoch === 0) return msg.type === 'read';
    return this.fromMember(from);
  }

  private dispatch(from: string, msg: Message, local: LocalView, nowMs: number): Action[] {
    switch (msg.type) {
      case 'write':
        return this.serving.onWrite(from, msg, local);
      case 'writeAck':
        return this.coordinators.onWriteAck(from, msg.opId, msg.epoch);
      case 'read':
        return this.serving.onRead(from, msg, local);
      case 'readReply':
        return msg.unavailable === true ? this.coordinators.onReadUnavailable(from, msg.opId, local) : this.coordinators.onReadReply(from, msg.opId, msg.record, local);
      case 'repair':
        return this.serving.onRepair(from, msg, local);
      case 'stale':
        return this.coordinators.onStale(from, msg.opId, msg.config, msg.chain ?? [], local, nowMs);
      case 'config':
        if (from === this.self) return this.dataStreams.onConfigDurable(msg.epoch, local, nowMs);
        return this.onConfigAnnounced(from, msg.config, msg.chain ?? [], local, nowMs);
      case 'configPrepare':
        return this.configChange.onPrepare(from, msg, local, nowMs);
      case 'configPromise':
        return this.configChange.onPromise(from, msg, local, nowMs);
      case 'configAccept':
        return this.configChange.onAccept(from, msg, local, nowMs);
      case 'configAccepted':
        return this.configChange.onAccepted(from, msg, local, nowMs);
      case 'transferRequest':
        return this.dataStreams.onTransferRequest(from, msg, local, nowMs);
      case 'transfer':
        return this.dataStreams.onTransfer(from, msg, local, nowMs);
      case 'transferAck':
        return this.dataStreams.onTransferAck(from, msg, local, nowMs);
      case 'joinRequest':
      case 'joinReply':
      case 'heartbeat':
      case 'heartbeatAck':
        throw new AssertionError(`${msg.type} is handled by the runtime, not the replica core`);
      default:
        return unreachable(msg);
    }
  }

  /**
   * A peer's epoch seen outside the core's messages (its heartbeats): a peer behind us (it missed a commit
   * while down, and an idle cluster sends it nothing else) is told the current configuration.
   */
  peerEpoch(from: string, epoch: number, nowMs: number): Action[] {
    const actions: Action[] = [];
    // Only a member is told our configuration (it is none of a non-member's business), and a removed device
    // its removal (tellRemoved).
    if (from !== this.self && (this.fromMember(from) || isRemoved(this.configCurrent, from))) this.tellIfStale(from, epoch, nowMs, actions);
    return actions;
  }

  /** The send of `msg` to `to` failed (no connection): count it against the operation at once. */
  sendFailed(to: string, msg: Message, local: LocalView, nowMs: number): Action[] {
    if (!('opId' in msg)) return [];
    const actions: Action[] = [];
    if (msg.type === 'transfer' || msg.type === 'transferAck') {
      if (msg.type === 'transfer') this.dataStreams.transferFailed(to, msg.opId, local, nowMs, actions);
      return actions;
    }
    const op = this.ops.get(msg.opId);
    if (op === undefined) return msg.type === 'write' ? this.coordinators.answeredWriteFailed(to, msg.opId) : [];
    if (op.kind === 'write' && msg.type === 'write') {
      op.unreachable.add(to);
      this.coordinators.progressWrite(msg.opId, op, actions);
    } else if (op.kind === 'read' && msg.type === 'read') {
      op.unreachable.add(to);
      this.coordinators.progressRead(msg.opId, op, local, actions);
      if (op.replied && this.coordinators.readSettled(op)) this.ops.delete(msg.opId);
    } else if (op.kind === 'config' && (msg.type === 'configPrepare' || msg.type === 'configAccept')) {
      op.refused.add(to);
      this.configChange.progressConfig(msg.opId, op, local, nowMs, actions);
    } else if (op.kind === 'sync' && msg.type === 'transferRequest') {
      op.gatherFailed.add(to);
      this.dataStreams.progressSync(msg.opId, op, local, nowMs, actions);
    } else if (op.kind === 'probe' && msg.type === 'read') {
      op.unreachable.add(to);
      this.coordinators.progressProbe(msg.opId, op, actions, false);
    }
    return actions;
  }

  /** Fails operations whose deadline has passed; drops idle data streams; hints replicas silent on a write. */
  tick(nowMs: number, local: LocalView): Action[] {
    const actions: Action[] = [];
    for (const [opId, op] of this.ops) {
      if (op.deadlineMs > nowMs) continue;
      // A push in flight has its own idle deadline: a silent target is dropped there and the sync falls back
      // to another voter (below), instead of failing as a whole first.
      if (op.kind === 'sync' && (op.progressed || (op.phase === 'push' && op.pushing.size > 0))) {
        op.progressed = false;
        op.deadlineMs = nowMs + this.dataStreams.transferIdleMs;
        continue;
      }
      if (op.kind === 'probe') {
        this.coordinators.progressProbe(opId, op, actions, true);
        continue;
      }
      this.ops.delete(opId);
      if (op.kind === 'read' && op.replied) continue;
      if (op.kind === 'write') this.coordinators.hintMissing(op, actions);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
    }
    this.coordinators.tickAnswered(nowMs, actions);
    this.dataStreams.dropIdle(nowMs, local, actions);
    return actions;
  }

  /**
   * Adopts a committed configuration learned outside the core's own messages: the join reply of the member
   * `from` that we asked to join. Before we are a member of anything, only a configuration that names us is
   * taken (see admissionFrom).
   */
  adoptConfig(config: MembershipConfig, local: LocalView, nowMs: number, from?: string): Action[] {
    if (this.epoch === 0) {
      if (from !== undefined) this.admissionFrom(from);
      return isMember(config, this.self) ? this.maybeAdopt(config, local, nowMs) : [];
    }
    return this.maybeAdopt(config, local, nowMs);
  }

  /**
   * We asked `peer` to join (the runtime calls this before sending the request). Until we are a member, a
   * configuration announced by such a peer that seats us is adopted: a new voter (or a re-seated store) must
   * take its admission's joint configuration before the join reply, which comes only after the data sync that
   * pushes to it. Trust on first use: a device that is not a member yet trusts the member it asked (the
   * operator's --join address, or a key holder found over mDNS); see docs/security.md.
   */
  admissionFrom(peer: string): void {
    this.admissionPeers.delete(peer);
    this.admissionPeers.add(peer);
    while (this.admissionPeers.size > ADMISSION_PEERS_MAX) this.admissionPeers.delete(this.admissionPeers.values().next().value as string);
  }

  /** A configuration announced by `from`: adopted when it is newer and proven (or, before we are a member, an admission). */
  private onConfigAnnounced(from: string, config: MembershipConfig, chain: readonly MembershipConfig[], local: LocalView, nowMs: number): Action[] {
    if (this.epoch === 0) {
      // Not a member of anything yet: only the member we asked to join is trusted, and only with a
      // configuration that names us (a wiped device learns its old seat's configuration, then its new seat's).
      if (!this.admissionPeers.has(from) || !isMember(config, this.self)) return [];
    } else if (!this.fromMember(from)) {
      // Unproven configurations (no auth: tests only) are taken from members only. With proofs, anyone may
      // bring one: a member of a configuration we have not adopted yet is not a member to us until we have.
      if (this.auth === undefined || config.epoch <= this.epoch) return [];
      // Checking a proof costs signature verifications (~0.3 ms each): a non-member gets one check per
      // STRANGER_CONFIG_CHECK_INTERVAL_MS, all non-members together, so a key holder cannot spend our CPU.
      // Members (most of whom outlive any configuration we may be behind) are not limited.
      if (nowMs < this.strangerConfigCheckAtMs) return [];
      this.strangerConfigCheckAtMs = nowMs + STRANGER_CONFIG_CHECK_INTERVAL_MS;
    }
    // Who tells us about a configuration is normally who committed it and is now syncing its data (a member's
    // word only: a stranger naming itself would hold off the takeover of a joint phase).
    if ((this.epoch === 0 || this.fromMember(from)) && !this.configChange.proposers.has(config.epoch)) this.configChange.rememberProposer(config.epoch, from);
    return this.maybeAdopt(config, local, nowMs, chain);
  }

  // ---------------------------------------------------------------- configuration adoption

  /**
   * Adopts `config` if it is newer than ours and proven: every epoch from ours to it (`chain` brings the ones in
   * between) was chosen by the previous epoch's voters (src/core/config-proof.ts). When only a prefix of the
   * chain is proven, the newest proven configuration is adopted. Before we are a member of anything there is
   * nothing to verify against: the callers admit only the join target's word for it (trust on first use).
   */
  private maybeAdopt(config: MembershipConfig, local: LocalView, nowMs: number, chain: readonly MembershipConfig[] = []): Action[] {
    if (config.epoch <= this.epoch) return [];
    if (this.epoch > 0 && config.clusterId !== this.configCurrent.clusterId) return [];
    const before = this.configCurrent;
    let target = config;
    if (this.epoch === 0) {
      this.history = [config];
    } else if (this.auth === undefined) {
      this.history = [...this.history, config].slice(-CONFIG_HISTORY_MAX);
    } else {
      const proven = provenChain(this.configCurrent, [...chain, config], this.auth);
      const last = proven[proven.length - 1];
      if (last === undefined) return [];
      target = last;
      this.history = [...this.history, ...proven].slice(-CONFIG_HISTORY_MAX);
    }
    this.configCurrent = target;
    this.configChange.acceptor = acceptorFor(this.configChange.acceptor, target.epoch);
    // Once durable, we hear about it ourselves (onConfigDurable).
    const durable: Envelope = { to: this.self, msg: { type: 'config', epoch: target.epoch, config: target } };
    const actions: Action[] = [{ type: 'persistConfig', config: target, then: durable, history: this.history }];
    this.retargetAll(target, before, local, nowMs, actions);
    return actions;
  }

  /** The kept configurations a peer at `peerEpoch` needs before ours, oldest first (at most CHAIN_SENT_MAX). */
  private chainFor(peerEpoch: number): MembershipConfig[] | undefined {
    if (this.auth === undefined || peerEpoch <= 0 || peerEpoch >= this.epoch - 1) return undefined;
    const chain = this.history.filter((c) => c.epoch > peerEpoch && c.epoch < this.epoch).slice(0, CHAIN_SENT_MAX);
    return chain.length === 0 ? undefined : chain;
  }

  /** Our configuration for a peer at `peerEpoch`: the current one, or as far as one message may take it. */
  private configFor(peerEpoch: number): { config: MembershipConfig; chain: MembershipConfig[] | undefined } {
    const chain = this.chainFor(peerEpoch);
    if (chain === undefined || chain.length < CHAIN_SENT_MAX) return { config: this.configCurrent, chain };
    // Too far behind for one message: the chain's last step is the configuration told; the rest follows at
    // the next tell (RETELL_STALE_MS).
    return { config: chain[chain.length - 1] as MembershipConfig, chain: chain.slice(0, -1) };
  }

  /** A peer spoke from an older epoch: tell it our configuration (again if it still does RETELL_STALE_MS later). */
  private tellIfStale(from: string, epoch: number, nowMs: number, actions: Action[]): void {
    if (epoch === 0 || this.epoch === 0 || epoch >= this.epoch) return;
    const told = this.toldEpoch.get(from);
    // An epoch below the one it spoke from when told is another store under that peer ID: tell it at once.
    if (told !== undefined && told.epoch >= this.epoch && epoch >= told.heard && nowMs - told.atMs < RETELL_STALE_MS) return;
    if (this.toldEpoch.size >= TOLD_PEERS_MAX) this.toldEpoch.clear();
    this.toldEpoch.set(from, { epoch: this.epoch, atMs: nowMs, heard: epoch });
    const sending = actions.some((a) => a.type === 'send' && a.to === from && 'config' in a.msg && a.msg.config?.epoch === this.epoch);
    if (sending) return;
    const { config, chain } = this.configFor(epoch);
    actions.push({ type: 'send', to: from, msg: { type: 'config', epoch: this.epoch, config, ...(chain === undefined ? {} : { chain }) } });
  }

  /** Our configuration moved on: re-count operations under the new one and reach its new members. */
  private retargetAll(config: MembershipConfig, before: MembershipConfig, local: LocalView, nowMs: number, actions: Action[]): void {
    // Seats given to another store since `before`: what their old store acknowledged is gone with it.
    const reseated = replicaIds(config).filter((p) => p !== this.self && storeChanged(before, config, p));
    for (const [opId, op] of [...this.ops]) {
      if (!this.ops.has(opId)) continue;
      switch (op.kind) {
        case 'write':
          this.coordinators.retargetWrite(opId, op, config, reseated, actions);
          break;
        case 'read':
          this.coordinators.retargetRead(opId, op, config, local, actions);
          break;
        case 'config':
          this.configChange.retarget(opId, op, config, actions);
          break;
        case 'sync':
          this.dataStreams.retarget(opId, op, config, actions);
          break;
        case 'probe':
          break; // it reports on the replicas it asked; a new device shows up in the next probe
        default:
          unreachable(op);
      }
    }
    this.dataStreams.dropMoot(config, local, nowMs, actions);
  }

  // ---------------------------------------------------------------- helpers

  /** Sends `msg` to `to`, or hands it straight to our own acceptor/proposer when `to` is this replica. */
  private deliverTo(to: string, msg: Message, actions: Action[], local: LocalView, nowMs: number): void {
    if (to === this.self) actions.push(...this.step(this.self, msg, local, nowMs));
    else actions.push({ type: 'send', to, msg });
  }

  /** The failure an operation reports, from the sub-machine that runs it. */
  private failure(opId: number, op: Exclude<Op, ProbeOp>, code?: FailureCode): ClientResult {
    switch (op.kind) {
      case 'config':
        return this.configChange.failure(opId, op, code);
      case 'sync':
        return this.dataStreams.failure(opId, op, code);
      case 'write':
      case 'read':
        return this.coordinators.failure(opId, op);
      default:
        return unreachable(op);
    }
  }

  /** Moves our clock up to a remote record's timestamps, except those too far ahead (see hlcAdopt). */
  private observe(record: VersionedRecord): void {
    for (const s of record.siblings) this.hlcLast = hlcAdopt(this.hlcLast, s.hlc, this.physicalMs, this.hlcDriftMaxMs);
  }

  private allocateOpId(): number {
    assert(this.ops.size < OPS_IN_FLIGHT_MAX, 'the runtime bounds operations in flight');
    const opId = this.opIdNext;
    this.opIdNext += 1;
    return opId;
  }

  private assertMember(): void {
    if (this.epoch === 0 || !isMember(this.configCurrent, this.self)) throw new NotMemberError();
    if (!this.seated()) {
      throw new NotMemberError('this device\'s storage is new (wiped or replaced): it serves nothing until the cluster gives its seat to the new store');
    }
  }
}

export { configQuorum } from './membership.js';

/** Whether `peer` holds a seat in both configurations, each named with another store. */
function storeChanged(before: MembershipConfig, after: MembershipConfig, peer: string): boolean {
  const a = seatOf(before, peer);
  const b = seatOf(after, peer);
  return a !== undefined && b !== undefined && a.store !== b.store;
}

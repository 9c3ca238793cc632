// Membership operations of one device: asking to join, admitting candidates (the admission policy of
// src/node/admission.ts, or operator approval), re-seating wiped devices,
// voters vs learners (maxVoters), promotion, removal and leaving, and finishing joint phases (sync, then
// finalize). Every change is a Paxos-decided compare-and-set on the epoch (ReplicaCore.proposeConfig); on a
// conflict the change is re-derived from the winner's configuration and retried with a random backoff.
import { unreachable } from '../core/assert.js';
import { MembershipChangeError, QuorumdError } from '../core/errors.js';
import {
  type MemberInfo,
  type MembershipConfig,
  type SeatClaim,
  finalized,
  isJoint,
  isLearner,
  isMember,
  isRemoved,
  isVoter,
  jointAddition,
  jointRetargetable,
  seatOf,
  withJointAborted,
  withLearnerAdded,
  withMemberRemoved,
  withSeatReplaced,
  withVoterAdded,
} from '../core/membership.js';
import { type ConfigAuth, seatClaimPayload, signSeatClaim } from '../core/config-proof.js';
import type { Message } from '../core/messages.js';
import { acceptedNextSlot } from '../core/paxos.js';
import { backgroundWork, changeBackoffMs, movedOnPastJoint, proposerStillFinishing, retryChange } from '../core/membership-change.js';
import { AdmissionClosedError, AdmissionPolicy, type AdmissionState, PENDING_MAX, type PendingCandidate } from './admission.js';

export { AdmissionClosedError, type PendingCandidate } from './admission.js';
import { REAL_CLOCKS, REAL_RANDOM, REAL_TIMERS, type TimerHandle, type TimerPort, sleepOn } from './driver-ports.js';
import type { Runtime, RuntimeLogger } from './runtime.js';
import { CONFIG_MEMBERS_MAX } from '../wire/replica.js';

type JoinMessage = Extract<Message, { type: 'joinRequest' | 'joinReply' }>;

export function isJoinMessage(msg: Message): msg is JoinMessage {
  return msg.type === 'joinRequest' || msg.type === 'joinReply';
}

/**
 * The note of a successful join reply to a device whose store already holds its seat (it lost only its copy
 * of the configuration, e.g. it crashed right after its admission).
 */
export const ALREADY_MEMBER = 'already a member';

/**
 * The error of a join reply asking a device back with a new store for its signed claim (MemberInfo.claim): it
 * came without one, or one signed against an older configuration or another store of the seat. The reply
 * carries the member's configuration; the device signs a claim moving its seat from the store it names, against
 * its epoch, and asks again at once. (A device of a version before claims cannot: it needs upgrading.)
 */
export const SEAT_CLAIM_NEEDED = 'a device back with a new store asks with its signed claim on it, against this configuration (upgrade a device that does not)';

/** Join requests a candidate sends to one member in one requestJoin (each claim asked for costs one more). */
const CLAIM_ATTEMPTS_MAX = 4;

export interface MembershipOptions {
  readonly runtime: Runtime;
  /** This device's store id, sent with a join request (see MemberInfo.store). */
  readonly storeId: string;
  readonly send: (to: string, msg: Message) => boolean;
  readonly log: RuntimeLogger;
  /**
   * Admit new identities without an operator's approval while the cluster never removed a device (the genesis
   * rule of src/node/admission.ts); operator windows apply either way.
   */
  readonly autoAdmit: boolean;
  /** Clocks of admission windows, join-request times and phase timings (monotonic: performance.now; wall: Date.now by default). */
  readonly clocks?: { readonly monotonicNow: () => number; readonly wallNow: () => number };
  /** Timers of join waits and retry backoffs (REAL_TIMERS by default). */
  readonly timers?: TimerPort;
  /** Timers of background work: joint-phase takeover, promotion (default: `timers`; the simulator bounds them per phase). */
  readonly backgroundTimers?: TimerPort;
  /** Uniform random numbers in [0, 1) for the retry backoff (Math.random by default). */
  readonly random?: () => number;
  /** Voters at most; further devices join as learners. */
  readonly maxVoters: number;
  /** A voter waits this long for a joint phase's coordinator before finishing it itself. */
  readonly jointTakeoverMs: number;
  /** Attempts of a change under conflicts before giving up. */
  readonly changeAttemptsMax: number;
  /** Addresses known for a peer (address book), for approving a device we only heard of. */
  readonly addrsOf: (peer: string) => readonly string[];
  /** Whether a peer is connected and alive now (a learner is promoted only then). */
  readonly isAlive: (peer: string) => boolean;
  /** The store a peer last said it runs on (heartbeats); a learner is promoted only on its seat's store. */
  readonly storeOf?: (peer: string) => string | undefined;
  readonly opIdBase: number;
  /**
   * This device's peer-key signer and verifier (src/node/config-auth.ts; the daemon always has one). With it, a
   * join request carries the device's signed claim on its store, and a member re-seats a device on a claim
   * only once it verified it. Without it (tests of other concerns, like ReplicaCore without auth) claims are
   * neither made nor checked.
   */
  readonly auth?: ConfigAuth | undefined;
}

export class MembershipService {
  private readonly options: MembershipOptions;
  private opIdNext: number;
  private readonly pendingCandidates = new Map<string, PendingCandidate>();
  private readonly approved = new Set<string>();
  private readonly admission: AdmissionPolicy;
  /** Serializes changes coordinated by this device. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Changes queued or running in `queue` (changesInFlight). */
  private inFlight = 0;
  private readonly clocks: { readonly monotonicNow: () => number; readonly wallNow: () => number };
  private readonly timers: TimerPort;
  private readonly backgroundTimers: TimerPort;
  private readonly random: () => number;
  private takeoverTimer: TimerHandle | undefined;
  private joinWaiter:
    | { member: string; opId: number; resolve: (msg: Extract<Message, { type: 'joinReply' }>) => void; reject: (error: Error) => void }
    | undefined;
  private stopped = false;
  /** Changes this device has coordinated (for /status and measurements). */
  readonly counters = { changes: 0, conflicts: 0, syncs: 0 };

  constructor(options: MembershipOptions) {
    this.options = options;
    this.opIdNext = options.opIdBase + 1;
    this.clocks = options.clocks ?? { monotonicNow: REAL_CLOCKS.monotonicMs, wallNow: REAL_CLOCKS.wallMs };
    this.timers = options.timers ?? REAL_TIMERS;
    this.backgroundTimers = options.backgroundTimers ?? this.timers;
    this.random = options.random ?? REAL_RANDOM;
    this.admission = new AdmissionPolicy({ autoAdmit: options.autoAdmit, ...this.clocks });
    options.runtime.onConfigChange((config) => this.onConfigChange(config));
    // The configuration this device starts with may be joint (it restarted during a voter change it was
    // coordinating): arm the takeover for it too, or nobody finishes that phase while this device is alive.
    this.onConfigChange(options.runtime.config);
  }

  get pending(): PendingCandidate[] {
    return [...this.pendingCandidates.values()];
  }

  /**
   * Whether new identities are admitted without `quorumd approve` here now, and why (for /status); null on a
   * device that is not a seated member (it admits nobody).
   */
  admissionState(): AdmissionState | null {
    const { runtime } = this.options;
    if (runtime.config.epoch === 0 || !runtime.core.seated()) return null;
    return this.admission.state(runtime.config);
  }

  /**
   * Operator: opens this device's admission window for `forMs` (0 closes it). Until it ends, or until any
   * device is removed, a new identity asking this device to join is admitted as with autoAdmit.
   */
  openAdmission(forMs: number): AdmissionState {
    const config = this.options.runtime.config;
    this.checkMember('open an admission window');
    if (forMs === 0) return this.admission.close(config);
    this.options.log.warn({ forMs }, 'admission window opened: devices holding the cluster key join without approval until it ends');
    return this.admission.open(config, forMs);
  }

  /** Refuses an operator action on a device that is not a seated member (it cannot change the membership). */
  private checkMember(action: string): void {
    const { runtime } = this.options;
    if (runtime.config.epoch === 0 || !runtime.core.seated()) {
      throw new MembershipChangeError(`this device is not a member of a cluster (yet): ${action} on a member`);
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.takeoverTimer !== undefined) this.backgroundTimers.clear(this.takeoverTimer);
  }

  handle(from: string, msg: JoinMessage): void {
    if (msg.type === 'joinReply') {
      if (this.joinWaiter !== undefined && this.joinWaiter.member === from && this.joinWaiter.opId === msg.opId) {
        this.joinWaiter.resolve(msg);
        this.joinWaiter = undefined;
      }
      return;
    }
    void this.onJoinRequest(from, msg.opId, msg.addrs, msg.store, msg.claim).catch((error: unknown) => {
      this.options.log.warn({ peer: from, err: String(error) }, 'join request failed');
    });
  }

  // ---------------------------------------------------------------- candidate side

  /** The connection to `peer` closed: a join asked of it gets no answer on that connection; ask again. */
  peerDisconnected(peer: string): void {
    const waiter = this.joinWaiter;
    if (waiter === undefined || waiter.member !== peer) return;
    this.joinWaiter = undefined;
    waiter.reject(new Error(`the connection to ${peer} closed before it answered the join`));
  }

  /**
   * Asks `member` (connected) to add us, with our dialable `addrs`. Resolves once we are a member (the
   * configuration is adopted); rejects with the member's reason (e.g. waiting for approval) or on timeout.
   */
  async requestJoin(member: string, addrs: readonly string[], timeoutMs: number): Promise<void> {
    let claim: SeatClaim | undefined;
    for (let attempt = 1; ; attempt += 1) {
      const msg = await this.askToJoin(member, addrs, claim, timeoutMs);
      // A device back with a new store learns from the member which store its seat names, and at which epoch, and
      // asks again with its claim to move the seat from there (a claim proves no older change, and no change of
      // a seat that has moved on since).
      const seat = msg.config === undefined ? undefined : seatOf(msg.config, this.options.runtime.self);
      const { auth, storeId } = this.options;
      if (!msg.ok && msg.error === SEAT_CLAIM_NEEDED && seat !== undefined && auth !== undefined && attempt < CLAIM_ATTEMPTS_MAX) {
        claim = signSeatClaim(auth, this.options.runtime.self, seat.store ?? '', storeId, msg.config?.epoch ?? 0);
        continue;
      }
      if (!msg.ok || msg.config === undefined) throw new QuorumdError('join_refused', msg.error || 'join refused');
      this.options.runtime.adoptConfig(msg.config, member);
      return;
    }
  }

  /** Sends one join request to `member` (with our claim on our store, if a member asked for it) and awaits the reply. */
  private async askToJoin(
    member: string,
    addrs: readonly string[],
    claim: SeatClaim | undefined,
    timeoutMs: number,
  ): Promise<Extract<Message, { type: 'joinReply' }>> {
    const opId = this.allocateOpId();
    let timer: TimerHandle | undefined;
    const reply = new Promise<Extract<Message, { type: 'joinReply' }>>((resolve, reject) => {
      timer = this.timers.set(() => {
        this.joinWaiter = undefined;
        reject(new Error(`no answer from ${member} about the join within ${timeoutMs} ms`));
      }, timeoutMs, true);
      this.joinWaiter = { member, opId, resolve, reject };
    });
    this.options.runtime.askingToJoin(member);
    const { storeId } = this.options;
    const request: Message = { type: 'joinRequest', opId, epoch: 0, addrs: [...addrs], store: storeId, ...(claim === undefined ? {} : { claim }) };
    if (!this.options.send(member, request)) {
      this.timers.clear(timer);
      this.joinWaiter = undefined;
      throw new Error(`not connected to ${member}`);
    }
    try {
      return await reply;
    } finally {
      this.timers.clear(timer);
    }
  }

  // ---------------------------------------------------------------- member side

  private async onJoinRequest(
    candidate: string,
    requestOpId: number,
    addrs: readonly string[],
    store: string | undefined,
    claim: SeatClaim | undefined,
  ): Promise<void> {
    const { runtime } = this.options;
    // The configuration goes to a device that joined, or to the seat's own device asked for its claim (the peer
    // key proves it is the seat's device): nobody else is told it.
    const reply = (ok: boolean, error: string, withConfig = ok): void => {
      const config = withConfig ? runtime.config : undefined;
      this.options.send(candidate, { type: 'joinReply', opId: requestOpId, epoch: runtime.config.epoch, ok, error, config });
    };
    const config = runtime.config;
    if (config.epoch === 0 || !runtime.core.seated()) return reply(false, 'this device is not a member of a cluster');
    if (isRemoved(config, candidate)) return reply(false, 'this device was removed from the cluster');
    if (store === undefined || store.length === 0) return reply(false, 'a join request must name the device\'s store (upgrade the device)');
    const seat = seatOf(config, candidate);
    // Its store holds the seat already: it lost only its copy of the configuration (a crash right after its
    // admission). Its store holds everything the seat acknowledged.
    if (seat !== undefined && seat.store === store) return reply(true, ALREADY_MEMBER);
    if (seat !== undefined) {
      // A member asks to join with another store: its storage was wiped or re-flashed. The peer key proves it
      // is the seat's device; the seat goes to the new store by a data sync (no operator needed). Its signed
      // claim on the new store lets the change be decided by the smaller quorum of a re-seat (configQuorum): it is
      // checked here, so no value that devices would refuse is ever proposed.
      const { auth } = this.options;
      if (auth !== undefined) {
        const from = seat.store ?? '';
        if (claim === undefined || claim.since < config.epoch || claim.from !== from) return reply(false, SEAT_CLAIM_NEEDED, true);
        if (!auth.verify(candidate, seatClaimPayload(candidate, from, store, claim.since), claim.signature)) {
          return reply(false, 'the claim on the new store is not signed by the device');
        }
      }
      try {
        await this.replaceSeat(candidate, store, addrs, claim);
        reply(true, '');
      } catch (error) {
        reply(false, error instanceof Error ? error.message : String(error));
        throw error;
      }
      return;
    }
    // A new identity: admitted only by an operator's decision (approve, or an admission window) once the cluster
    // has removed a device — a removed device with a new peer.key is exactly such an identity.
    const waiting = (): void => {
      if (!this.pendingCandidates.has(candidate)) {
        this.options.log.info({ peer: candidate }, 'a device asks to join: waiting for `quorumd approve` (or `quorumd admit --for`)');
      }
      this.pendingCandidates.delete(candidate);
      this.pendingCandidates.set(candidate, { peerId: candidate, addrs: [...addrs], store, since: new Date(this.clocks.wallNow()).toISOString() });
      while (this.pendingCandidates.size > PENDING_MAX) this.pendingCandidates.delete(this.pendingCandidates.keys().next().value as string);
      reply(false, `waiting for approval: run \`quorumd approve ${candidate}\` on a member`);
    };
    if (!this.approved.has(candidate) && !this.admission.allows(config)) return waiting();
    try {
      await this.admit({ peerId: candidate, addrs: [...addrs], store }, false, true);
      this.pendingCandidates.delete(candidate);
      reply(true, '');
    } catch (error) {
      // A removal committed meanwhile closed the admission: the candidate waits like any other.
      if (error instanceof AdmissionClosedError) return waiting();
      reply(false, error instanceof Error ? error.message : String(error));
      throw error;
    }
  }

  /** Operator approval of a pending (or known) candidate: admits it now. */
  async approve(peerId: string): Promise<MembershipConfig> {
    // A device waiting to join has no configuration to change (and would trip the proposer's own checks).
    this.checkMember('approve');
    const pending = this.pendingCandidates.get(peerId);
    const addrs = pending?.addrs ?? this.options.addrsOf(peerId);
    if (isMember(this.options.runtime.config, peerId)) return this.options.runtime.config;
    // Its store may hold values whose deletes were purged while it was out: a removed device stays out.
    if (isRemoved(this.options.runtime.config, peerId)) {
      throw new MembershipChangeError(`${peerId} was removed from the cluster and cannot be re-admitted (a device needs a new identity and an empty store to join again)`);
    }
    // A voter that never shows up would hold a joint phase open: only admit a device we have heard from.
    if (pending === undefined && addrs.length === 0) {
      throw new MembershipChangeError(`${peerId} has not asked to join through this device (see pending in quorumd status)`);
    }
    this.approved.add(peerId);
    const config = await this.admit({ peerId, addrs: [...addrs], store: pending?.store }, true);
    this.pendingCandidates.delete(peerId);
    return config;
  }

  /**
   * Adds `member` as a voter (while fewer than maxVoters) or a learner, and brings it up to date. Without an
   * operator's approval (`approved` false) the admission policy is checked again against the configuration the
   * change derives from: a removal that won the epoch meanwhile closes it (AdmissionClosedError). `asked`: the
   * device itself asked just now, naming the store it runs (a join request), not an approval of a store
   * remembered from an earlier request: only then may an admission found made on another store re-seat.
   */
  admit(member: MemberInfo, approved: boolean, asked = false): Promise<MembershipConfig> {
    return this.serialized(async () => {
      const { runtime } = this.options;
      const committed = await this.change((c) => {
        const seat = seatOf(c, member.peerId);
        if (seat !== undefined) {
          // Admitted meanwhile (another member's proposal won the epoch), maybe on a store it has lost since (it
          // was wiped before it learned of its admission). An OK answer would leave the asking store unseated;
          // re-seating here could act on a stale request (queued while the device was admitted elsewhere and
          // wiped again) and take the seat from the store that holds it. Refuse: the device asks again, and the
          // re-seating path (replaceSeat) decides on its current store.
          if (!asked || member.store === undefined || seat.store === member.store) return undefined;
          throw new MembershipChangeError(`${member.peerId} was admitted meanwhile on another store: ask again to get the seat for this one`);
        }
        if (isRemoved(c, member.peerId)) throw new MembershipChangeError(`${member.peerId} was removed from the cluster and cannot be re-admitted`);
        if (!approved && !this.approved.has(member.peerId) && !this.admission.allows(c)) throw new AdmissionClosedError(member.peerId);
        const asVoter = c.voters.length < this.options.maxVoters;
        // A list longer than the wire carries would make a configuration no device can decode (every key holder
        // is admitted before the first removal: one minting identities would get there in minutes).
        if ((asVoter ? c.voters : c.learners).length >= CONFIG_MEMBERS_MAX) {
          throw new MembershipChangeError(`the cluster has ${CONFIG_MEMBERS_MAX} ${asVoter ? 'voters' : 'learners'}, the most a configuration carries: remove a device first`);
        }
        return asVoter ? withVoterAdded(c, member) : withLearnerAdded(c, member);
      });
      if (isLearner(committed, member.peerId)) {
        this.options.log.info({ peer: member.peerId }, 'new learner: sending it the data');
        await runtime.sync([member.peerId]);
      }
      this.options.log.info({ peer: member.peerId, epoch: runtime.config.epoch, role: isVoter(runtime.config, member.peerId) ? 'voter' : 'learner' }, 'device admitted');
      return runtime.config;
    });
  }

  /**
   * Gives `peerId`'s seat to the store `store` (the device came back with a new store) and brings it up to date:
   * a voter's by the joint phase's data sync (change() finishes it), a learner's by a sync to it.
   */
  replaceSeat(peerId: string, store: string, addrs: readonly string[], claim?: SeatClaim): Promise<MembershipConfig> {
    return this.serialized(async () => {
      const { runtime } = this.options;
      this.options.log.warn({ peer: peerId }, 'a member came back with a new store (its storage was lost): giving its seat to the new store');
      // A joint phase re-seating or adding this very device (the store it was getting the seat for was lost
      // too) is re-targeted, not finished first: its sync would wait for a store that is gone.
      const finishFirst = !jointRetargetable(runtime.config, peerId);
      const committed = await this.change((c) => {
        const seat = seatOf(c, peerId);
        if (seat === undefined) throw new MembershipChangeError(`${peerId} is no longer a member`);
        // The device was heard on another store since it asked (its heartbeats, a newer join request): this
        // request is stale (it waited behind other changes, and the device was wiped again meanwhile). Giving
        // the seat to a store that is gone would unseat the one that holds it, with its data, for good.
        const running = this.options.storeOf?.(peerId);
        if (running !== undefined && running !== store) throw new MembershipChangeError(`${peerId} runs another store than the one it asked for: a stale request`);
        if (isJoint(c) && !jointRetargetable(c, peerId)) throw new QuorumdError('membership_conflict', 'another membership change is in its joint phase');
        // A claim signed against an epoch newer than ours proves nothing from our configuration (every device
        // would refuse the change's proof): this device is behind; the device asks a member that is not.
        if (claim !== undefined && claim.since > c.epoch) throw new MembershipChangeError(`this device is behind ${peerId}'s claim (epoch ${claim.since})`);
        // The seat moved on since the device signed (another re-seat won meanwhile): the claim proves nothing now.
        if (claim !== undefined && claim.from !== (seat.store ?? '')) throw new MembershipChangeError(`${peerId}'s seat moved since its claim: ask again`);
        return seat.store === store ? undefined : withSeatReplaced(c, peerId, store, addrs, claim);
      }, finishFirst);
      if (isLearner(committed, peerId)) await runtime.sync([peerId]);
      this.options.log.info({ peer: peerId, epoch: runtime.config.epoch }, 'seat given to the new store');
      return runtime.config;
    });
  }

  /** Removes a member (dead or retired device); it is refused at connection from then on. */
  remove(peerId: string): Promise<MembershipConfig> {
    return this.serialized(async () => {
      const config = this.options.runtime.config;
      if (!isMember(config, peerId)) throw new MembershipChangeError(`${peerId} is not a member`);
      if (isVoter(config, peerId) && config.voters.length === 1) throw new MembershipChangeError('the last voter cannot be removed');
      if (jointAddition(config) === peerId) {
        // The device being added died before its data sync: abandon the joint phase instead of finishing it.
        return this.change((c) => {
          if (jointAddition(c) === peerId) return withJointAborted(c, peerId);
          if (!isMember(c, peerId)) return undefined;
          // Another joint phase took over meanwhile: retry (it is finished or abandoned by its own coordinator).
          if (isJoint(c)) throw new QuorumdError('membership_conflict', 'another membership change is in its joint phase');
          return withMemberRemoved(c, peerId);
        }, false);
      }
      return this.change((c) => (isMember(c, peerId) ? withMemberRemoved(c, peerId) : undefined));
    });
  }

  /**
   * Changes the configuration with `derive` (undefined: nothing left to do) as a CAS on the epoch; finishes a
   * joint phase first and after a voter change, so the call returns with a stable configuration.
   */
  private async change(derive: (config: MembershipConfig) => MembershipConfig | undefined, finishFirst = true): Promise<MembershipConfig> {
    const { runtime } = this.options;
    for (let attempt = 1; ; attempt += 1) {
      if (this.stopped) throw new QuorumdError('shutting_down', 'the daemon is shutting down');
      try {
        if (finishFirst && isJoint(runtime.config)) {
          await this.finishJoint();
          // Concurrent changes can leave us in a newer joint phase (or the finalize lost without the winner
          // known yet): derive() must not see a joint configuration, so retry like any lost epoch.
          if (isJoint(runtime.config)) throw new QuorumdError('membership_conflict', 'another membership change is in its joint phase');
        }
        const next = derive(runtime.config);
        if (next === undefined) return runtime.config;
        const committed = await runtime.changeConfig(next);
        this.counters.changes += 1;
        // A device that removed itself (leave) leaves the sync to the remaining voters (they take over).
        if (isJoint(committed) && isVoter(committed, runtime.self)) await this.finishJoint();
        return runtime.config;
      } catch (error) {
        if (!(error instanceof QuorumdError) || !retryChange(error.code, attempt, this.options.changeAttemptsMax)) throw error;
        this.counters.conflicts += 1;
        this.options.log.info({ attempt, epoch: runtime.config.epoch }, 'membership change lost its epoch to another; retrying');
        await sleepOn(this.timers, changeBackoffMs(attempt, this.random()));
      }
    }
  }

  /** Syncs the data of a joint configuration onto its new voters, then proposes the finalized configuration. */
  private async finishJoint(): Promise<void> {
    const { runtime } = this.options;
    const config = runtime.config;
    if (!isJoint(config)) return;
    if (!isVoter(config, runtime.self) && !config.previousVoters.includes(runtime.self)) {
      throw new MembershipChangeError('this device is not a voter of the changing configuration');
    }
    const started = this.clocks.monotonicNow();
    const accepted = runtime.core.acceptorState.accepted;
    if (acceptedNextSlot(runtime.core.acceptorState, config.epoch) && accepted !== undefined) {
      // A value for the next epoch is accepted here already: finish that decision, no sync first (paxos.ts).
      // Propose that very value: phase 1 recovers it only if our own promise is among the first majority, and
      // a finalize of our own would then be chosen with no sync before it. The accepted value needed none.
      await this.proposeFinalize(config, 0, started, accepted.config);
      return;
    }
    let keys: number;
    try {
      keys = await runtime.sync();
    } catch (error) {
      // The core aborts a sync when the configuration moves on (membership_conflict): another voter finished
      // this joint phase (or changed on) meanwhile, which is all we wanted. Not a failure of the caller's change.
      if (error instanceof QuorumdError && movedOnPastJoint(error.code, config.epoch, runtime.config.epoch)) return;
      throw error;
    }
    this.counters.syncs += 1;
    if (runtime.config.epoch !== config.epoch) return;
    await this.proposeFinalize(config, keys, started);
  }

  /**
   * Proposes the joint configuration's finalized successor (phase 1 completes any value already accepted), or
   * `value`: a value this acceptor accepted for the next epoch.
   */
  private async proposeFinalize(config: MembershipConfig, keys: number, started: number, value: MembershipConfig = finalized(config)): Promise<void> {
    const { runtime } = this.options;
    try {
      await runtime.changeConfig(value);
      this.options.log.info({ epoch: config.epoch + 1, keys, ms: Math.round(this.clocks.monotonicNow() - started) }, 'voter change synced and finalized');
    } catch (error) {
      // Someone else finalized it (or changed on): fine as long as we are past the joint epoch. A lost ballot
      // with the configuration still joint is not: the caller (or the takeover schedule) tries again.
      if (!(error instanceof QuorumdError) || !movedOnPastJoint(error.code, config.epoch, runtime.config.epoch)) throw error;
    }
  }

  private onConfigChange(config: MembershipConfig): void {
    if (this.takeoverTimer !== undefined) this.backgroundTimers.clear(this.takeoverTimer);
    this.takeoverTimer = undefined;
    if (this.stopped) return;
    const self = this.options.runtime.self;
    const work = backgroundWork(config, self, this.options.jointTakeoverMs, this.options.maxVoters);
    switch (work.kind) {
      case 'none':
        return;
      case 'takeover': {
        // See backgroundWork: the first live previous voter soon, the others later.
        let looks = 0;
        this.schedule(config.epoch, work.delayMs, async () => {
          // Its proposer is alive: it is still syncing (a big dataset takes a while); a second full sync would
          // only double the transfer. Check again later; take over once it is gone, or after a few looks (it may
          // have lost its coordination: see TAKEOVER_PATIENCE_LOOKS).
          const proposer = this.options.runtime.core.proposerOf(config.epoch);
          if (proposerStillFinishing(proposer, self, this.options.isAlive, looks)) {
            looks += 1;
            throw new Error(`the proposer ${proposer} of the joint phase is alive and finishing it`);
          }
          return this.serialized(() => this.finishJoint());
        });
        return;
      }
      case 'promote':
        // A free voter seat and a live learner to promote. The promotion's sync brings the learner fully up to
        // date before it counts alone.
        this.schedule(config.epoch, 0, () =>
          this.serialized(async () => {
            // No live learner yet: fail, so the schedule tries again later (while the epoch stays the same).
            if (!config.learners.some((m) => this.promotable(m))) throw new Error('no live learner to promote yet');
            return this.change((c) => {
              const learner = c.learners.find((m) => this.promotable(m));
              if (isJoint(c) || c.voters.length >= this.options.maxVoters || learner === undefined) return undefined;
              return withVoterAdded(c, learner);
            });
          }),
        );
        return;
      default:
        unreachable(work);
    }
  }

  /**
   * A learner alive on its seat's store: a wiped learner (another store under the same peer ID) would hold a
   * voter seat it cannot serve, and with few voters that joint phase could never finish. It gets its learner
   * seat back first (its join request), then it is promoted.
   */
  private promotable(m: MemberInfo): boolean {
    if (!this.options.isAlive(m.peerId)) return false;
    const store = this.options.storeOf?.(m.peerId);
    return m.store === undefined || store === m.store;
  }

  private schedule(epoch: number, delayMs: number, work: () => Promise<unknown>): void {
    this.takeoverTimer = this.backgroundTimers.set(() => {
      this.takeoverTimer = undefined;
      if (this.stopped || this.options.runtime.config.epoch !== epoch) return;
      work().catch((error: unknown) => {
        this.options.log.info({ err: String(error), epoch }, 'background membership work did not complete; will retry');
        if (this.options.runtime.config.epoch === epoch) this.schedule(epoch, this.options.jointTakeoverMs, work);
      });
    }, delayMs);
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    this.inFlight += 1;
    const run = this.queue.then(work, work).finally(() => {
      this.inFlight -= 1;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Membership changes this device coordinates that are queued or under way (admissions, re-seats, removals...). */
  get changesInFlight(): number {
    return this.inFlight;
  }

  private allocateOpId(): number {
    const opId = this.opIdNext;
    this.opIdNext += 1;
    return opId;
  }
}

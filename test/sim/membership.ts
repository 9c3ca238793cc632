// Membership in the simulator. DeviceMembership is src/node/membership.ts and the daemon's join loop, callback
// style on virtual time: a device without its seat asks members to join; the member it asks gives a wiped
// device's seat to its new store (withSeatReplaced, then the joint phase's sync and finalize), admits new
// devices (autoAdmit) and refuses removed ones; a voter takes over a joint phase whose proposer is gone, and the
// first voter promotes a live learner into a free seat. MembershipDriver is the operator: it approves spares,
// removes members, promotes learners, abandons joint additions and tries to re-admit removed devices, at random
// moments and concurrently, under the same faults as the data traffic.
import { QuorumdError } from '../../src/core/errors.js';
import {
  type MemberInfo,
  type MembershipConfig,
  finalized,
  isJoint,
  isLearner,
  isMember,
  isRemoved,
  isVoter,
  jointAddition,
  seatOf,
  voterIds,
  withJointAborted,
  withLearnerAdded,
  withMemberRemoved,
  jointRetargetable,
  withSeatReplaced,
  withVoterAdded,
} from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import type { ClientResult } from '../../src/core/replica.js';
import type { Cluster } from './cluster.js';
import type { Rng } from './rng.js';
import { acceptedNextSlot } from '../../src/core/paxos.js';
import { backgroundWork, movedOnPastJoint, proposerStillFinishing, retryChange } from '../../src/core/membership-change.js';

/** The note of a join reply to a device whose store already holds its seat (src/node/membership.ts). */
export const ALREADY_MEMBER = 'already a member';

/** Counters of every device's membership service, summed over the run (see DeviceMembership). */
export const emptyServiceStats = () => ({
  joinRequests: 0,
  joinsRefusedRemoved: 0,
  joinsWaitingApproval: 0,
  alreadyMember: 0,
  joined: 0,
  replacements: 0,
  replacementsDone: 0,
  learnerReplacements: 0,
  admitted: 0,
  changeConflicts: 0,
  takeovers: 0,
  takeoverSyncs: 0,
  promotions: 0,
  readmitRefused: 0,
  finalized: 0,
  acceptedFinalizes: 0,
});
export type ServiceStats = ReturnType<typeof emptyServiceStats>;

interface Failure {
  readonly code: string;
  readonly message: string;
}

type JoinReply = Extract<Message, { type: 'joinReply' }>;

/** One device's membership service; a new one at every boot (a crash ends it with everything it was doing). */
export class DeviceMembership {
  private stopped = false;
  private busy = false;
  private readonly queue: Array<(release: () => void) => void> = [];
  private takeoverToken = 0;
  /** Background work that reached the end of a phase of the run (resumed if the run goes on: resume()). */
  private parked: { readonly epoch: number; readonly work: (done: (ok: boolean) => void) => void } | undefined;
  private joining = false;
  private joinWaiter: { readonly member: string; readonly opId: number; readonly resolve: (msg: JoinReply) => void } | undefined;
  private joinWake: (() => void) | undefined;
  private opIdNext = 1;
  private readonly pending = new Map<string, string>();
  private readonly approved = new Set<string>();

  constructor(
    private readonly self: string,
    private readonly cluster: Cluster,
    private readonly rng: Rng,
  ) {}

  private get stats(): ServiceStats {
    return this.cluster.serviceStats;
  }

  private get config(): MembershipConfig {
    return this.cluster.core(this.self).config;
  }

  private get now(): number {
    return this.cluster.scheduler.now;
  }

  /** The run's next phase extends the horizon: background work parked at the old one goes on (as timers would). */
  resume(): void {
    const parked = this.parked;
    this.parked = undefined;
    if (parked !== undefined && !this.stopped && this.config.epoch === parked.epoch) this.schedule(parked.epoch, 0, parked.work);
    this.start();
  }

  /** At boot (and when the final phase extends the horizon): the join loop, if this store holds no seat. */
  start(): void {
    if (this.stopped || this.joining || this.cluster.core(this.self).seated() || isRemoved(this.config, this.self)) return;
    if (this.now >= this.cluster.daemonUntilMs) return;
    this.joining = true;
    this.joinAttempt();
  }

  stop(): void {
    this.stopped = true;
  }

  /** A peer connected: a device waiting to join asks at once instead of at its next retry. */
  wake(): void {
    const wake = this.joinWake;
    this.joinWake = undefined;
    wake?.();
  }

  handle(from: string, msg: Extract<Message, { type: 'joinRequest' | 'joinReply' }>): void {
    if (this.stopped) return;
    if (msg.type === 'joinReply') {
      if (this.joinWaiter !== undefined && this.joinWaiter.member === from && this.joinWaiter.opId === msg.opId) this.joinWaiter.resolve(msg);
      return;
    }
    this.onJoinRequest(from, msg.opId, msg.store);
  }

  // ---------------------------------------------------------------- candidate side (the daemon's join loop)

  private joinAttempt(): void {
    if (this.stopped) return;
    if (this.cluster.core(this.self).seated() || isRemoved(this.config, this.self) || this.now >= this.cluster.daemonUntilMs) {
      this.joining = false;
      return;
    }
    const candidates = this.rng.shuffle(this.cluster.nodes.filter((n) => this.cluster.isAlive(this.self, n)));
    const next = (i: number): void => {
      if (this.stopped) return;
      if (i >= candidates.length || this.cluster.core(this.self).seated()) return this.joinPause();
      this.requestJoin(candidates[i] as string, (ok) => {
        if (this.stopped) return;
        // An OK answer whose configuration does not seat this store is no join: keep asking (src/node/daemon.ts).
        if (ok && this.cluster.core(this.self).seated()) {
          this.joining = false;
          this.stats.joined += 1;
          return;
        }
        next(i + 1);
      });
    };
    next(0);
  }

  private joinPause(): void {
    let woken = false;
    const resume = (): void => {
      if (woken) return;
      woken = true;
      this.joinWake = undefined;
      this.joinAttempt();
    };
    this.joinWake = resume;
    this.after(this.cluster.timings.joinRetryMs, `join retry ${this.self}`, resume);
  }

  /** Asks `member` to add us; `done(true)` once its answer's configuration is adopted. */
  private requestJoin(member: string, done: (ok: boolean) => void): void {
    const opId = this.opIdNext++;
    let settled = false;
    const finish = (ok: boolean): void => {
      if (settled || this.stopped) return;
      settled = true;
      this.joinWaiter = undefined;
      done(ok);
    };
    this.joinWaiter = {
      member,
      opId,
      resolve: (msg) => {
        if (!msg.ok || msg.config === undefined) return finish(false);
        this.cluster.adoptConfig(this.self, msg.config, member);
        finish(true);
      },
    };
    this.stats.joinRequests += 1;
    const store = this.cluster.runtimeStoreOf(this.self);
    this.cluster.core(this.self).admissionFrom(member);
    if (!this.cluster.sendPlain(this.self, member, { type: 'joinRequest', opId, epoch: 0, addrs: [], store })) return finish(false);
    this.after(this.cluster.timings.joinTimeoutMs, `join timeout ${this.self} op=${opId}`, () => finish(false));
  }

  // ---------------------------------------------------------------- member side

  private onJoinRequest(candidate: string, requestOpId: number, store: string | undefined): void {
    const reply = (ok: boolean, error: string): void => {
      if (this.stopped) return;
      const config = this.config;
      this.cluster.sendPlain(this.self, candidate, { type: 'joinReply', opId: requestOpId, epoch: config.epoch, ok, error, config: ok ? config : undefined });
    };
    const config = this.config;
    if (config.epoch === 0 || !this.cluster.core(this.self).seated()) return reply(false, 'this device is not a member of a cluster');
    if (isRemoved(config, candidate) && this.cluster.options.bug !== 'readmitRemoved') {
      this.stats.joinsRefusedRemoved += 1;
      return reply(false, 'this device was removed from the cluster');
    }
    if (store === undefined || store.length === 0) return reply(false, 'a join request must name the device\'s store');
    const seat = seatOf(config, candidate);
    if (seat !== undefined && seat.store === store) {
      this.stats.alreadyMember += 1;
      return reply(true, ALREADY_MEMBER);
    }
    const answer = (error: string | undefined): void => reply(error === undefined, error ?? '');
    if (seat !== undefined) return this.replaceSeat(candidate, store, answer);
    if (!this.cluster.options.autoAdmit && !this.approved.has(candidate)) {
      this.stats.joinsWaitingApproval += 1;
      this.pending.set(candidate, store);
      return reply(false, `waiting for approval: run \`quorumd approve ${candidate}\` on a member`);
    }
    this.admit({ peerId: candidate, addrs: [], store }, answer, true);
  }

  /** The operator's `quorumd approve`: admits a candidate now; a removed device is refused. */
  approve(peerId: string, done: (error: string | undefined) => void): void {
    const config = this.config;
    if (isMember(config, peerId)) return done(undefined);
    if (isRemoved(config, peerId) && this.cluster.options.bug !== 'readmitRemoved') {
      this.stats.readmitRefused += 1;
      return done(`${peerId} was removed from the cluster and cannot be re-admitted`);
    }
    this.approved.add(peerId);
    // A candidate that asked named its store; one that did not is named by the operator (the sim knows it).
    this.admit({ peerId, addrs: [], store: this.pending.get(peerId) ?? this.cluster.storeOf(peerId) }, done);
  }

  /** `asked`: the device's own join request (see src/node/membership.ts admit). */
  private admit(member: MemberInfo, done: (error: string | undefined) => void, asked = false): void {
    this.serialized((release) => {
      const finish = (error: string | undefined): void => {
        release();
        done(error);
      };
      this.change(
        (c) => {
          const seat = seatOf(c, member.peerId);
          if (seat !== undefined) {
            // Admitted meanwhile on a store it has lost since: the seat goes to the store asking now (src/node).
            // As src/node: refused, the device asks again and is re-seated on its current store (replaceSeat).
            if (!asked || member.store === undefined || seat.store === member.store) return undefined;
            throw new QuorumdError('membership_change_failed', `${member.peerId} was admitted meanwhile on another store: ask again`);
          }
          let base = c;
          if (isRemoved(c, member.peerId)) {
            if (this.cluster.options.bug !== 'readmitRemoved') throw new QuorumdError('membership_change_failed', `${member.peerId} was removed from the cluster and cannot be re-admitted`);
            base = { ...c, removed: c.removed.filter((p) => p !== member.peerId) }; // the bug: un-remove it
          }
          return base.voters.length < this.cluster.options.maxVoters ? withVoterAdded(base, member) : withLearnerAdded(base, member);
        },
        true,
        (failure, committed) => {
          if (failure !== undefined) return finish(failure.message);
          this.stats.admitted += 1;
          if (committed !== undefined && isLearner(committed, member.peerId)) {
            return this.cluster.sync(this.self, [member.peerId], (result) => {
              if (this.stopped) return;
              finish(result?.type === 'synced' ? undefined : 'the new learner\'s sync failed');
            });
          }
          finish(undefined);
        },
      );
    });
  }

  /** Gives `peerId`'s seat to the store `store` (its storage was wiped) and brings the new store up to date. */
  private replaceSeat(peerId: string, store: string, done: (error: string | undefined) => void): void {
    this.serialized((release) => {
      const finish = (error: string | undefined): void => {
        release();
        done(error);
      };
      this.stats.replacements += 1;
      // As src/node/membership.ts: a joint phase re-seating or adding this very device is re-targeted to its
      // newest store, not finished first (its sync would wait for a store that is gone).
      this.change(
        (c) => {
          const seat = seatOf(c, peerId);
          if (seat === undefined) throw new QuorumdError('membership_change_failed', `${peerId} is no longer a member`);
          // As src/node: a device heard running another store (its heartbeats) made this request from a store it
          // has lost since: stale, it re-seats nothing.
          const running = this.cluster.heardStoreOf(this.self, peerId);
          if (running !== undefined && running !== store) {
            throw new QuorumdError('membership_change_failed', `${peerId} runs another store than the one it asked for: a stale request`);
          }
          if (isJoint(c) && !jointRetargetable(c, peerId)) throw new QuorumdError('membership_conflict', 'another membership change is in its joint phase');
          return seat.store === store ? undefined : withSeatReplaced(c, peerId, store, []);
        },
        !jointRetargetable(this.config, peerId),
        (failure, committed) => {
          if (failure !== undefined) return finish(failure.message);
          if (committed !== undefined && isLearner(committed, peerId)) {
            this.stats.learnerReplacements += 1;
            return this.cluster.sync(this.self, [peerId], (result) => {
              if (this.stopped) return;
              if (result?.type === 'synced') this.stats.replacementsDone += 1;
              finish(result?.type === 'synced' ? undefined : 'the learner\'s sync failed');
            });
          }
          this.stats.replacementsDone += 1;
          finish(undefined);
        },
      );
    });
  }

  /**
   * A compare-and-set on the epoch with `derive` (undefined: nothing to do); finishes a joint phase first and
   * after a voter change; retries a lost epoch with a random backoff (src/node/membership.ts change()).
   */
  private change(
    derive: (config: MembershipConfig) => MembershipConfig | undefined,
    finishFirst: boolean,
    done: (failure: Failure | undefined, committed?: MembershipConfig) => void,
    attempt = 1,
  ): void {
    if (this.stopped) return;
    const fail = (failure: Failure): void => {
      if (this.stopped) return;
      if (!retryChange(failure.code, attempt, this.cluster.timings.changeAttemptsMax)) return done(failure);
      this.stats.changeConflicts += 1;
      const [lo, hi, step] = this.cluster.timings.changeBackoffMs;
      this.after(this.rng.int(lo, hi + step * attempt), `change retry ${this.self}`, () => this.change(derive, finishFirst, done, attempt + 1));
    };
    const proceed = (): void => {
      let next: MembershipConfig | undefined;
      try {
        next = derive(this.config);
      } catch (error) {
        if (error instanceof QuorumdError) return fail({ code: error.code, message: error.message });
        throw error;
      }
      if (next === undefined) return done(undefined, this.config);
      this.propose(next, (result) => {
        if (result?.type !== 'configCommitted') return fail(failureOf(result));
        if (isJoint(result.config) && isVoter(result.config, this.self)) {
          return this.finishJoint((failure) => (failure === undefined ? done(undefined, this.config) : fail(failure)));
        }
        done(undefined, this.config);
      });
    };
    if (finishFirst && isJoint(this.config)) {
      return this.finishJoint((failure) => {
        if (failure !== undefined) return fail(failure);
        if (isJoint(this.config)) return fail({ code: 'membership_conflict', message: 'another membership change is in its joint phase' });
        proceed();
      });
    }
    proceed();
  }

  /** Syncs a joint configuration's data onto its new voters, then proposes its finalized successor. */
  private finishJoint(done: (failure: Failure | undefined) => void): void {
    const config = this.config;
    if (!isJoint(config)) return done(undefined);
    if (!isVoter(config, this.self) && !config.previousVoters.includes(this.self)) {
      return done({ code: 'membership_change_failed', message: 'this device is not a voter of the changing configuration' });
    }
    const proposeFinalize = (value: MembershipConfig = finalized(config)): void =>
      this.propose(value, (committed) => {
        if (committed?.type === 'configCommitted') {
          this.stats.finalized += 1;
          return done(undefined);
        }
        // Someone else finalized it (or changed on). src/node/membership.ts takes any membership_conflict so,
        // also a lost ballot or unreachable acceptors with the configuration still joint (known bug
        // finalizeConflict: the takeover then stops retrying).
        const code = committed?.type === 'failed' ? committed.code : undefined;
        const movedOn = this.cluster.options.workarounds.includes('finalizeConflict') ? movedOnPastJoint(code, config.epoch, this.config.epoch) : code === 'membership_conflict';
        if (movedOn) return done(undefined);
        done(failureOf(committed));
      });
    // A value for the next epoch is accepted here already: finish that decision, no sync first (paxos.ts).
    const acceptor = this.cluster.core(this.self).acceptorState;
    if (this.cluster.options.workarounds.includes('acceptedFinalize') && acceptedNextSlot(acceptor, config.epoch) && acceptor.accepted !== undefined) {
      this.stats.acceptedFinalizes += 1;
      // The accepted value itself, as src/node: a finalize of our own could be chosen with no sync before it.
      return proposeFinalize(acceptor.accepted.config);
    }
    this.cluster.sync(this.self, undefined, (result) => {
      if (this.stopped) return;
      if (result?.type !== 'synced') {
        // The configuration moved on during the sync: someone else finished this phase, which is all we wanted.
        if (movedOnPastJoint(result?.type === 'failed' ? result.code : undefined, config.epoch, this.config.epoch)) return done(undefined);
        return done(failureOf(result));
      }
      if (this.config.epoch !== config.epoch) return done(undefined);
      proposeFinalize();
    });
  }

  private propose(next: MembershipConfig, done: (result: ClientResult | undefined) => void): void {
    this.cluster.proposeConfig(this.self, next, (result) => {
      if (!this.stopped) done(result);
    });
  }

  /** The runtime's configuration listener: takeover of a joint phase, promotion of a learner into a free seat. */
  onConfigChange(config: MembershipConfig): void {
    this.takeoverToken += 1;
    this.parked = undefined;
    if (this.stopped) return;
    // Which work, and when: the runtime's own decision (src/core/membership-change.ts).
    const work = backgroundWork(config, this.self, this.cluster.timings.jointTakeoverMs, this.cluster.options.maxVoters);
    if (work.kind === 'takeover') {
      // Workaround takeoverAfterRestart (cluster.ts KnownBug): also give up waiting for a live proposer after a
      // few rounds (a restarted proposer lost its change, and may itself wait for the device that told it).
      const patience = this.cluster.options.workarounds.includes('takeoverAfterRestart') ? 3 : Infinity;
      let waited = 0;
      this.schedule(config.epoch, work.delayMs, (done) => {
        // Its proposer is alive: it is still syncing. Take over once it is gone.
        const proposer = this.cluster.core(this.self).proposerOf(config.epoch);
        if (proposerStillFinishing(proposer, this.self, (p) => this.cluster.isAlive(this.self, p)) && waited++ < patience) return done(false);
        this.stats.takeovers += 1;
        this.serialized((release) =>
          this.finishJoint((failure) => {
            release();
            if (failure === undefined) this.stats.takeoverSyncs += 1;
            done(failure === undefined);
          }),
        );
      });
      return;
    }
    if (work.kind === 'promote') {
      // Workaround silentPushTarget: a learner whose store is lost is not promoted (it would be a push target
      // that never answers).
      const avoidLost = this.cluster.options.workarounds.includes('silentPushTarget');
      const promotable = (peer: string): boolean => this.cluster.isAlive(this.self, peer) && !(avoidLost && this.cluster.storageLost(peer));
      this.schedule(config.epoch, 0, (done) =>
        this.serialized((release) => {
          if (!config.learners.some((m) => promotable(m.peerId))) {
            release();
            return done(false);
          }
          this.change(
            (c) => {
              const learner = c.learners.find((m) => promotable(m.peerId));
              if (isJoint(c) || c.voters.length >= this.cluster.options.maxVoters || learner === undefined) return undefined;
              this.stats.promotions += 1;
              return withVoterAdded(c, learner);
            },
            true,
            (failure) => {
              release();
              done(failure === undefined);
            },
          );
        }),
      );
    }
  }

  /** Background work for `epoch`, retried every jointTakeoverMs while the epoch stays (and the run goes on). */
  private schedule(epoch: number, delayMs: number, work: (done: (ok: boolean) => void) => void): void {
    const token = ++this.takeoverToken;
    this.after(delayMs, `membership work ${this.self} epoch ${epoch}`, () => {
      if (token !== this.takeoverToken || this.config.epoch !== epoch) return;
      if (this.now >= this.cluster.daemonUntilMs) {
        this.parked = { epoch, work };
        return;
      }
      work((ok) => {
        if (!ok && !this.stopped && this.config.epoch === epoch) this.schedule(epoch, this.cluster.timings.jointTakeoverMs, work);
      });
    });
  }

  /** Runs changes coordinated here one at a time. */
  private serialized(work: (release: () => void) => void): void {
    this.queue.push(work);
    this.runQueue();
  }

  private runQueue(): void {
    if (this.busy || this.stopped) return;
    const work = this.queue.shift();
    if (work === undefined) return;
    this.busy = true;
    let released = false;
    work(() => {
      if (released) return;
      released = true;
      this.busy = false;
      this.runQueue();
    });
  }

  private after(delayMs: number, label: string, run: () => void): void {
    this.cluster.scheduler.schedule(this.now + delayMs, label, () => {
      if (!this.stopped) run();
    });
  }
}

function failureOf(result: ClientResult | undefined): Failure {
  if (result?.type === 'failed') return { code: result.code, message: result.message };
  return { code: 'lost', message: result === undefined ? 'the device went down' : `unexpected ${result.type}` };
}

export interface MembershipOptions {
  readonly everyMs: readonly [number, number];
  readonly maxVoters: number;
  readonly untilMs: number;
}

export class MembershipDriver {
  readonly stats = { proposals: 0, commits: 0, conflicts: 0, changeFailures: 0, syncs: 0, syncFailures: 0, finalized: 0, aborts: 0, approvals: 0, readmitAttempts: 0 };

  constructor(
    private readonly rng: Rng,
    private readonly cluster: Cluster,
    private readonly options: MembershipOptions,
  ) {}

  private get scheduler(): Cluster['scheduler'] {
    return this.cluster.scheduler;
  }

  private get avoidLostLearners(): boolean {
    return this.cluster.options.workarounds.includes('silentPushTarget');
  }

  start(): void {
    this.scheduleNext();
  }

  /**
   * Final phase: brings the newest configuration to a stable one (finishing a joint phase) and fills the
   * learners; calls `done` when no more work is left. Retries through every voter until it works.
   */
  settle(done: () => void, attempt = 0): void {
    const latest = this.cluster.latestConfig();
    // Announcements are fire-and-forget: tell every device that lags the newest configuration (in the daemon
    // a leaving device repeats it until the others have it; anti-entropy will gossip it).
    this.cluster.announce(latest);
    if (!isJoint(latest)) return done();
    if (attempt > 50) throw new Error(`membership did not settle: epoch ${latest.epoch} still joint after ${attempt} attempts`);
    const voters = voterIds(latest).filter((v) => this.cluster.isUp(v));
    const node = voters[attempt % Math.max(1, voters.length)];
    const retry = (): void => {
      this.scheduler.schedule(this.scheduler.now + 20, `settle retry ${attempt + 1}`, () => this.settle(done, attempt + 1));
    };
    if (node === undefined) return retry();
    this.finishJoint(node, retry, () => this.settle(done, attempt + 1));
  }

  private scheduleNext(): void {
    const at = this.scheduler.now + this.rng.int(...this.options.everyMs);
    if (at >= this.options.untilMs) return;
    this.scheduler.schedule(at, 'membership change', () => {
      // Often several devices at once: concurrent proposals for the same epoch must not both win.
      const concurrent = this.rng.weighted([
        [1, 3],
        [2, 2],
        [3, 1],
      ]);
      for (let i = 0; i < concurrent; i++) this.act();
      this.scheduleNext();
    });
  }

  private act(): void {
    const members = this.cluster.nodes.filter((n) => this.cluster.isUp(n) && isVoter(this.cluster.configOf(n), n) && this.cluster.serves(n));
    if (members.length === 0) return;
    const node = this.rng.pick(members);
    const config = this.cluster.configOf(node);
    const adding = jointAddition(config);
    if (adding !== undefined && this.rng.chance(0.25)) {
      // Give up on the device being added (as `quorumd remove` does when it died before its sync).
      this.stats.aborts += 1;
      return this.propose(node, withJointAborted(config, adding), () => undefined);
    }
    if (isJoint(config)) return this.finishJoint(node, () => undefined);
    const spares = this.cluster.nodes.filter((n) => !isMember(config, n) && !isRemoved(config, n) && !config.previousVoters.includes(n));
    const removable = [...config.voters.map((m) => m.peerId).filter(() => config.voters.length > 1), ...config.learners.map((m) => m.peerId)];
    const choices: Array<[string, number]> = [];
    if (spares.length > 0) choices.push(['add', 5]);
    if (removable.length > 0) choices.push(['remove', 2]);
    if (config.learners.length > 0 && config.voters.length < this.options.maxVoters) choices.push(['promote', 3]);
    if (config.removed.length > 0) choices.push(['readmit', 1]);
    if (choices.length === 0) return;
    const kind = this.rng.weighted(choices);
    if (kind === 'add' || kind === 'readmit') {
      // `quorumd approve <peer>` on this device: a spare is admitted; a removed device must be refused.
      const peerId = this.rng.pick(kind === 'add' ? spares : config.removed);
      if (kind === 'add') this.stats.approvals += 1;
      else this.stats.readmitAttempts += 1;
      this.cluster.service(node)?.approve(peerId, () => undefined);
      return;
    }
    let next: MembershipConfig;
    let removing: string | undefined;
    if (kind === 'remove') {
      const peer = this.rng.pick(removable);
      // Within the fault model: removing a voter must leave the lost stores a minority of the voters left.
      if (isVoter(config, peer)) {
        if (!this.cluster.lossTolerable(undefined, peer)) return;
        removing = peer;
        this.cluster.pendingVoterRemovals.set(peer, (this.cluster.pendingVoterRemovals.get(peer) ?? 0) + 1);
      }
      next = withMemberRemoved(config, peer);
    } else {
      const learner = this.rng.pick(config.learners);
      if (this.avoidLostLearners && this.cluster.storageLost(learner.peerId)) return;
      next = withVoterAdded(config, learner);
    }
    this.propose(node, next, (committed) => {
      if (removing !== undefined) {
        const left = (this.cluster.pendingVoterRemovals.get(removing) ?? 1) - 1;
        if (left > 0) this.cluster.pendingVoterRemovals.set(removing, left);
        else this.cluster.pendingVoterRemovals.delete(removing);
      }
      if (committed === undefined) return;
      if (isJoint(committed)) return this.finishJoint(node, () => undefined);
    });
  }

  /** Sync the joint configuration at `node`, then propose its finalized successor; `failed` on any failure. */
  private finishJoint(node: string, failed: () => void, succeeded: () => void = () => undefined): void {
    const config = this.cluster.configOf(node);
    if (!isJoint(config) || !this.cluster.isUp(node)) return failed();
    this.stats.syncs += 1;
    this.cluster.sync(node, undefined, (result) => {
      if (result?.type !== 'synced') {
        this.stats.syncFailures += 1;
        return failed();
      }
      if (this.cluster.configOf(node).epoch !== config.epoch) return failed();
      this.propose(node, finalized(config), (committed) => {
        if (committed === undefined) return failed();
        this.stats.finalized += 1;
        succeeded();
      });
    });
  }

  private propose(node: string, next: MembershipConfig, done: (committed: MembershipConfig | undefined) => void): void {
    this.stats.proposals += 1;
    this.cluster.proposeConfig(node, next, (result: ClientResult | undefined) => {
      if (result?.type === 'configCommitted') {
        this.stats.commits += 1;
        return done(result.config);
      }
      if (result?.type === 'failed' && result.code === 'membership_conflict') this.stats.conflicts += 1;
      else this.stats.changeFailures += 1;
      done(undefined);
    });
  }
}

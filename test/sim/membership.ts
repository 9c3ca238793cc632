// Membership in the simulator. DeviceMembership runs the daemon's own membership service
// (src/node/membership.ts: join requests answered, admissions, re-seating wiped devices, joint-phase takeover,
// promotion of learners) and its join loop (src/node/join.ts: a device without its seat asks members to join)
// on virtual time. MembershipDriver is the operator: it approves spares, removes
// members, promotes learners, abandons joint additions and tries to re-admit removed devices, at random moments
// and concurrently, under the same faults as the data traffic.
import {
  type MembershipConfig,
  finalized,
  isJoint,
  isMember,
  isRemoved,
  isVoter,
  jointAddition,
  voterIds,
  withJointAborted,
  withMemberRemoved,
  withVoterAdded,
} from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import type { ClientResult, ReplicaCore } from '../../src/core/replica.js';
import type { TimerPort } from '../../src/node/driver-ports.js';
import { Joiner } from '../../src/node/join.js';
import { ALREADY_MEMBER, MembershipService } from '../../src/node/membership.js';
import type { Runtime, RuntimeLogger } from '../../src/node/runtime.js';
import { type Cluster, simAuth } from './cluster.js';
import type { Rng } from './rng.js';

/** Counters of every device's membership service, summed over the run (see DeviceMembership). */
export const emptyServiceStats = () => ({
  joinRequests: 0,
  joinsRefusedRemoved: 0,
  joinsWaitingApproval: 0,
  alreadyMember: 0,
  joined: 0,
  replacements: 0,
  replacementsDone: 0,
  admitted: 0,
  changeConflicts: 0,
  takeovers: 0,
  readmitRefused: 0,
  finalized: 0,
});
export type ServiceStats = ReturnType<typeof emptyServiceStats>;

type JoinMessage = Extract<Message, { type: 'joinRequest' | 'joinReply' }>;

interface ParkedTimer {
  at: number;
  readonly run: () => void;
  cancelled: boolean;
  /** Background work (takeover, promotion): runs only within the phase's horizon, parked beyond it. */
  readonly bounded: boolean;
}

/** One device's membership service and join loop; a new one at every boot (a crash ends everything it was doing). */
export class DeviceMembership {
  private readonly service: MembershipService;
  /** The daemon's join loop (src/node/join.ts), asking the devices this one is connected to. */
  private readonly joiner: Joiner;
  private stopped = false;
  /** Background timers beyond the phase's horizon (daemonUntilMs), re-armed when it moves (resume()). */
  private parked: ParkedTimer[] = [];

  constructor(
    private readonly self: string,
    private readonly cluster: Cluster,
    private readonly rng: Rng,
    private readonly runtime: Runtime,
    opIdBase: number,
  ) {
    const stats = cluster.serviceStats;
    const count = (msg: string): void => {
      if (msg.startsWith('a member came back with a new store')) stats.replacements += 1;
      else if (msg === 'seat given to the new store') stats.replacementsDone += 1;
      else if (msg === 'device admitted') stats.admitted += 1;
      else if (msg.startsWith('membership change lost its epoch')) stats.changeConflicts += 1;
      else if (msg === 'voter change synced and finalized') stats.finalized += 1;
      else if (msg === 'joined the cluster') stats.joined += 1;
    };
    const log: RuntimeLogger = { info: (_obj, msg) => count(msg), warn: (_obj, msg) => count(msg), error: () => undefined, debug: () => undefined };
    const timers = (bounded: boolean): TimerPort => ({
      set: (run, delayMs) => {
        const timer: ParkedTimer = { at: cluster.scheduler.now + Math.max(0, delayMs), run, cancelled: false, bounded };
        this.arm(timer);
        return timer;
      },
      clear: (handle) => {
        (handle as ParkedTimer).cancelled = true;
      },
    });
    this.service = new MembershipService({
      runtime: serviceView(runtime, cluster),
      storeId: cluster.runtimeStoreOf(self),
      send: (to, msg) => this.send(to, msg),
      log,
      autoAdmit: cluster.options.autoAdmit,
      clocks: { monotonicNow: () => cluster.scheduler.now, wallNow: () => cluster.wallMs(self) },
      timers: timers(false),
      backgroundTimers: timers(true),
      random: () => rng.float(),
      maxVoters: cluster.options.maxVoters,
      jointTakeoverMs: cluster.timings.jointTakeoverMs,
      changeAttemptsMax: cluster.timings.changeAttemptsMax,
      // The address book knows the devices that were members here (the removed ones too), not a spare that asked
      // to join elsewhere (approving it would admit it with no store named, a seat it cannot serve until re-seated:
      // outside the fault model's loss bound). A spare is approved where it asked.
      addrsOf: (peer) => (isMember(runtime.config, peer) || isRemoved(runtime.config, peer) ? [`/sim/${peer}`] : []),
      isAlive: (peer) => cluster.isAlive(self, peer),
      storeOf: (peer) => cluster.heardStoreOf(self, peer),
      opIdBase,
      // As the daemon: a device back with a new store asks with its signed claim, a member checks it.
      auth: simAuth(self),
    });
    const service = this.service;
    this.joiner = new Joiner({
      self,
      dataDir: `/sim/${self}`,
      // No --join addresses: the devices it is connected to are asked (as found over mDNS), in a seeded order.
      joinAddrs: [],
      transport: {
        connectedPeers: () => rng.shuffle(cluster.nodes.filter((n) => cluster.isAlive(self, n))),
        dial: () => Promise.reject(new Error('the simulator dials no --join address')),
      },
      runtime,
      // A store with records that holds no seat belongs to an earlier seat of this device: it never asks.
      store: { stats: () => ({ totalKeys: cluster.visibleKeys(self) }) },
      membership: {
        requestJoin: (member, addrs, timeoutMs) => {
          stats.joinRequests += 1;
          return service.requestJoin(member, addrs, timeoutMs);
        },
      },
      log,
      listenAddrs: () => [],
      // A crash ends the loop. The phase's horizon ends it at its next turn: its retry pause is background work,
      // parked beyond the horizon and re-armed by resume() (a round of asking under way finishes, as before).
      stopping: () => this.stopped,
      timers: timers(true),
      retryMs: cluster.timings.joinRetryMs,
      timeoutMs: cluster.timings.joinTimeoutMs,
    });
  }

  private get now(): number {
    return this.cluster.scheduler.now;
  }

  private arm(timer: ParkedTimer): void {
    if (timer.bounded && timer.at > this.cluster.daemonUntilMs) {
      this.parked.push(timer);
      return;
    }
    this.cluster.scheduler.schedule(timer.at, `membership ${timer.bounded ? 'work' : 'timer'} ${this.self}`, () => {
      if (this.stopped || timer.cancelled) return;
      if (timer.bounded && this.now >= this.cluster.daemonUntilMs) {
        this.parked.push(timer); // the phase ended meanwhile
        return;
      }
      timer.cancelled = true;
      this.cluster.guarded(timer.run);
    });
  }

  /** Join replies sent by the service, counted by what they say. */
  private send(to: string, msg: Message): boolean {
    if (msg.type === 'joinReply') {
      const stats = this.cluster.serviceStats;
      if (msg.ok && msg.error === ALREADY_MEMBER) stats.alreadyMember += 1;
      else if (!msg.ok && msg.error === 'this device was removed from the cluster') stats.joinsRefusedRemoved += 1;
      else if (!msg.ok && msg.error.startsWith('waiting for approval')) stats.joinsWaitingApproval += 1;
    }
    // The broken readmitRemoved shows the service configurations without their removed devices (serviceView);
    // what it sends is the configuration as it is (a stripped one would fail its proof check at the candidate).
    const sent = msg.type === 'joinReply' && msg.config !== undefined && this.cluster.options.bug === 'readmitRemoved' ? { ...msg, config: this.runtime.config } : msg;
    return this.cluster.sendPlain(this.self, to, sent);
  }

  /** The run's next phase extends the horizon: parked timers go on, and the join loop if this store holds no seat. */
  resume(): void {
    const parked = this.parked;
    this.parked = [];
    for (const timer of parked) {
      if (timer.cancelled) continue;
      timer.at = Math.max(timer.at, this.now);
      this.arm(timer);
    }
    this.start();
  }

  /** At boot (and when the final phase extends the horizon): the join loop, if this store holds no seat. */
  start(): void {
    if (this.stopped || this.now >= this.cluster.daemonUntilMs) return;
    this.joiner.start(true);
  }

  stop(): void {
    this.stopped = true;
    this.service.stop();
    this.joiner.wake();
  }

  /** The runtime adopted `config` (as the daemon's configuration listener): a store that lost its seat asks again. */
  configChanged(config: MembershipConfig): void {
    if (this.stopped || this.now >= this.cluster.daemonUntilMs) return;
    this.joiner.configChanged(config);
  }

  /** A peer connected: a device waiting to join asks at once instead of at its next retry. */
  wake(): void {
    this.joiner.wake();
  }

  handle(from: string, msg: JoinMessage): void {
    if (!this.stopped) this.service.handle(from, msg);
  }

  /** Membership changes this device's service has queued or under way (an operator's approval, a re-seat...). */
  get changesInFlight(): number {
    return this.stopped ? 0 : this.service.changesInFlight;
  }

  /** The operator's `quorumd approve`: admits a candidate now; a removed device is refused. */
  approve(peerId: string, done: (error: string | undefined) => void): void {
    this.service.approve(peerId).then(
      () => this.cluster.guarded(() => done(undefined)),
      (error: unknown) =>
        this.cluster.guarded(() => {
          const message = error instanceof Error ? error.message : String(error);
          if (message.includes('was removed from the cluster')) this.cluster.serviceStats.readmitRefused += 1;
          done(message);
        }),
    );
  }
}

/**
 * What the membership service sees of the runtime: the runtime itself, its core's proposerOf counted (a takeover
 * looking at a joint phase), and with the broken readmitRemoved, configurations without their removed devices
 * (the service admits them, and un-removes them with its next change).
 */
function serviceView(runtime: Runtime, cluster: Cluster): Runtime {
  const proposerOf = (epoch: number): string | undefined => {
    cluster.serviceStats.takeovers += 1;
    return runtime.core.proposerOf(epoch);
  };
  const core = new Proxy(runtime.core, {
    get(target, prop) {
      if (prop === 'proposerOf') return proposerOf;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  }) as ReplicaCore;
  const forget = cluster.options.bug === 'readmitRemoved';
  return new Proxy(runtime, {
    get(target, prop) {
      if (prop === 'core') return core;
      if (prop === 'config' && forget) return { ...target.config, removed: [] };
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
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

// Simulated membership operator: like src/node/membership.ts, devices propose changes (add a spare as voter
// or learner, remove a member, promote a learner), finish joint configurations (sync, then finalize) and fill
// new learners, at random moments and concurrently, under the same faults as the data traffic.
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
  withLearnerAdded,
  withMemberRemoved,
  withVoterAdded,
} from '../../src/core/membership.js';
import type { ClientResult } from '../../src/core/replica.js';
import type { Cluster } from './cluster.js';
import type { Rng } from './rng.js';
import type { Scheduler } from './scheduler.js';

export interface MembershipOptions {
  readonly everyMs: readonly [number, number];
  readonly maxVoters: number;
  readonly untilMs: number;
}

export class MembershipDriver {
  readonly stats = { proposals: 0, commits: 0, conflicts: 0, changeFailures: 0, syncs: 0, syncFailures: 0, finalized: 0, aborts: 0 };

  constructor(
    private readonly rng: Rng,
    private readonly scheduler: Scheduler,
    private readonly cluster: Cluster,
    private readonly options: MembershipOptions,
  ) {}

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
    const members = this.cluster.nodes.filter((n) => this.cluster.isUp(n) && isVoter(this.cluster.configOf(n), n));
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
    if (choices.length === 0) return;
    const kind = this.rng.weighted(choices);
    let next: MembershipConfig;
    if (kind === 'add') {
      const peerId = this.rng.pick(spares);
      next = config.voters.length < this.options.maxVoters ? withVoterAdded(config, { peerId, addrs: [] }) : withLearnerAdded(config, { peerId, addrs: [] });
    } else if (kind === 'remove') {
      next = withMemberRemoved(config, this.rng.pick(removable));
    } else {
      next = withVoterAdded(config, this.rng.pick(config.learners));
    }
    this.propose(node, next, (committed) => {
      if (committed === undefined) return;
      if (isJoint(committed)) return this.finishJoint(node, () => undefined);
      const learners = committed.learners.map((m) => m.peerId).filter((p) => !config.learners.some((m) => m.peerId === p));
      if (learners.length > 0) {
        this.stats.syncs += 1;
        this.cluster.sync(node, learners, (result) => {
          if (result?.type !== 'synced') this.stats.syncFailures += 1;
        });
      }
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

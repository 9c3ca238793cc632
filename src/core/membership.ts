// Membership configuration as data: which devices vote in quorums at which epoch. Every change produces a
// new epoch; the record already has room for learners and removed devices (the dynamic-membership issue).
import { assert } from './assert.js';

export interface MemberInfo {
  /** libp2p peer ID (base58): the device's name in the cluster. */
  readonly peerId: string;
  /** Last known dialable multiaddrs (with /p2p/<peerId>), so a restarted device can reconnect by itself. */
  readonly addrs: readonly string[];
}

export interface MembershipConfig {
  readonly clusterId: string;
  /** Increases by one with every committed change; 0 means "no membership yet" (waiting to join). */
  readonly epoch: number;
  readonly voters: readonly MemberInfo[];
  /** Full replicas that do not count in quorums (used from the dynamic-membership issue on). */
  readonly learners: readonly MemberInfo[];
  /** Peer IDs refused even though they hold the cluster key. */
  readonly removed: readonly string[];
}

export function foundingConfig(clusterId: string, founder: MemberInfo): MembershipConfig {
  return { clusterId, epoch: 1, voters: [founder], learners: [], removed: [] };
}

export function isVoter(config: MembershipConfig, peerId: string): boolean {
  return config.voters.some((m) => m.peerId === peerId);
}

export function isMember(config: MembershipConfig, peerId: string): boolean {
  return isVoter(config, peerId) || config.learners.some((m) => m.peerId === peerId);
}

export function voterIds(config: MembershipConfig): string[] {
  return config.voters.map((m) => m.peerId);
}

/** Every device that holds a replica (voters, then learners). */
export function replicaIds(config: MembershipConfig): string[] {
  return [...config.voters, ...config.learners].map((m) => m.peerId);
}

/** The next configuration with `member` added as a voter (one voter per epoch keeps majorities overlapping). */
export function withVoterAdded(config: MembershipConfig, member: MemberInfo): MembershipConfig {
  assert(config.epoch >= 1, 'only a committed configuration can change');
  assert(!isVoter(config, member.peerId), 'the new voter is not a voter yet');
  return {
    ...config,
    epoch: config.epoch + 1,
    voters: [...config.voters, member],
    learners: config.learners.filter((m) => m.peerId !== member.peerId),
    removed: config.removed.filter((p) => p !== member.peerId),
  };
}

/** Same configuration with fresher addresses for a member (not a membership change: epoch unchanged). */
export function withAddrs(config: MembershipConfig, peerId: string, addrs: readonly string[]): MembershipConfig {
  const update = (m: MemberInfo): MemberInfo => (m.peerId === peerId ? { peerId, addrs: [...addrs] } : m);
  return { ...config, voters: config.voters.map(update), learners: config.learners.map(update) };
}

/** Checks a configuration received from the wire or disk. Returns a reason, or undefined when valid. */
export function configProblem(config: MembershipConfig): string | undefined {
  if (config.clusterId.length === 0) return 'empty cluster id';
  if (!Number.isSafeInteger(config.epoch) || config.epoch < 0) return 'bad epoch';
  if (config.epoch > 0 && config.voters.length === 0) return 'a committed configuration needs a voter';
  const ids = new Set<string>();
  for (const m of [...config.voters, ...config.learners]) {
    if (m.peerId.length === 0) return 'empty peer id';
    if (ids.has(m.peerId)) return `duplicate member ${m.peerId}`;
    ids.add(m.peerId);
  }
  return undefined;
}

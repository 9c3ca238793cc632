// Membership configuration as data: which devices vote in quorums at which epoch, and the pure transforms
// that produce the next configuration (one voter added or removed per epoch; a joint phase while data syncs).
import { assert } from './assert.js';
import type { Ballot } from './ballot.js';
import { majority } from './quorum.js';

export interface MemberInfo {
  /** libp2p peer ID (base58): the device's name in the cluster. */
  readonly peerId: string;
  /** Last known dialable multiaddrs (with /p2p/<peerId>), so a restarted device can reconnect by itself. */
  readonly addrs: readonly string[];
  /**
   * The store that holds this seat: the random id a device's store takes when it is created. A device whose
   * store is another one (its storage was wiped or re-flashed) is a new device under an old name: it is not
   * seated, so it acknowledges, answers and decides nothing until a change replaces the seat's store (see
   * withSeatReplaced and docs/membership.md). Undefined: a seat from before store ids (see ReplicaCore).
   */
  readonly store?: string | undefined;
  /**
   * The device's own signature (its peer key) saying that `store` is its store, from epoch `since` on
   * (src/core/config-proof.ts seatClaimPayload). Set by the change that gives a voter's seat to a new store
   * (withSeatReplaced): such a change is decided by fewer acceptors than a majority when the cluster has an even
   * number of voters (configQuorum), and only the seated device can ask for it. Undefined on other seats.
   */
  readonly claim?: SeatClaim | undefined;
}

/** A device's signed word that a store is its own (see MemberInfo.claim). */
export interface SeatClaim {
  /**
   * The store the seat named when the device signed (a member told it, with the configuration): the claim
   * proves only a change away from that store, so once the seat moved on (the device was wiped again), an old
   * claim proves nothing. Empty for a seat from before store ids.
   */
  readonly from: string;
  /** The newest epoch the device was told of when it signed: the claim proves no change from an older base. */
  readonly since: number;
  /** Base64 signature over seatClaimPayload(peerId, from, store, since) (src/core/config-proof.ts). */
  readonly signature: string;
}

/** One acceptor's signature over acceptPayload(config, ballot) (src/core/config-proof.ts). */
export interface ConfigSignature {
  readonly peerId: string;
  /** Base64 of the signature bytes (as the signer returns it). */
  readonly signature: string;
}

/**
 * Why a device may believe a configuration was decided: `ballot` is the Paxos ballot at which every listed
 * acceptor (a voter of the previous epoch) accepted it. A quorum of acceptors at ONE ballot means the value is
 * chosen; accepts at different ballots would not (another value may be chosen after them), so the ballot is part
 * of what is signed. Epoch 1 carries its founder's signature at ballot 0. See src/core/config-proof.ts.
 */
export interface ConfigProof {
  readonly ballot: Ballot;
  readonly signatures: readonly ConfigSignature[];
}

/** Signatures a proof may list (a proof needs at most one per voter of the previous epoch). */
export const PROOF_SIGNATURES_MAX = 64;
/** Longest signature string accepted (base64 of an Ed25519 signature is 88 characters). */
export const SIGNATURE_CHARS_MAX = 256;

export interface MembershipConfig {
  readonly clusterId: string;
  /** Increases by one with every committed change; 0 means "no membership yet" (waiting to join). */
  readonly epoch: number;
  readonly voters: readonly MemberInfo[];
  /** Full replicas that do not count in quorums (used from the dynamic-membership issue on). */
  readonly learners: readonly MemberInfo[];
  /** Peer IDs refused even though they hold the cluster key. */
  readonly removed: readonly string[];
  /**
   * Non-empty while the voter set is changing: the voters of the configuration before the change. Until the
   * change's data sync finishes and a following epoch clears this list, quorum operations need a majority of
   * `voters` AND a majority of `previousVoters` (joint quorums), so nothing acknowledged before is lost.
   */
  readonly previousVoters: readonly string[];
  /**
   * Previous voters whose store is gone (their seat is being given to a new store, withSeatReplaced): in the
   * joint phase they count in no previous-voter majority and are no source of the data sync. Empty otherwise.
   */
  readonly replaced?: readonly string[] | undefined;
  /**
   * Proof that the voters of the previous epoch chose this configuration (their accept signatures). Not part
   * of the value (configsEqual ignores it): the value is decided first, its proof collected by the proposer.
   * Undefined on configurations from before proofs, and on values still being decided.
   */
  readonly proof?: ConfigProof | undefined;
}

export function foundingConfig(clusterId: string, founder: MemberInfo): MembershipConfig {
  return { clusterId, epoch: 1, voters: [founder], learners: [], removed: [], previousVoters: [] };
}

/** The configuration of a device that is not a member of any cluster yet (waiting to join). */
export const NO_CONFIG: MembershipConfig = { clusterId: '', epoch: 0, voters: [], learners: [], removed: [], previousVoters: [] };

/** True while a voter change is syncing data (joint quorums apply). */
export function isJoint(config: MembershipConfig): boolean {
  return config.previousVoters.length > 0;
}

export function isRemoved(config: MembershipConfig, peerId: string): boolean {
  return config.removed.includes(peerId);
}

export function isLearner(config: MembershipConfig, peerId: string): boolean {
  return config.learners.some((m) => m.peerId === peerId);
}

export function isVoter(config: MembershipConfig, peerId: string): boolean {
  return config.voters.some((m) => m.peerId === peerId);
}

export function isMember(config: MembershipConfig, peerId: string): boolean {
  return isVoter(config, peerId) || config.learners.some((m) => m.peerId === peerId);
}

/** The seat (voter or learner entry) of `peerId`, if it is a member. */
export function seatOf(config: MembershipConfig, peerId: string): MemberInfo | undefined {
  return config.voters.find((m) => m.peerId === peerId) ?? config.learners.find((m) => m.peerId === peerId);
}

/** Previous voters whose store is gone (see MembershipConfig.replaced). */
export function replacedIds(config: MembershipConfig): readonly string[] {
  return config.replaced ?? [];
}

/**
 * Previous voters that still count while joint: not removed, and not replaced (their store is gone). Their
 * majority is needed by every quorum operation, and they are the sources of the data sync.
 */
export function livePreviousVoters(config: MembershipConfig): string[] {
  const replaced = replacedIds(config);
  return config.previousVoters.filter((p) => !config.removed.includes(p) && !replaced.includes(p));
}

export function voterIds(config: MembershipConfig): string[] {
  return config.voters.map((m) => m.peerId);
}

/**
 * Every device that receives writes: voters, previous voters still in a joint phase (unless removed), then
 * learners. No duplicates.
 */
export function replicaIds(config: MembershipConfig): string[] {
  const ids = new Set(config.voters.map((m) => m.peerId));
  for (const p of config.previousVoters) if (!config.removed.includes(p)) ids.add(p);
  for (const m of config.learners) ids.add(m.peerId);
  return [...ids];
}

/** Devices whose answers count for quorum reads and writes: voters and (while joint) previous voters. */
export function quorumIds(config: MembershipConfig): string[] {
  const ids = new Set(config.voters.map((m) => m.peerId));
  for (const p of config.previousVoters) if (!config.removed.includes(p)) ids.add(p);
  return [...ids];
}

function assertChangeable(config: MembershipConfig): void {
  assert(config.epoch >= 1, 'only a committed configuration can change');
  assert(!isJoint(config), 'a joint configuration must be finalized before the next change');
}

/**
 * The next configuration with `member` added as a voter (a learner being promoted, or a new device). One voter
 * per epoch keeps majorities of consecutive configurations overlapping; the result is joint until synced.
 */
export function withVoterAdded(config: MembershipConfig, member: MemberInfo): MembershipConfig {
  assertChangeable(config);
  assert(!isVoter(config, member.peerId), 'the new voter is not a voter yet');
  // A removed device stays removed: its store may hold values whose deletes were purged while it was out.
  assert(!isRemoved(config, member.peerId), 'a removed device is not re-admitted');
  const learner = config.learners.find((m) => m.peerId === member.peerId);
  // A learner keeps its seat's store when promoted: the store that received the learner's data.
  const seat: MemberInfo = learner === undefined ? member : { ...member, store: learner.store };
  return {
    ...config,
    epoch: config.epoch + 1,
    voters: [...config.voters, seat],
    learners: config.learners.filter((m) => m.peerId !== member.peerId),
    previousVoters: voterIds(config),
    replaced: [],
  };
}

/** The next configuration with `member` added as a learner (no quorum change, so not joint). */
export function withLearnerAdded(config: MembershipConfig, member: MemberInfo): MembershipConfig {
  assertChangeable(config);
  assert(!isMember(config, member.peerId), 'the new learner is not a member yet');
  assert(!isRemoved(config, member.peerId), 'a removed device is not re-admitted');
  return {
    ...config,
    epoch: config.epoch + 1,
    learners: [...config.learners, member],
  };
}

/**
 * The next configuration with `peerId`'s seat held by the store `store` (the device lost its storage and came
 * back with a new one, under the same peer ID). A voter's replacement is a joint phase like any voter change:
 * the old seat counts in no previous-voter majority and is no sync source (its data is gone), the new store
 * receives the data sync, and finalized() ends it. A learner's is a plain change (it counts in no quorum).
 */
export function withSeatReplaced(
  config: MembershipConfig,
  peerId: string,
  store: string,
  addrs: readonly string[],
  claim?: SeatClaim,
): MembershipConfig {
  const seat = seatOf(config, peerId);
  assert(seat !== undefined && seat.store !== store, 'only a member seat held by another store is replaced');
  const fresh: MemberInfo = claim === undefined ? { peerId, addrs: [...addrs], store } : { peerId, addrs: [...addrs], store, claim };
  const update = (m: MemberInfo): MemberInfo => (m.peerId === peerId ? fresh : m);
  if (isJoint(config)) {
    // The store that was getting this seat was lost too (wiped again during its re-seating, or the voter being
    // added lost its store before its admission was finalized): the joint phase goes on for the newest store.
    // Safe: every write of the phase also had the live previous majority, and the new store gets the sync.
    assert(jointRetargetable(config, peerId), 'only a joint phase re-seating or adding this device is re-targeted');
    return { ...config, epoch: config.epoch + 1, voters: config.voters.map(update) };
  }
  assertChangeable(config);
  if (!isVoter(config, peerId)) return { ...config, epoch: config.epoch + 1, learners: config.learners.map(update) };
  return {
    ...config,
    epoch: config.epoch + 1,
    voters: config.voters.map(update),
    previousVoters: voterIds(config),
    replaced: [peerId],
  };
}

/**
 * Whether a joint configuration can give `peerId`'s seat to another store without ending first: the phase
 * re-seats it, or adds it as a new voter (either way it is the phase's sync target, so the sync goes on for its
 * newest store; finishing first would wait for a store that is gone).
 */
export function jointRetargetable(config: MembershipConfig, peerId: string): boolean {
  return jointReplacement(config) === peerId || jointAddition(config) === peerId;
}

/** The voter whose seat a joint configuration gives to a new store, if it does. */
export function jointReplacement(config: MembershipConfig): string | undefined {
  return isJoint(config) ? replacedIds(config)[0] : undefined;
}

/**
 * The next configuration without `peerId`, which is added to `removed` (refused at connection from then on).
 * Removing a voter is joint until synced; removing the last voter is impossible.
 */
export function withMemberRemoved(config: MembershipConfig, peerId: string): MembershipConfig {
  assertChangeable(config);
  assert(isMember(config, peerId), 'only a member can be removed');
  const voter = isVoter(config, peerId);
  assert(!voter || config.voters.length > 1, 'the last voter cannot be removed');
  return {
    ...config,
    epoch: config.epoch + 1,
    voters: config.voters.filter((m) => m.peerId !== peerId),
    learners: config.learners.filter((m) => m.peerId !== peerId),
    removed: [...config.removed.filter((p) => p !== peerId), peerId].slice(-REMOVED_MAX),
    previousVoters: voter ? voterIds(config) : [],
    replaced: [],
  };
}

/**
 * Abandons a joint phase that added `peerId` (e.g. the new device died before its data sync): back to the
 * previous voters, with `peerId` removed. Safe without a sync: every write acknowledged in the joint epoch had a
 * majority of the previous voters too, and every older one was on such a majority already.
 */
export function withJointAborted(config: MembershipConfig, peerId: string): MembershipConfig {
  assert(isJoint(config), 'only a joint configuration is abandoned');
  const fresh = config.voters.filter((m) => !config.previousVoters.includes(m.peerId));
  assert(fresh.length === 1 && fresh[0]?.peerId === peerId, 'the joint phase added exactly this voter');
  return {
    ...config,
    epoch: config.epoch + 1,
    voters: config.voters.filter((m) => m.peerId !== peerId),
    removed: [...config.removed.filter((p) => p !== peerId), peerId].slice(-REMOVED_MAX),
    previousVoters: [],
    replaced: [],
  };
}

/** The voter a joint configuration is adding, if it adds one. */
export function jointAddition(config: MembershipConfig): string | undefined {
  if (!isJoint(config)) return undefined;
  const fresh = config.voters.filter((m) => !config.previousVoters.includes(m.peerId));
  return fresh.length === 1 && config.voters.length === config.previousVoters.length + 1 ? fresh[0]?.peerId : undefined;
}

/** Ends a joint phase once its data sync is done: same members, next epoch, plain majorities again. */
export function finalized(config: MembershipConfig): MembershipConfig {
  assert(isJoint(config), 'only a joint configuration is finalized');
  return { ...config, epoch: config.epoch + 1, previousVoters: [], replaced: [] };
}

/** How many revoked peer IDs a configuration remembers (oldest forgotten first). */
export const REMOVED_MAX = 1024;

/** Deep equality of two configurations (member order matters: it is part of the decided value). */
export function configsEqual(a: MembershipConfig, b: MembershipConfig): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** Everything a configuration says except its proof, in a fixed order (what accept signatures cover). */
export function configCanonical(c: MembershipConfig): unknown {
  return canonical(c);
}

function canonical(c: MembershipConfig): unknown {
  // A claim is appended only where there is one: configurations without claims keep the form (and the accept
  // signatures) they had before claims existed.
  const seat = (m: MemberInfo): unknown =>
    m.claim === undefined ? [m.peerId, m.addrs, m.store ?? ''] : [m.peerId, m.addrs, m.store ?? '', m.claim.from, m.claim.since, m.claim.signature];
  return [c.clusterId, c.epoch, c.voters.map(seat), c.learners.map(seat), c.removed, c.previousVoters, replacedIds(c)];
}

/** Same configuration with fresher addresses for a member (not a membership change: epoch unchanged). */
export function withAddrs(config: MembershipConfig, peerId: string, addrs: readonly string[]): MembershipConfig {
  const update = (m: MemberInfo): MemberInfo => (m.peerId === peerId ? { ...m, addrs: [...addrs] } : m);
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
    if (m.claim !== undefined && seatClaimShapeProblem(m.claim) !== undefined) return `bad seat claim of ${m.peerId}`;
  }
  for (const p of config.previousVoters) if (p.length === 0) return 'empty previous voter id';
  // Sets, not list scans: a configuration from the wire may list 1,024 replaced seats and previous voters, and a
  // quadratic check of every configuration in a chain made decoding one frame cost seconds.
  const previous = new Set(config.previousVoters);
  const voters = new Set(voterIds(config));
  for (const p of replacedIds(config)) if (!previous.has(p) || !voters.has(p)) return `replaced seat ${p} is not a previous and current voter`;
  for (const p of config.removed) if (ids.has(p)) return `removed peer ${p} is still a member`;
  if (config.removed.length > REMOVED_MAX) return 'too many removed peers';
  if (config.proof !== undefined) return proofShapeProblem(config.proof);
  return undefined;
}

/** Shape checks of a proof received from the wire or disk (its verification is config-proof.ts's). */
export function proofShapeProblem(proof: ConfigProof): string | undefined {
  if (!Number.isSafeInteger(proof.ballot.round) || proof.ballot.round < 0) return 'bad proof ballot';
  if (proof.signatures.length > PROOF_SIGNATURES_MAX) return 'too many signatures in a proof';
  for (const s of proof.signatures) {
    if (s.peerId.length === 0 || s.signature.length === 0 || s.signature.length > SIGNATURE_CHARS_MAX) return 'bad signature in a proof';
  }
  return undefined;
}

/** Longest store id a claim names (a store names itself with 32 hex characters; src/wire/replica.ts checks seats' too). */
export const SEAT_CLAIM_STORE_CHARS_MAX = 64;

/** Shape checks of a seat claim from the wire or disk (its signature is checked by config-proof.ts). */
export function seatClaimShapeProblem(claim: SeatClaim): string | undefined {
  if (!Number.isSafeInteger(claim.since) || claim.since < 0) return 'bad seat claim epoch';
  if (claim.from.length > SEAT_CLAIM_STORE_CHARS_MAX) return 'bad seat claim store';
  if (claim.signature.length === 0 || claim.signature.length > SIGNATURE_CHARS_MAX) return 'bad seat claim signature';
  return undefined;
}

/**
 * The voter of `base` whose store `proposed` replaces (withSeatReplaced) with the device's signed claim on its
 * new store, if any: its old store is gone, and its new store never votes in this slot (it is not seated in
 * `base`), so the smaller quorum of configQuorum decides it. A replacement without a claim is decided (and
 * proven) by a majority of all of base's voters, like any other change: in a two-voter cluster one voter alone
 * could otherwise move the other's seat to a store of its naming (docs/security.md).
 */
export function goneAcceptor(base: MembershipConfig, proposed: MembershipConfig): string | undefined {
  for (const m of base.voters) {
    const next = proposed.voters.find((v) => v.peerId === m.peerId);
    if (next === undefined || next.store === m.store || next.claim === undefined) continue;
    if (replacedIds(proposed).includes(m.peerId)) return m.peerId;
    // The voter a joint phase adds, given another store before the phase ends (its store was lost).
    if (isJoint(base) && isJoint(proposed) && jointAddition(base) === m.peerId && jointAddition(proposed) === m.peerId) return m.peerId;
  }
  return undefined;
}

/**
 * Acceptors that can answer a proposal and how many of them it needs: a majority of the voters of `base`; with
 * one voter's store gone, n − majority(n) + 1 of the n − 1 others. That still meets every majority that may have
 * chosen a value before (a majority of n holds at least majority(n) − 1 of the others), and any two such sets of
 * the others meet each other (Flexible Paxos): a two-voter cluster can re-seat a wiped device, and nothing
 * else is weakened, since only the gone store's acceptor is left out and it can never vote in this slot again.
 */
export function configQuorum(base: MembershipConfig, gone: string | undefined): { acceptors: number; needed: number } {
  const n = base.voters.length;
  if (gone === undefined) return { acceptors: n, needed: majority(n) };
  return { acceptors: n - 1, needed: n - majority(n) + 1 };
}

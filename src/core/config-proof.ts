// Proof that a configuration was chosen: the accept signatures of a Paxos quorum of the previous epoch's voters,
// all for one ballot, over the configuration's canonical form; the checks that verify such a proof (one step,
// or a chain of steps for a device many epochs behind) and the founder's signature on epoch 1. Pure: signing and
// verification are ports (ConfigAuth) the runtime implements with the devices' Ed25519 peer keys.
import type { Ballot } from './ballot.js';
import {
  type MembershipConfig,
  type SeatClaim,
  configCanonical,
  configQuorum,
  configsEqual,
  goneAcceptor,
  isJoint,
  jointRetargetable,
  proofShapeProblem,
  seatOf,
  voterIds,
  withSeatReplaced,
} from './membership.js';

/**
 * The signing and verification port (src/node/config-auth.ts implements it with Ed25519 peer keys; a peer ID
 * of type Ed25519 embeds its public key, so verification needs no key distribution). Both must be
 * deterministic and do no IO; `verify` returns false for anything it cannot check (never throws).
 */
export interface ConfigAuth {
  sign(payload: Uint8Array): string;
  verify(peerId: string, payload: Uint8Array, signature: string): boolean;
}

/**
 * Committed configurations a device keeps (with their proofs) to tell a device that is behind the whole way
 * from its epoch to ours. A voter change takes two epochs (joint, final) and a learner change one: 64 epochs is
 * some 30 membership changes. A device further behind cannot verify the step it misses and stays on its old
 * configuration (see docs/security.md: remove its quorumd.db* so it is re-seated with an empty store).
 */
export const CONFIG_HISTORY_MAX = 64;
/** Configurations sent in one announcement (the rest follow at the next tell): bounds a message's size. */
export const CHAIN_SENT_MAX = 16;

const enc = new TextEncoder();
const DOMAIN = 'quorumd/config-accept/1';
const CLAIM_DOMAIN = 'quorumd/seat-claim/1';

/**
 * What a device signs to ask for its seat on a new store (MemberInfo.claim): its peer ID, the store its seat
 * names (`from`, as a member told it), the new store, and the newest epoch it was told of. Store ids are random
 * per store, so a claim proves one move of one seat: from epoch `since` on (not from an older configuration), and
 * only while the seat still names `from` (not once it moved on, the device being wiped again).
 */
export function seatClaimPayload(peerId: string, from: string, store: string, since: number): Uint8Array {
  return enc.encode(JSON.stringify([CLAIM_DOMAIN, peerId, from, store, since]));
}

/** The claim `peerId` (this device, signing with `auth`) makes to move its seat from `from` to `store` against epoch `since`. */
export function signSeatClaim(auth: ConfigAuth, peerId: string, from: string, store: string, since: number): SeatClaim {
  return { from, since, signature: auth.sign(seatClaimPayload(peerId, from, store, since)) };
}

/**
 * Why `claim` does not prove that `peerId` asked to move its seat from `from` (the store `base` names) to
 * `store` in a change from `base`, or undefined when it does.
 */
export function seatClaimProblem(
  peerId: string,
  from: string,
  store: string,
  claim: SeatClaim | undefined,
  baseEpoch: number,
  auth: ConfigAuth,
): string | undefined {
  if (claim === undefined) return `no claim of ${peerId} on store ${store}`;
  if (claim.from !== from) return `${peerId}'s claim on store ${store} moves its seat from store ${claim.from}, not ${from}`;
  if (claim.since > baseEpoch) return `${peerId}'s claim on store ${store} is for epoch ${claim.since} on, not ${baseEpoch}`;
  if (!auth.verify(peerId, seatClaimPayload(peerId, from, store, claim.since), claim.signature)) return `bad claim of ${peerId} on store ${store}`;
  return undefined;
}

/** What an acceptor signs when it accepts `config` at `ballot`: everything the configuration says, and the ballot. */
export function acceptPayload(config: MembershipConfig, ballot: Ballot): Uint8Array {
  return enc.encode(JSON.stringify([DOMAIN, ballot.round, ballot.proposer, configCanonical(config)]));
}

/**
 * Why `next` is not proven to be the configuration the voters of `base` chose for epoch base.epoch + 1, or
 * undefined when it is: a quorum of base's acceptors (configQuorum: a majority of its voters, or with one
 * voter's store gone n − majority(n) + 1 of the others, exactly as the proposer counted) signed it at one ballot.
 */
export function proofProblem(base: MembershipConfig, next: MembershipConfig, auth: ConfigAuth): string | undefined {
  if (base.epoch < 1) return 'no committed configuration to verify against';
  if (next.epoch !== base.epoch + 1) return `epoch ${next.epoch} does not follow ${base.epoch}`;
  if (next.clusterId !== base.clusterId) return 'another cluster';
  const proof = next.proof;
  if (proof === undefined) return `epoch ${next.epoch} carries no proof`;
  const shape = proofShapeProblem(proof);
  if (shape !== undefined) return shape;
  const gone = goneAcceptor(base, next);
  if (gone !== undefined) {
    // The smaller quorum holds only for a change that gives `gone`'s seat to a new store and nothing else: a value
    // claiming it for more (a voter added or removed with it) would be decided by fewer than Paxos allows.
    const seat = next.voters.find((m) => m.peerId === gone);
    if (isJoint(base) && !jointRetargetable(base, gone)) return 'a seat replacement during another joint phase';
    const expected = seat?.store === undefined ? undefined : withSeatReplaced(base, gone, seat.store, seat.addrs, seat.claim);
    if (seat?.store === undefined || expected === undefined || !configsEqual(expected, next)) {
      return `epoch ${next.epoch} is not a replacement of ${gone}'s store alone`;
    }
    const claimed = reseatClaimProblem(base, next, auth);
    if (claimed !== undefined) return claimed;
  }
  const acceptors = voterIds(base).filter((p) => p !== gone);
  const { needed } = configQuorum(base, gone);
  const payload = acceptPayload(next, proof.ballot);
  const signed = new Set<string>();
  for (const s of proof.signatures) {
    if (!acceptors.includes(s.peerId) || signed.has(s.peerId)) continue;
    // The first bad signature ends the check: a forger costs one verification per message.
    if (!auth.verify(s.peerId, payload, s.signature)) return `bad signature of ${s.peerId}`;
    signed.add(s.peerId);
    if (signed.size >= needed) return undefined;
  }
  return `epoch ${next.epoch} has ${signed.size} of the ${needed} accept signatures of epoch ${base.epoch}'s voters it needs`;
}

/**
 * Why the re-seat `next` makes of `base` (goneAcceptor) is not proven to be the re-seated device's own request,
 * or undefined when it is (or `next` is no re-seat). Only the device itself asks for its seat on a new store: with
 * an even number of voters the smaller quorum is fewer than a majority (one of two), and a voter removed later,
 * still an acceptor of an old epoch for a device that was away, could otherwise give another's seat to a store of
 * its naming and cut that device off. Acceptors check it too, so no such value is ever decided.
 */
export function reseatClaimProblem(base: MembershipConfig, next: MembershipConfig, auth: ConfigAuth): string | undefined {
  const gone = goneAcceptor(base, next);
  if (gone === undefined) return undefined;
  const seat = next.voters.find((m) => m.peerId === gone);
  if (seat?.store === undefined) return `epoch ${next.epoch} gives ${gone}'s seat to no store`;
  return seatClaimProblem(gone, seatOf(base, gone)?.store ?? '', seat.store, seat.claim, base.epoch, auth);
}

/**
 * The longest run of proven configurations from `from` (exclusive) through `candidates` (in any order, any
 * epochs): each one proven by its predecessor. Stops at the first epoch missing or unproven.
 */
export function provenChain(from: MembershipConfig, candidates: readonly MembershipConfig[], auth: ConfigAuth): MembershipConfig[] {
  const byEpoch = new Map<number, MembershipConfig>();
  for (const c of candidates) if (c.epoch > from.epoch && !byEpoch.has(c.epoch)) byEpoch.set(c.epoch, c);
  const out: MembershipConfig[] = [];
  let current = from;
  for (;;) {
    const next = byEpoch.get(current.epoch + 1);
    if (next === undefined || proofProblem(current, next, auth) !== undefined) return out;
    out.push(next);
    current = next;
  }
}

/** The founding configuration signed by its founder (its only voter) at ballot 0. */
export function withGenesisProof(config: MembershipConfig, founder: string, auth: ConfigAuth): MembershipConfig {
  const ballot: Ballot = { round: 0, proposer: founder };
  return { ...config, proof: { ballot, signatures: [{ peerId: founder, signature: auth.sign(acceptPayload(config, ballot)) }] } };
}

/** Why `config` is not a founding configuration signed by its founder, or undefined when it is. */
export function genesisProblem(config: MembershipConfig, auth: ConfigAuth): string | undefined {
  const founder = config.voters[0]?.peerId;
  if (config.epoch !== 1 || config.voters.length !== 1 || founder === undefined) return 'not a founding configuration';
  const proof = config.proof;
  if (proof === undefined || proof.ballot.round !== 0 || proof.ballot.proposer !== founder) return 'no founder proof';
  const sig = proof.signatures.find((s) => s.peerId === founder);
  if (sig === undefined || !auth.verify(founder, acceptPayload(config, proof.ballot), sig.signature)) return 'bad founder signature';
  return undefined;
}

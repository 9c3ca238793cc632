// Configuration proofs (src/core/config-proof.ts) with real Ed25519 peer keys: a genuine proof verifies, and any
// change to what the configuration says, to the ballot or to a signature makes it fail; chains are verified step
// by step from the verifier's own configuration and stop at the first unproven step.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ConfigAuth, acceptPayload, proofProblem, provenChain, signSeatClaim } from '../../src/core/config-proof.js';
import { type MembershipConfig, withLearnerAdded, withMemberRemoved, withSeatReplaced } from '../../src/core/membership.js';
import { configAuth } from '../../src/node/config-auth.js';

interface Key {
  readonly id: string;
  readonly auth: ConfigAuth;
}

let keys: Key[] = [];
beforeAll(async () => {
  keys = await Promise.all(
    Array.from({ length: 4 }, async () => {
      const privateKey = await generateKeyPair('Ed25519');
      return { id: peerIdFromPrivateKey(privateKey).toString(), auth: configAuth(privateKey) };
    }),
  );
});

function base(): MembershipConfig {
  return { clusterId: 'c1', epoch: 7, voters: keys.slice(0, 3).map((k, i) => ({ peerId: k.id, addrs: [`/ip4/10.0.0.${i}/tcp/1`], store: `s${i}` })), learners: [], removed: [], previousVoters: [] };
}

/** `next` signed by the voters at `signers` (indexes into keys) at ballot round 5. */
function prove(next: MembershipConfig, signers: readonly number[]): MembershipConfig {
  const ballot = { round: 5, proposer: keys[0]!.id };
  return { ...next, proof: { ballot, signatures: signers.map((i) => ({ peerId: keys[i]!.id, signature: keys[i]!.auth.sign(acceptPayload(next, ballot)) })) } };
}

describe('proofProblem', () => {
  it('accepts a majority of the previous voters at one ballot, and nothing less', () => {
    const next = withLearnerAdded(base(), { peerId: keys[3]!.id, addrs: [], store: 's3' });
    const verifier = keys[3]!.auth;
    expect(proofProblem(base(), prove(next, [0, 1]), verifier)).toBeUndefined();
    expect(proofProblem(base(), prove(next, [2, 0, 1]), verifier)).toBeUndefined();
    expect(proofProblem(base(), prove(next, [1]), verifier)).toMatch(/1 of the 2/);
    expect(proofProblem(base(), prove(next, [1, 3]), verifier)).toMatch(/1 of the 2/); // 3 is no voter of epoch 7
    expect(proofProblem(base(), next, verifier)).toMatch(/no proof/);
    expect(proofProblem({ ...base(), epoch: 0 }, prove(next, [0, 1]), verifier)).toBeDefined();
  });

  it('refuses a proven configuration once anything it says, its ballot or a signature changes', () => {
    const next = prove(withLearnerAdded(base(), { peerId: keys[3]!.id, addrs: ['/ip4/10.0.0.3/tcp/1'], store: 's3' }), [0, 1]);
    const verifier = keys[3]!.auth;
    const proof = next.proof!;
    const mutations: Array<(c: MembershipConfig) => MembershipConfig> = [
      (c) => ({ ...c, clusterId: 'c2' }),
      (c) => ({ ...c, epoch: c.epoch + 1 }),
      (c) => ({ ...c, voters: c.voters.slice(1) }),
      (c) => ({ ...c, voters: [...c.voters].reverse() }),
      (c) => ({ ...c, voters: c.voters.map((m, i) => (i === 0 ? { ...m, store: 'other' } : m)) }),
      (c) => ({ ...c, voters: c.voters.map((m, i) => (i === 1 ? { ...m, addrs: ['/ip4/6.6.6.6/tcp/1'] } : m)) }),
      (c) => ({ ...c, learners: [] }),
      (c) => ({ ...c, removed: [keys[2]!.id] }),
      (c) => ({ ...c, previousVoters: [keys[0]!.id] }),
      (c) => ({ ...c, proof: { ...proof, ballot: { ...proof.ballot, round: proof.ballot.round + 1 } } }),
      (c) => ({ ...c, proof: { ...proof, ballot: { ...proof.ballot, proposer: keys[1]!.id } } }),
    ];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: mutations.length - 1 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (which, at, flip) => {
        expect(proofProblem(base(), mutations[which]!(next), verifier)).toBeDefined();
        // A flipped bit anywhere in a signature.
        const sig = Buffer.from(proof.signatures[0]!.signature, 'base64');
        const i = at % sig.length;
        sig[i] = (sig[i] ?? 0) ^ flip;
        const bad = { ...next, proof: { ...proof, signatures: [{ ...proof.signatures[0]!, signature: sig.toString('base64') }, proof.signatures[1]!] } };
        expect(proofProblem(base(), bad, verifier)).toBeDefined();
      }),
      { numRuns: 200 },
    );
    expect(proofProblem(base(), next, verifier)).toBeUndefined();
  });
});

describe('a re-seat in a two-voter cluster (one acceptor decides it)', () => {
  // Voters 0 and 1; 1's store is gone and the change gives its seat to store 's1b'. Only 0 can accept.
  const two = (): MembershipConfig => ({ ...base(), voters: base().voters.slice(0, 2) });

  it('is proven by the other voter alone only with the re-seated device\'s own claim on its new store', () => {
    const verifier = keys[3]!.auth;
    const claimed = withSeatReplaced(two(), keys[1]!.id, 's1b', [], signSeatClaim(keys[1]!.auth, keys[1]!.id, 's1', 's1b', 7));
    expect(proofProblem(two(), prove(claimed, [0]), verifier)).toBeUndefined();
    // Without a claim it is an ordinary change: a majority of both voters (1's key signs for its old seat).
    const bare = withSeatReplaced(two(), keys[1]!.id, 's1b', []);
    expect(proofProblem(two(), prove(bare, [0]), verifier)).toMatch(/1 of the 2/);
    expect(proofProblem(two(), prove(bare, [0, 1]), verifier)).toBeUndefined();
  });

  it('refuses a claim signed by anyone else, for another store, from another store, or against a newer epoch than the change\'s base', () => {
    const verifier = keys[3]!.auth;
    const forged = withSeatReplaced(two(), keys[1]!.id, 's1b', [], signSeatClaim(keys[0]!.auth, keys[1]!.id, 's1', 's1b', 7));
    expect(proofProblem(two(), prove(forged, [0]), verifier)).toMatch(/bad claim/);
    const otherStore = signSeatClaim(keys[1]!.auth, keys[1]!.id, 's1', 's1c', 7);
    expect(proofProblem(two(), prove(withSeatReplaced(two(), keys[1]!.id, 's1b', [], otherStore), [0]), verifier)).toMatch(/bad claim/);
    const newer = withSeatReplaced(two(), keys[1]!.id, 's1b', [], signSeatClaim(keys[1]!.auth, keys[1]!.id, 's1', 's1b', 8));
    expect(proofProblem(two(), prove(newer, [0]), verifier)).toMatch(/for epoch 8 on/);
    // A claim moving the seat from another store (an older one of the device's, before it was wiped again).
    const moved = withSeatReplaced(two(), keys[1]!.id, 's1b', [], signSeatClaim(keys[1]!.auth, keys[1]!.id, 's0', 's1b', 7));
    expect(proofProblem(two(), prove(moved, [0]), verifier)).toMatch(/from store s0, not s1/);
  });
});

describe('provenChain', () => {
  it('follows proven steps from the verifier\'s epoch, in any order given, and stops at the first gap or bad step', () => {
    const e8 = prove(withLearnerAdded(base(), { peerId: keys[3]!.id, addrs: [], store: 's3' }), [0, 1]);
    const ballot = { round: 9, proposer: keys[1]!.id };
    const sign = (c: MembershipConfig, signers: number[]): MembershipConfig => ({
      ...c,
      proof: { ballot, signatures: signers.map((i) => ({ peerId: keys[i]!.id, signature: keys[i]!.auth.sign(acceptPayload(c, ballot)) })) },
    });
    const e9 = sign(withMemberRemoved({ ...e8, proof: undefined }, keys[3]!.id), [1, 2]);
    const e10 = sign(withLearnerAdded({ ...e9, proof: undefined }, { peerId: 'L', addrs: [], store: 'sL' }), [2]); // one signature: short
    const verifier = keys[3]!.auth;
    expect(provenChain(base(), [e9, e8], verifier).map((c) => c.epoch)).toEqual([8, 9]);
    expect(provenChain(base(), [e8, e9, e10], verifier).map((c) => c.epoch)).toEqual([8, 9]);
    expect(provenChain(base(), [e9, e10], verifier)).toEqual([]); // epoch 8 missing
    expect(provenChain(e8, [base(), e8, e9], verifier).map((c) => c.epoch)).toEqual([9]);
  });
});

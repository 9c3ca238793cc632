// What a removed voter can still prove with its peer key to a device that is behind. In a two-voter cluster the
// other voter alone proves a re-seat (a voter's store is gone: n - majority(n) + 1 = 1 of the others,
// src/core/membership.ts configQuorum). A voter removed later keeps its key, and a learner that was away through
// the removal still counts it as a voter: the removed device signs "the other voter's seat goes to store X" for
// the learner's next epoch and the learner adopts it (one genuine signature of an acceptor of its epoch). From
// that forged epoch on, the real chain no longer verifies (the real next epoch was proven against the real one),
// so the learner is cut off from the cluster for good, and its quorum (the forged joint phase) needs the removed
// device: what its clients write goes to the device that was revoked. docs/security.md: "what the removed peer
// can make it do is what it could do before its removal" — before, it could not cut the learner off alone.
import { describe, expect, it } from 'vitest';
import { acceptPayload } from '../../src/core/config-proof.js';
import { type MembershipConfig, finalized, withMemberRemoved, withSeatReplaced } from '../../src/core/membership.js';
import { Net, seats } from '../core/seat-net.js';
import { newKey } from '../helpers/keys.js';

describe('a removed voter of a two-voter cluster', () => {
  // A proof using the re-seat's smaller quorum needs the re-seated device's own claim on its new store
  // (src/core/config-proof.ts seatClaimProblem): R cannot sign that for A.
  it('cannot cut a learner that was away off the cluster with a re-seat it signs alone', async () => {
    const [a, r, l] = await Promise.all([newKey(), newKey(), newKey()]);
    // 1. Voters A and R, learner L (away).
    const net = new Net();
    const start = { ...seats(1, [[a.id, 'sA'], [r.id, 'sR']]), learners: [{ peerId: l.id, addrs: [], store: 'sL' }] };
    net.add(a.id, 'sA', start, { auth: a.auth });
    net.add(r.id, 'sR', start, { auth: r.auth });
    const ld = net.add(l.id, 'sL', start, { auth: l.auth });
    net.down.add(l.id);
    // 2. The operator removes R (R takes part, as a 2-voter removal needs): epoch 2 joint, epoch 3 final.
    expect(net.propose(a.id, withMemberRemoved(start, r.id))).toMatchObject({ type: 'configCommitted' });
    net.run();
    expect(net.sync(a.id)).toMatchObject({ type: 'synced' });
    expect(net.propose(a.id, finalized(net.dev(a.id).core.config))).toMatchObject({ type: 'configCommitted' });
    net.run();
    expect(net.dev(a.id).core.config.removed).toContain(r.id);
    net.down.add(r.id);

    // 3. R (its key kept) forges epoch 2 for anyone still at epoch 1: A's seat given to a store of its naming,
    //    signed by R alone at a ballot of its choosing.
    const forged: MembershipConfig = withSeatReplaced(start, a.id, 'sA-gone', []);
    const ballot = { round: 99, proposer: r.id };
    const proven = { ...forged, proof: { ballot, signatures: [{ peerId: r.id, signature: r.auth.sign(acceptPayload(forged, ballot)) }] } };

    // 4. L comes back; R reaches it first with its forgery, then A tells L the real chain.
    net.down.delete(l.id);
    net.exec(ld, ld.core.step(r.id, { type: 'config', epoch: 2, config: proven }, ld, 0));
    net.run();
    const ad = net.dev(a.id);
    net.exec(ad, ad.core.peerEpoch(l.id, ld.core.epoch, 10_000));
    net.run();

    // 5. L follows the cluster: the real epoch 3 (R removed), not R's epoch 2.
    expect(ld.core.config.epoch).toBe(3);
    expect(ld.core.config.removed).toContain(r.id);
  });
});

// Replaying a genuine seat claim (src/core/config-proof.ts seatClaimProblem). A claim is published in every
// configuration that carries the seat it won. A voter removed later, for a device that was away, re-seats the
// other voter back onto the store of its OLD claim, signed by the removed voter alone (two-voter cluster, smaller
// quorum of configQuorum), to cut the device off for good: the attack of auth-removed-reseat-forgery.test.ts with
// a captured claim instead of a forged one. A claim names the store it moves the seat from, so once the seat moved
// on (the device wiped again) the old claim proves nothing.
import { describe, expect, it } from 'vitest';
import { proofProblem, signSeatClaim } from '../../src/core/config-proof.js';
import { type MembershipConfig, withMemberRemoved, withSeatReplaced, withVoterAdded } from '../../src/core/membership.js';
import { Net, seats, commit, voterChange } from '../core/seat-net.js';
import { newKey, signedBy } from '../helpers/keys.js';

describe('a removed voter replaying a genuine seat claim', () => {
  // Found by review: a claim bounded from below only (since <= base epoch) proved "D's seat goes back to sD2" from
  // any later base, after D's seat had moved on (wiped a second time). A claim names the store it moves the seat
  // from now (seatClaimProblem checks it against base's seat), so an old claim proves nothing.
  it('cannot cut a learner that was away off the cluster with an old claim of a device wiped twice', async () => {
    const [r, d, l] = await Promise.all([newKey(), newKey(), newKey()]);
    const net = new Net();
    // 1. Voters R and D, learner L.
    const start = { ...seats(1, [[r.id, 'sR'], [d.id, 'sD1']]), learners: [{ peerId: l.id, addrs: [], store: 'sL' }] };
    net.add(r.id, 'sR', start, { auth: r.auth });
    net.add(d.id, 'sD1', start, { auth: d.auth });
    const ld = net.add(l.id, 'sL', start, { auth: l.auth });

    // 2. D is wiped (store sD2) and asks for its seat: claim since 1; epochs 2 (joint) and 3 (final).
    net.wipe(d.id, 'sD2', { auth: d.auth });
    const oldClaim = signSeatClaim(d.auth, d.id, 'sD1', 'sD2', 1);
    voterChange(net, r.id, withSeatReplaced(net.dev(r.id).core.config, d.id, 'sD2', [], oldClaim));
    // 3. D is wiped again (store sD3): claim since 3; epochs 4 and 5. L follows all of it.
    net.wipe(d.id, 'sD3', { auth: d.auth });
    voterChange(net, r.id, withSeatReplaced(net.dev(r.id).core.config, d.id, 'sD3', [], signSeatClaim(d.auth, d.id, 'sD2', 'sD3', 3)));
    const epoch5 = net.dev(r.id).core.config;
    expect(epoch5.epoch).toBe(5);
    expect(ld.core.epoch).toBe(5);
    expect(net.dev(d.id).core.seated()).toBe(true);

    // 4. L goes away; the operator removes R (R takes part): epochs 6 (joint) and 7 (final).
    net.down.add(l.id);
    voterChange(net, d.id, withMemberRemoved(epoch5, r.id));
    expect(net.dev(d.id).core.config.epoch).toBe(7);
    net.down.add(r.id);

    // 5. R forges epoch 6 from epoch 5: D's seat back to sD2 (a store wiped long ago), with D's genuine claim of
    //    epoch 2 copied out of any configuration from epoch 2 on, signed by R alone.
    const forged = signedBy(withSeatReplaced(epoch5, d.id, 'sD2', [], oldClaim), r);
    const verdict = proofProblem(epoch5, forged, l.auth);

    // 6. L comes back; R reaches it first, then D tells it the real chain.
    net.down.delete(l.id);
    net.exec(ld, ld.core.step(r.id, { type: 'config', epoch: 6, config: forged }, ld, 0));
    net.run();
    const dd = net.dev(d.id);
    net.exec(dd, dd.core.peerEpoch(l.id, ld.core.epoch, 10_000));
    net.run();

    expect(verdict).toBeDefined();
    expect(ld.core.config.epoch).toBe(7);
    expect(ld.core.config.removed).toContain(r.id);
  });

  // The same through a learner: claims are dropped when a learner is promoted (withVoterAdded keeps the learner's
  // store, not its claim); the store a claim moves the seat from closes this one too.
  it('cannot do it either with the claim of a learner wiped twice and promoted since', async () => {
    const [r, d, l] = await Promise.all([newKey(), newKey(), newKey()]);
    const net = new Net();
    // 1. Voter R; learners D and L.
    const start: MembershipConfig = {
      ...seats(1, [[r.id, 'sR']]),
      learners: [
        { peerId: d.id, addrs: [], store: 'sD1' },
        { peerId: l.id, addrs: [], store: 'sL' },
      ],
    };
    net.add(r.id, 'sR', start, { auth: r.auth });
    net.add(d.id, 'sD1', start, { auth: d.auth });
    const ld = net.add(l.id, 'sL', start, { auth: l.auth });
    // 2. D (a learner) wiped twice: re-seated on sD2 (claim since 1, epoch 2), then on sD3 (claim since 2, epoch 3).
    net.wipe(d.id, 'sD2', { auth: d.auth });
    const oldClaim = signSeatClaim(d.auth, d.id, 'sD1', 'sD2', 1);
    commit(net, r.id, withSeatReplaced(net.dev(r.id).core.config, d.id, 'sD2', [], oldClaim));
    net.wipe(d.id, 'sD3', { auth: d.auth });
    commit(net, r.id, withSeatReplaced(net.dev(r.id).core.config, d.id, 'sD3', [], signSeatClaim(d.auth, d.id, 'sD2', 'sD3', 2)));
    // 3. D promoted to voter on sD3: epochs 4 (joint) and 5. L follows.
    voterChange(net, r.id, withVoterAdded(net.dev(r.id).core.config, { peerId: d.id, addrs: [], store: 'sD3' }));
    const epoch5 = net.dev(r.id).core.config;
    expect(epoch5.epoch).toBe(5);
    expect(ld.core.epoch).toBe(5);
    // 4. L away; R removed: epochs 6, 7.
    net.down.add(l.id);
    voterChange(net, d.id, withMemberRemoved(epoch5, r.id));
    net.down.add(r.id);
    // 5. R's epoch 6: D's seat back to sD2 on the learner-era claim, signed by R alone.
    const forged = signedBy(withSeatReplaced(epoch5, d.id, 'sD2', [], oldClaim), r);
    expect(proofProblem(epoch5, forged, l.auth)).toBeDefined();
  });
});

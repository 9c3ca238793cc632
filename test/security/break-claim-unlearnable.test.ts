// A re-seat value with a claim that proves nothing, decided by the smaller quorum anyway. The proposer and the
// acceptors of src/core/config-change.ts count the smaller quorum of configQuorum whenever a seat carries a claim
// (goneAcceptor looks at its presence, not its signature or epoch); only verifiers check it (proofProblem,
// seatClaimProblem). The honest member path checks the claim before proposing (src/node/membership.ts
// onJoinRequest/replaceSeat), so only a voter that does not follow it gets such a value proposed: the value is
// then chosen (Paxos: every later proposer in that slot must propose it again) and no device ever adopts it.
// docs/security.md: voters are trusted not to be Byzantine; this is hardening, not a break of the stated model.
import { describe, expect, it } from 'vitest';
import { signSeatClaim } from '../../src/core/config-proof.js';
import { withMemberRemoved, withSeatReplaced } from '../../src/core/membership.js';
import { Net, seats } from '../core/seat-net.js';
import { newKey } from '../helpers/keys.js';

describe('a re-seat value whose claim proves nothing', () => {
  // Found by review: ConfigChange.onAccept accepted it, so two honest voters of four decided it with one voter not
  // following the protocol, for a seat whose store was not even gone, and no device could adopt it: the slot was
  // stuck for good. Acceptors check the claim now (config-proof.ts reseatClaimProblem), as proofs do.
  it('is not accepted by honest voters, so membership can still change afterwards', async () => {
    const [a, b, c, d] = await Promise.all([newKey(), newKey(), newKey(), newKey()]);
    const net = new Net();
    const start = seats(1, [[a.id, 'sA'], [b.id, 'sB'], [c.id, 'sC'], [d.id, 'sD']]);
    for (const [k, s] of [[a, 'sA'], [b, 'sB'], [c, 'sC'], [d, 'sD']] as const) net.add(k.id, s, start, { auth: k.auth });
    // A proposes "D's seat goes to sX" with a claim A signed itself (D is fine and was never wiped).
    const bogus = withSeatReplaced(start, d.id, 'sX', [], signSeatClaim(a.auth, d.id, 'sD', 'sX', 1));
    net.propose(a.id, bogus);
    net.run();
    // No device adopts it (its proof is refused) ...
    for (const id of [a.id, b.id, c.id, d.id]) expect(net.dev(id).core.epoch).toBe(1);
    // ... and yet it must not hold the slot: B, honest, can still remove A.
    expect(net.propose(b.id, withMemberRemoved(start, a.id))).toMatchObject({ type: 'configCommitted' });
  });
});

// What a removed voter can do with a seat claim inside the window docs/security.md grants ("from the one the claim
// was signed against up to the one the re-seat was decided in"), and how it gets a wider one.
import { describe, expect, it } from 'vitest';
import { proofProblem, signSeatClaim } from '../../src/core/config-proof.js';
import { NO_CONFIG, withMemberRemoved, withSeatReplaced } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { SEAT_CLAIM_NEEDED } from '../../src/node/membership.js';
import { Net, seats, voterChange } from '../core/seat-net.js';
import { testMembership, testRuntime } from '../helpers/runtime.js';
import { newKey, signedBy } from '../helpers/keys.js';

describe('a removed voter replaying a genuine claim inside its window', () => {
  it('makes an away learner adopt a variant of the re-seat (other addresses) for a while, but not cut it off', async () => {
    const [r, d, l] = await Promise.all([newKey(), newKey(), newKey()]);
    const net = new Net();
    const start = { ...seats(1, [[r.id, 'sR'], [d.id, 'sD1']]), learners: [{ peerId: l.id, addrs: [], store: 'sL' }] };
    net.add(r.id, 'sR', start, { auth: r.auth });
    net.add(d.id, 'sD1', start, { auth: d.auth });
    const ld = net.add(l.id, 'sL', start, { auth: l.auth });
    net.down.add(l.id);
    // D wiped, re-seated on its claim (since 1): epochs 2, 3. Then R removed: epochs 4, 5.
    net.wipe(d.id, 'sD2', { auth: d.auth });
    const claim = signSeatClaim(d.auth, d.id, 'sD1', 'sD2', 1);
    voterChange(net, r.id, withSeatReplaced(start, d.id, 'sD2', ['/ip4/10.0.0.2/tcp/4001'], claim));
    voterChange(net, d.id, withMemberRemoved(net.dev(d.id).core.config, r.id));
    expect(net.dev(d.id).core.config.epoch).toBe(5);
    net.down.add(r.id);

    // R's epoch 2: the same re-seat and claim, D's addresses of R's choosing; the cluster never chose it.
    const forged = signedBy(withSeatReplaced(start, d.id, 'sD2', ['/ip4/6.6.6.6/tcp/1'], claim), r);
    expect(proofProblem(start, forged, l.auth)).toBeUndefined();
    net.down.delete(l.id);
    net.exec(ld, ld.core.step(r.id, { type: 'config', epoch: 2, config: forged }, ld, 0));
    net.run();
    expect(ld.core.config.voters.find((m) => m.peerId === d.id)?.addrs).toEqual(['/ip4/6.6.6.6/tcp/1']);
    // The real epoch 3 is signed by the voters of epoch 2, the same peers in R's variant: L goes on from it.
    const dd = net.dev(d.id);
    net.exec(dd, dd.core.peerEpoch(l.id, ld.core.epoch, 10_000));
    net.run();
    expect(ld.core.config.epoch).toBe(5);
    expect(ld.core.config.removed).toContain(r.id);
  });
});

describe('a wiped device asking a removed voter to join (mDNS, or a --join address that names it)', () => {
  // Residual (docs/security.md, "A removed peer"): a wiped device has no configuration (it went with its store), so
  // it signs its claim against the configuration the member it asks shows it. A removed voter asked first shows an
  // old genuine one and gets a claim that proves, in that old epoch, the move of the device's seat to its new store:
  // alone in a two-voter epoch, it can re-seat the device there for a device that was away since (and cut that one
  // off from the cluster's real chain). What it cannot get is a claim from a store the device never left.
  it('hands that voter a claim for the configuration it shows', async () => {
    const [r, d, l] = await Promise.all([newKey(), newKey(), newKey()]);
    const epoch1 = { ...seats(1, [[r.id, 'sR'], [d.id, 'sD1']]), learners: [{ peerId: l.id, addrs: [], store: 'sL' }] };
    const { runtime } = await testRuntime(d.id, { config: NO_CONFIG, storeId: 'sD2', auth: d.auth });
    const requests: Array<Extract<Message, { type: 'joinRequest' }>> = [];
    const membership = testMembership(runtime, {
      storeId: 'sD2',
      auth: d.auth,
      send: (to, msg) => {
        if (to !== r.id || msg.type !== 'joinRequest') return true;
        requests.push(msg);
        // R answers the first request "sign a claim" with the old epoch 1, and refuses the second.
        const first = requests.length === 1;
        queueMicrotask(() =>
          membership.handle(r.id, { type: 'joinReply', opId: msg.opId, epoch: 1, ok: false, error: first ? SEAT_CLAIM_NEEDED : 'no', config: first ? epoch1 : undefined }),
        );
        return true;
      },
    });
    await expect(membership.requestJoin(r.id, [], 1_000)).rejects.toThrow();
    membership.stop();
    runtime.stop();
    // The first request carries no claim; the second one a claim from sD1 against epoch 1.
    expect(requests.map((m) => m.claim === undefined ? undefined : [m.claim.from, m.claim.since])).toEqual([undefined, ['sD1', 1]]);
    const forged = signedBy(withSeatReplaced(epoch1, d.id, 'sD2', [], requests[1]!.claim), r);
    expect(proofProblem(epoch1, forged, l.auth)).toBeUndefined();
    // A store the device never left: no claim from it.
    const elsewhere = { ...epoch1, voters: [epoch1.voters[0]!, { peerId: d.id, addrs: [], store: 'sD0' }] };
    expect(proofProblem(elsewhere, signedBy(withSeatReplaced(elsewhere, d.id, 'sD2', [], requests[1]!.claim), r), l.auth)).toMatch(/from store sD1, not sD0/);
  });
});

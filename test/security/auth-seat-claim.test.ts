// A member re-seats a device that came back with a new store only on the device's own signed claim moving its
// seat from the store the seat names to the new one (src/node/membership.ts onJoinRequest; src/core/config-proof.ts
// seatClaimProblem): a request without a claim, or with one signed against an older epoch or from another store,
// gets the member's configuration and is asked for a claim; a claim signed by another key is refused; a good one
// gives the seat to the new store carrying the claim, so that any device can check the change's proof.
import { describe, expect, it } from 'vitest';
import { signSeatClaim } from '../../src/core/config-proof.js';
import type { MembershipConfig, SeatClaim } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { SEAT_CLAIM_NEEDED } from '../../src/node/membership.js';
import { testMembership, testRuntime } from '../helpers/runtime.js';
import { type Key, newKey } from '../helpers/keys.js';

type Reply = Extract<Message, { type: 'joinReply' }>;

/** Member A of a two-voter cluster {A, D} at epoch 8; D asks with store sD2 and `claim`. */
async function ask(a: Key, d: Key, claim: SeatClaim | undefined): Promise<{ replies: Reply[]; config: MembershipConfig }> {
  const epoch8: MembershipConfig = {
    clusterId: 'c',
    epoch: 8,
    voters: [
      { peerId: a.id, addrs: [], store: 'store-A' },
      { peerId: d.id, addrs: [], store: 'sD1' },
    ],
    learners: [],
    removed: [],
    previousVoters: [],
  };
  const { runtime } = await testRuntime(a.id, { config: epoch8, storeId: 'store-A', auth: a.auth });
  runtime.attachTransport({ send: () => true, isConnected: () => true });
  const replies: Reply[] = [];
  const membership = testMembership(runtime, {
    storeId: 'store-A',
    auth: a.auth,
    changeAttemptsMax: 1,
    send: (to, msg) => {
      if (to === d.id && msg.type === 'joinReply') replies.push(msg);
      return true;
    },
  });
  membership.handle(d.id, { type: 'joinRequest', opId: 3, epoch: 0, addrs: [], store: 'sD2', ...(claim === undefined ? {} : { claim }) });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const config = runtime.config;
  membership.stop();
  runtime.stop();
  return { replies, config };
}

describe('a device back with a new store in a two-voter cluster', () => {
  it('gets its seat on its own claim, signed against the member\'s epoch and the seat\'s store', async () => {
    const [a, d] = await Promise.all([newKey(), newKey()]);
    const { config } = await ask(a, d, signSeatClaim(d.auth, d.id, 'sD1', 'sD2', 8));
    expect(config.epoch).toBeGreaterThanOrEqual(9);
    expect(config.voters.find((m) => m.peerId === d.id)).toMatchObject({ store: 'sD2', claim: { since: 8 } });
  });

  it('is asked for a claim, with the configuration, when it has none, one older than the member\'s epoch, or one from another store', async () => {
    const [a, d] = await Promise.all([newKey(), newKey()]);
    for (const claim of [undefined, signSeatClaim(d.auth, d.id, 'sD1', 'sD2', 7), signSeatClaim(d.auth, d.id, 'sD0', 'sD2', 8)]) {
      const { replies, config } = await ask(a, d, claim);
      expect(replies).toHaveLength(1);
      expect(replies[0]).toMatchObject({ ok: false, error: SEAT_CLAIM_NEEDED, epoch: 8 });
      expect(replies[0]?.config?.voters.find((m) => m.peerId === d.id)?.store).toBe('sD1');
      expect(config.epoch).toBe(8);
    }
  });

  it('is refused on a claim another key signed (a removed voter naming a store for the device)', async () => {
    const [a, d, r] = await Promise.all([newKey(), newKey(), newKey()]);
    const { replies, config } = await ask(a, d, signSeatClaim(r.auth, d.id, 'sD1', 'sD2', 8));
    expect(replies).toEqual([expect.objectContaining({ ok: false, error: expect.stringMatching(/not signed by the device/) })]);
    expect(config.epoch).toBe(8);
  });
});

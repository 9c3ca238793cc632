// A member re-seats a device that came back with a new store only on the device's own signed claim moving its
// seat from the store the seat names to the new one (src/node/membership.ts onJoinRequest; src/core/config-proof.ts
// seatClaimProblem): a request without a claim, or with one signed against an older epoch or from another store,
// gets the member's configuration and is asked for a claim; a claim signed by another key is refused; a good one
// gives the seat to the new store carrying the claim, so that any device can check the change's proof.
import { describe, expect, it } from 'vitest';
import { signSeatClaim } from '../../src/core/config-proof.js';
import { SEAT_CLAIM_NEEDED } from '../../src/node/membership.js';
import { newKey } from '../helpers/keys.js';
import { askToReseat } from '../helpers/reseat.js';

describe('a device back with a new store in a two-voter cluster', () => {
  it('gets its seat on its own claim, signed against the member\'s epoch and the seat\'s store', async () => {
    const [a, d] = await Promise.all([newKey(), newKey()]);
    const { config } = await askToReseat(a, d, signSeatClaim(d.auth, d.id, 'sD1', 'sD2', 8), 300);
    expect(config.epoch).toBeGreaterThanOrEqual(9);
    expect(config.voters.find((m) => m.peerId === d.id)).toMatchObject({ store: 'sD2', claim: { since: 8 } });
  });

  it('is asked for a claim, with the configuration, when it has none, one older than the member\'s epoch, or one from another store', async () => {
    const [a, d] = await Promise.all([newKey(), newKey()]);
    for (const claim of [undefined, signSeatClaim(d.auth, d.id, 'sD1', 'sD2', 7), signSeatClaim(d.auth, d.id, 'sD0', 'sD2', 8)]) {
      const { replies, config } = await askToReseat(a, d, claim, 300);
      expect(replies).toHaveLength(1);
      expect(replies[0]).toMatchObject({ ok: false, error: SEAT_CLAIM_NEEDED, epoch: 8 });
      expect(replies[0]?.config?.voters.find((m) => m.peerId === d.id)?.store).toBe('sD1');
      expect(config.epoch).toBe(8);
    }
  });

  it('is refused on a claim another key signed (a removed voter naming a store for the device)', async () => {
    const [a, d, r] = await Promise.all([newKey(), newKey(), newKey()]);
    const { replies, config } = await askToReseat(a, d, signSeatClaim(r.auth, d.id, 'sD1', 'sD2', 8), 300);
    expect(replies).toEqual([expect.objectContaining({ ok: false, error: expect.stringMatching(/not signed by the device/) })]);
    expect(config.epoch).toBe(8);
  });
});

// A device of a version from before seat claims, back with a new store in a two-voter cluster: since 74bb54d its
// re-seat is an ordinary change (a majority of both voters, src/core/membership.ts goneAcceptor) and its own old
// store is gone, so it is never re-seated, and the other voter alone can change nothing else either (removing it
// needs both voters too) until the device runs this version. What the member tells it is misleading.
import { describe, expect, it } from 'vitest';
import { newKey } from '../helpers/keys.js';
import { askToReseat } from '../helpers/reseat.js';

describe('an old-version device (no claim) back with a new store in a two-voter cluster', () => {
  it('is never re-seated: the change needs its own gone store (by design since 74bb54d)', async () => {
    const [a, d] = await Promise.all([newKey(), newKey()]);
    const { replies, config } = await askToReseat(a, d, undefined, 2_000);
    expect(replies).toEqual([expect.objectContaining({ ok: false })]);
    expect(config.epoch).toBe(8);
  });

  // Found by review: the member used to answer "another membership change won epoch 9; retry from epoch 8" (the
  // unseated store's refusal counted as a conflict) and the device retried for ever. A member asks a device back
  // with a new store for its claim before proposing anything; the answer says to upgrade a device that cannot.
  it('is told to upgrade, not that another change won', async () => {
    const [a, d] = await Promise.all([newKey(), newKey()]);
    const { replies } = await askToReseat(a, d, undefined, 2_000);
    expect(replies[0]?.error).toMatch(/upgrade|claim/i);
  });
});

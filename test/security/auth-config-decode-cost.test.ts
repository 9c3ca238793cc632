// The work a configuration from the wire costs before anyone looks at who sent it. Any key holder may send
// configurations (a chain of 16 besides the one announced), and every one is checked while decoding, before the
// sender's membership is known. configProblem() scanned the previous-voter and voter lists once per replaced
// seat: with 1,024 of each (the decoder's limit) one configuration took ~1M string comparisons, and a 4 MiB
// frame of 14 such announcements (17 configurations each) blocked the event loop for 2.8 s on the test machine
// (0.6 s for the same bytes of plain voter lists). The check must be linear in the configuration's size.
import { describe, expect, it } from 'vitest';
import { type MembershipConfig, configProblem } from '../../src/core/membership.js';

function timeMs(config: MembershipConfig, runs: number): number {
  const start = performance.now();
  for (let i = 0; i < runs; i++) if (configProblem(config) !== undefined) throw new Error('the configuration is valid');
  return performance.now() - start;
}

function worstCase(n: number): MembershipConfig {
  const ids = Array.from({ length: n }, (_, i) => `peer-${i.toString(36).padStart(4, '0')}`);
  return {
    clusterId: 'c',
    epoch: 7,
    voters: ids.map((peerId) => ({ peerId, addrs: [] })),
    learners: [],
    removed: [],
    previousVoters: [...ids].reverse(),
    replaced: [...ids].reverse(),
  };
}

describe('a configuration with many replaced seats', () => {
  it('is checked in time linear in its size', () => {
    // 1. 8,192 voters, all of them previous voters and replaced seats (each list in the opposite order, so that a
    //    scan goes half-way on average). The decoder stops at 1,024 per list; more makes a quadratic check plain.
    const worst = worstCase(8192);
    // 2. The same voters with no joint phase: what checking the voter list alone costs.
    const plain: MembershipConfig = { ...worst, previousVoters: [], replaced: [] };
    timeMs(worst, 1);
    timeMs(plain, 3);
    // 3. Three lists instead of one may cost a few times as much; a scan per replaced seat cost ~1,000 times.
    const ratio = timeMs(worst, 3) / timeMs(plain, 3);
    console.log(`configProblem: replaced seats and previous voters cost ${ratio.toFixed(1)}x the voter list alone`);
    expect(ratio).toBeLessThan(20);
  });
});

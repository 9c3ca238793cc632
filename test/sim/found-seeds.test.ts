// Seeds of the sweeps that once failed against src/ code, each replayed on its own so the fix cannot regress
// unseen (the CI sweep covers only seeds 1..250). Each entry says what went wrong before its fix.
import { describe, expect, it } from 'vitest';
import { KNOWN_BUG_NAMES } from './cluster.js';
import { runSimulation } from './sim.js';

const FOUND: ReadonlyArray<{ seed: number; what: string }> = [
  {
    seed: 12,
    what: 'a re-seat proposal (smaller Flexible-Paxos quorum, its gone acceptor left out) recovered another value ' +
      'in phase 1 (a removal) and decided it with the smaller quorum: its proof fell short, every device refused ' +
      'it, and epoch 5 stayed decided-but-unlearnable for good (a wiped voter never re-seated)',
  },
  { seed: 500061, what: 'the same, 3 devices' },
  { seed: 500137, what: 'the same, 5 devices' },
  {
    seed: 208110,
    what: 'a finalize chosen by two acceptors, one then wiped, was learned by nobody; the joint sync waited for ever',
  },
  { seed: 306793, what: 'the same, with clock steps' },
  {
    seed: 516684,
    what: 'a voter removed while it was down restarted at its old epoch; members no longer answered a non-member, ' +
      'so it never learned of its removal and served a purged delete\'s value from its stale copy (level=one read)',
  },
  {
    seed: 583,
    what: 'a joint-phase takeover waited for ever while the phase\'s proposer was alive (it had restarted and lost ' +
      'its coordination, or two previous voters each took the other for the proposer): joint for good',
  },
  { seed: 936, what: 'the same' },
  {
    seed: 801012,
    what: 'simulator: a join round under way when the membership looked settled got a wiped device admitted on ' +
      'the store it had lost (an operator\'s approval of its old request, recovered in Paxos phase 1); its join ' +
      'loop had ended with the daemons\' loops, so it never asked again for its seat (r=all reads failed)',
  },
  { seed: 804855, what: 'the same' },
];

describe('seeds that once failed', () => {
  for (const { seed, what } of FOUND) {
    it(`seed ${seed}: ${what}`, async () => {
      const result = await runSimulation(seed, { overrides: { workarounds: KNOWN_BUG_NAMES } });
      expect(result.message).toBeUndefined();
      expect(result.ok).toBe(true);
    });
  }
});

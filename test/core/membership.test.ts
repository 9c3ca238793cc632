// Membership configurations as data (src/core/membership.ts): the transforms that produce each next epoch,
// joint phases, and the property that consecutive configurations' quorums always intersect.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type MembershipConfig,
  configProblem,
  finalized,
  foundingConfig,
  isJoint,
  jointAddition,
  quorumIds,
  replicaIds,
  voterIds,
  withJointAborted,
  withLearnerAdded,
  withMemberRemoved,
  withVoterAdded,
} from '../../src/core/membership.js';
import { majority } from '../../src/core/quorum.js';

const m = (peerId: string) => ({ peerId, addrs: [] });
const founded = foundingConfig('c', m('A'));

describe('membership transforms', () => {
  it('adds a voter through a joint phase, then finalizes', () => {
    const joint = withVoterAdded(founded, m('B'));
    expect(joint).toMatchObject({ epoch: 2, previousVoters: ['A'] });
    expect(voterIds(joint)).toEqual(['A', 'B']);
    expect(isJoint(joint)).toBe(true);
    expect(jointAddition(joint)).toBe('B');
    const done = finalized(joint);
    expect(done).toMatchObject({ epoch: 3, previousVoters: [] });
    expect(configProblem(done)).toBeUndefined();
    expect(() => withVoterAdded(joint, m('C'))).toThrow(); // one change at a time
  });

  it('adds learners without a joint phase and promotes them later', () => {
    const two = finalized(withVoterAdded(founded, m('B')));
    const learner = withLearnerAdded(two, m('L'));
    expect(learner).toMatchObject({ epoch: 4, previousVoters: [], learners: [m('L')] });
    expect(replicaIds(learner)).toEqual(['A', 'B', 'L']);
    expect(quorumIds(learner)).toEqual(['A', 'B']);
    const promoted = withVoterAdded(learner, m('L'));
    expect(promoted.learners).toEqual([]);
    expect(voterIds(promoted)).toEqual(['A', 'B', 'L']);
  });

  it('removes members (voters through a joint phase) and revokes them', () => {
    const three = finalized(withVoterAdded(finalized(withVoterAdded(founded, m('B'))), m('C')));
    const removing = withMemberRemoved(three, 'B');
    expect(removing).toMatchObject({ previousVoters: ['A', 'B', 'C'], removed: ['B'] });
    expect(quorumIds(removing)).toEqual(['A', 'C']); // a removed previous voter no longer answers
    expect(configProblem(removing)).toBeUndefined();
    expect(() => withMemberRemoved(foundingConfig('c', m('A')), 'A')).toThrow(); // never the last voter
    // A removed device is never re-admitted: its store may hold values whose deletes were purged meanwhile.
    expect(() => withVoterAdded(finalized(removing), m('B'))).toThrow();
  });

  it('abandons a joint addition back to the previous voters', () => {
    const joint = withVoterAdded(founded, m('B'));
    const aborted = withJointAborted(joint, 'B');
    expect(aborted).toMatchObject({ epoch: 3, previousVoters: [], removed: ['B'] });
    expect(voterIds(aborted)).toEqual(['A']);
    expect(() => withJointAborted(finalized(joint), 'B')).toThrow();
    expect(() => withJointAborted(joint, 'A')).toThrow();
    expect(jointAddition(withMemberRemoved(finalized(joint), 'B'))).toBeUndefined();
  });

  it('rejects malformed configurations', () => {
    expect(configProblem({ ...founded, removed: ['A'] })).toMatch(/removed/);
    expect(configProblem({ ...founded, voters: [] })).toMatch(/voter/);
    expect(configProblem({ ...founded, previousVoters: [''] })).toMatch(/previous/);
  });

  it('every quorum of a configuration meets every quorum of the next, through any sequence of changes', () => {
    // A quorum of a joint configuration needs a majority of both voter sets; check by brute force.
    const quorums = (c: MembershipConfig): string[][] => {
      const ids = quorumIds(c);
      const out: string[][] = [];
      for (let mask = 1; mask < 1 << ids.length; mask++) {
        const s = ids.filter((_, i) => (mask & (1 << i)) !== 0);
        const v = s.filter((p) => voterIds(c).includes(p)).length;
        const p = s.filter((x) => c.previousVoters.includes(x)).length;
        if (v >= majority(c.voters.length) && (c.previousVoters.length === 0 || p >= majority(c.previousVoters.length))) out.push(s);
      }
      return out;
    };
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 12 }), (steps) => {
        let c: MembershipConfig = founded;
        let next = 0;
        for (const step of steps) {
          let n: MembershipConfig;
          if (isJoint(c)) n = step % 5 === 0 && jointAddition(c) !== undefined ? withJointAborted(c, jointAddition(c)!) : finalized(c);
          else if (step % 3 === 0 && c.voters.length > 1) n = withMemberRemoved(c, voterIds(c)[step % c.voters.length]!);
          else n = withVoterAdded(c, m(`N${next++}`));
          expect(configProblem(n)).toBeUndefined();
          for (const q of quorums(c)) for (const r of quorums(n)) expect(q.some((x) => r.includes(x)), `${q} vs ${r}`).toBe(true);
          c = n;
        }
      }),
      { numRuns: 200 },
    );
  });
});

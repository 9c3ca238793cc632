// The decisions of coordinating a membership change (src/core/membership-change.ts): retry and backoff, the
// background work a configuration calls for, and when a failed finalize still did its job.
import { describe, expect, it } from 'vitest';
import { TAKEOVER_PATIENCE_LOOKS, backgroundWork, changeBackoffMs, movedOnPastJoint, proposerStillFinishing, retryChange } from '../../src/core/membership-change.js';
import { finalized, foundingConfig, withLearnerAdded, withMemberRemoved, withSeatReplaced, withVoterAdded } from '../../src/core/membership.js';

const m = (peerId: string) => ({ peerId, addrs: [], store: `${peerId}.s1` });
const three = finalized(withVoterAdded(finalized(withVoterAdded(foundingConfig('c', m('A')), m('B'))), m('C')));

describe('retrying a change', () => {
  it('retries only a lost epoch, and only up to the attempt limit', () => {
    expect(retryChange('membership_conflict', 1, 3)).toBe(true);
    expect(retryChange('membership_conflict', 2, 3)).toBe(true);
    expect(retryChange('membership_conflict', 3, 3)).toBe(false);
    expect(retryChange('quorum_unavailable', 1, 3)).toBe(false);
    expect(retryChange(undefined, 1, 3)).toBe(false);
  });

  it('backs off [20, 100 + 100 × attempt) ms, growing with the attempt', () => {
    expect(changeBackoffMs(1, 0)).toBe(20);
    expect(changeBackoffMs(1, 0.999999)).toBe(199);
    expect(changeBackoffMs(3, 0.999999)).toBe(399);
    for (let i = 0; i < 100; i++) {
      const ms = changeBackoffMs(2, i / 100);
      expect(Number.isInteger(ms) && ms >= 20 && ms < 300).toBe(true);
    }
  });
});

describe('background work of a configuration', () => {
  it('a joint phase: the first live previous voter by ID takes over soon, the others later, new voters never', () => {
    const adding = withVoterAdded(three, m('D'));
    expect(backgroundWork(adding, 'A', 1_000, 5)).toEqual({ kind: 'takeover', delayMs: 250 });
    expect(backgroundWork(adding, 'B', 1_000, 5)).toEqual({ kind: 'takeover', delayMs: 1_000 });
    expect(backgroundWork(adding, 'D', 1_000, 5)).toEqual({ kind: 'none' });
    expect(backgroundWork(adding, 'X', 1_000, 5)).toEqual({ kind: 'none' });
  });

  it('a previous voter whose seat goes to a new store does not take over; the next one is first', () => {
    const reseating = withSeatReplaced(three, 'A', 'A.s2', []);
    expect(backgroundWork(reseating, 'A', 1_000, 5)).toEqual({ kind: 'none' });
    expect(backgroundWork(reseating, 'B', 1_000, 5)).toEqual({ kind: 'takeover', delayMs: 250 });
  });

  it('a removed voter leaves the takeover to the others', () => {
    const removing = withMemberRemoved(three, 'A');
    expect(backgroundWork(removing, 'A', 1_000, 5).kind).toBe('none');
    expect(backgroundWork(removing, 'B', 1_000, 5)).toEqual({ kind: 'takeover', delayMs: 250 });
  });

  it('a stable configuration: the first voter promotes a learner while a voter seat is free', () => {
    const learner = withLearnerAdded(three, m('L'));
    expect(backgroundWork(learner, 'A', 1_000, 5)).toEqual({ kind: 'promote' });
    expect(backgroundWork(learner, 'B', 1_000, 5)).toEqual({ kind: 'none' });
    expect(backgroundWork(learner, 'A', 1_000, 3)).toEqual({ kind: 'none' }); // no free seat
    expect(backgroundWork(three, 'A', 1_000, 5)).toEqual({ kind: 'none' }); // no learner
    expect(backgroundWork(learner, 'L', 1_000, 5)).toEqual({ kind: 'none' }); // learners coordinate nothing
  });

  it('a takeover waits while another, live device is the proposer', () => {
    const alive = (p: string) => p === 'B';
    expect(proposerStillFinishing('B', 'A', alive)).toBe(true);
    expect(proposerStillFinishing('C', 'A', alive)).toBe(false);
    expect(proposerStillFinishing('A', 'A', () => true)).toBe(false);
    expect(proposerStillFinishing(undefined, 'A', () => true)).toBe(false);
    // A live proposer is waited out a few looks only (it may have lost its coordination in a restart).
    expect(proposerStillFinishing('B', 'A', alive, TAKEOVER_PATIENCE_LOOKS - 1)).toBe(true);
    expect(proposerStillFinishing('B', 'A', alive, TAKEOVER_PATIENCE_LOOKS)).toBe(false);
  });
});

describe('a failed finalize or sync', () => {
  it('did its job once the epoch moved past the joint one on a lost epoch; not with the phase still joint', () => {
    expect(movedOnPastJoint('membership_conflict', 4, 5)).toBe(true);
    expect(movedOnPastJoint('membership_conflict', 4, 4)).toBe(false);
    expect(movedOnPastJoint('quorum_unavailable', 4, 5)).toBe(false);
  });
});

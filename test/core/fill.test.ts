// The admission-transfer and catch-up decisions (src/core/fill.ts): when a new device's data comes by a push,
// when it falls back to anti-entropy rounds, and when its own rounds wait for a data stream.
import { describe, expect, it } from 'vitest';
import { InboundStreamWatch, admissionTransferOver, admittedWithData, freshVoter, roundsDecision } from '../../src/core/fill.js';
import { finalized, foundingConfig, withLearnerAdded, withSeatReplaced, withVoterAdded } from '../../src/core/membership.js';

const m = (peerId: string) => ({ peerId, addrs: [], store: `${peerId}.s1` });
const one = foundingConfig('c', m('A'));
const addingB = withVoterAdded(one, m('B'));
const two = finalized(addingB);
const reseatingB = withSeatReplaced(two, 'B', 'B.s2', []);
const withLearner = withLearnerAdded(two, m('L'));

describe('fresh voters', () => {
  it('is a voter a joint phase adds, or whose seat it gives to a new store; not a previous voter nor after the phase', () => {
    expect(freshVoter(addingB, 'B')).toBe(true);
    expect(freshVoter(addingB, 'A')).toBe(false);
    expect(freshVoter(two, 'B')).toBe(false);
    expect(freshVoter(reseatingB, 'B')).toBe(true);
    expect(freshVoter(reseatingB, 'A')).toBe(false);
    expect(freshVoter(withLearner, 'L')).toBe(false);
  });
});

describe('admission transfer', () => {
  it('starts when a configuration first seats this device beside another replica', () => {
    expect(admittedWithData(addingB, 'B', true, false)).toBe(true);
    expect(admittedWithData(addingB, 'B', true, true)).toBe(false); // seated before
    expect(admittedWithData(one, 'A', true, false)).toBe(false); // the founder: no data elsewhere
    expect(admittedWithData(addingB, 'B', false, false)).toBe(false);
  });

  it('a fresh voter waits for its push; once the phase is over it fills by rounds', () => {
    expect(admissionTransferOver(addingB, 'B', true, false)).toBe(false);
    expect(admissionTransferOver(addingB, 'B', true, true)).toBe(false);
    expect(admissionTransferOver(two, 'B', true, false)).toBe(true);
  });

  it('a learner waits for its push while running; a restart ends the wait', () => {
    expect(admissionTransferOver(withLearner, 'L', true, false)).toBe(false);
    expect(admissionTransferOver(withLearner, 'L', true, true)).toBe(true);
  });

  it('an unseated device is never done', () => {
    expect(admissionTransferOver(two, 'B', false, true)).toBe(false);
  });
});

describe('rounds held for a data stream', () => {
  const base = { joinPending: true, inboundActive: false, config: withLearner, self: 'L', nowMs: 1_000, joinPendingSinceMs: 0, inboundChangedAtMs: -Infinity, transferIdleMs: 5_000 };

  it('run when nothing is pending, even with a stream delivering', () => {
    expect(roundsDecision({ ...base, joinPending: false })).toBe('run');
    expect(roundsDecision({ ...base, joinPending: false, inboundActive: true })).toBe('run');
  });

  it('hold while a stream delivers, for a fresh voter, and within the idle limit', () => {
    expect(roundsDecision({ ...base, inboundActive: true, nowMs: 99_000 })).toBe('hold');
    expect(roundsDecision({ ...base, config: addingB, self: 'B', nowMs: 99_000 })).toBe('hold');
    expect(roundsDecision(base)).toBe('hold');
    expect(roundsDecision({ ...base, nowMs: 9_000, inboundChangedAtMs: 5_000 })).toBe('hold');
  });

  it('stalled once the transfer made no progress for the idle limit', () => {
    expect(roundsDecision({ ...base, nowMs: 5_000 })).toBe('stalled');
    expect(roundsDecision({ ...base, nowMs: 10_001, inboundChangedAtMs: 5_000 })).toBe('stalled');
  });

  it('the inbound watch is active for quietMs after each change of the received count', () => {
    const watch = new InboundStreamWatch(100);
    expect(watch.observe(0, 0)).toBe(false);
    expect(watch.changedAt).toBe(-Infinity);
    expect(watch.observe(3, 10)).toBe(true);
    expect(watch.observe(3, 109)).toBe(true);
    expect(watch.observe(3, 110)).toBe(false);
    expect(watch.observe(5, 200)).toBe(true);
    expect(watch.changedAt).toBe(200);
  });
});

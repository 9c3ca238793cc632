// The auto-remove policy (src/core/auto-remove.ts): down-since tracking, the single proposer, one attempt per period.
import { describe, expect, it } from 'vitest';
import { type AutoRemoveInput, autoRemoveStep } from '../../src/core/auto-remove.js';

const AFTER = 60_000;

function step(partial: Partial<AutoRemoveInput> & { down?: readonly string[] }): ReturnType<typeof autoRemoveStep> {
  const down = new Set(partial.down ?? []);
  return autoRemoveStep({
    self: 'a',
    voters: ['a', 'b', 'c'],
    alive: (peer) => !down.has(peer),
    downSince: new Map(),
    nowMs: 0,
    afterMs: AFTER,
    ...partial,
  });
}

describe('autoRemoveStep', () => {
  it('notes when a voter goes down and forgets it once it is alive again', () => {
    const first = step({ down: ['c'], nowMs: 1_000 });
    expect([...first.downSince]).toEqual([['c', 1_000]]);
    expect(first.remove).toEqual([]);
    const later = step({ down: ['c'], nowMs: 5_000, downSince: first.downSince });
    expect([...later.downSince]).toEqual([['c', 1_000]]); // the first time it was seen down stays
    const back = step({ nowMs: 6_000, downSince: later.downSince });
    expect(back.downSince.size).toBe(0);
  });

  it('does not modify the map it is given', () => {
    const downSince = new Map([['c', 1_000]]);
    step({ nowMs: 2_000, downSince });
    expect([...downSince]).toEqual([['c', 1_000]]);
  });

  it('proposes removing a voter down for afterMs, once per period', () => {
    const downSince = new Map([['c', 1_000]]);
    expect(step({ down: ['c'], nowMs: 1_000 + AFTER - 1, downSince }).remove).toEqual([]);
    const due = step({ down: ['c'], nowMs: 1_000 + AFTER, downSince });
    expect(due.remove).toEqual([{ peer: 'c', downMs: AFTER }]);
    expect(due.downSince.get('c')).toBe(1_000 + AFTER); // its time restarts: the next attempt a period later
    expect(step({ down: ['c'], nowMs: 1_000 + AFTER + 10, downSince: due.downSince }).remove).toEqual([]);
  });

  it('lets only the first alive voter by peer ID propose', () => {
    const downSince = new Map([['c', 0]]);
    expect(step({ self: 'b', down: ['c'], nowMs: AFTER, downSince }).remove).toEqual([]);
    expect(step({ self: 'a', down: ['c'], nowMs: AFTER, downSince }).remove).toEqual([{ peer: 'c', downMs: AFTER }]);
    // With a down, b is the first alive voter.
    const both = new Map([['a', 0], ['c', 0]]);
    expect(step({ self: 'b', down: ['a', 'c'], nowMs: AFTER, downSince: both }).remove).toEqual([
      { peer: 'a', downMs: AFTER },
      { peer: 'c', downMs: AFTER },
    ]);
  });

  it('proposes nothing when disabled or when this device is no voter, but still tracks', () => {
    const downSince = new Map([['c', 0]]);
    const disabled = step({ down: ['c'], nowMs: AFTER, downSince, afterMs: 0 });
    expect(disabled.remove).toEqual([]);
    expect([...disabled.downSince]).toEqual([['c', 0]]);
    expect(step({ self: 'l', down: ['c'], nowMs: AFTER, downSince }).remove).toEqual([]);
  });

  it('forgets peers that are no longer voters', () => {
    const downSince = new Map([['gone', 0], ['c', 0]]);
    const next = step({ voters: ['a', 'b', 'c'], down: ['c'], nowMs: 10, downSince });
    expect([...next.downSince.keys()]).toEqual(['c']);
  });

  it('never tracks itself', () => {
    expect(step({ down: ['a'], nowMs: 10 }).downSince.has('a')).toBe(false);
  });
});

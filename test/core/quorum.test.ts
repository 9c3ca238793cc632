// Quorum math (src/core/quorum.ts): majorities, parsing consistency levels, required acknowledgements.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/core/assert.js';
import { InvalidConsistencyError } from '../../src/core/errors.js';
import { consistencyName, majority, parseConsistency, requiredAcks } from '../../src/core/quorum.js';

describe('majority', () => {
  it('is floor(N/2)+1, and any two majorities of N intersect', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), (n) => {
        expect(majority(n)).toBe(Math.floor(n / 2) + 1);
        expect(2 * majority(n)).toBeGreaterThan(n);
      }),
    );
    expect([1, 2, 3, 4, 5, 6, 7].map(majority)).toEqual([1, 2, 2, 3, 3, 4, 4]);
  });

  it('asserts a configuration has a voter', () => {
    expect(() => majority(0)).toThrow(AssertionError);
    expect(() => majority(-1)).toThrow(AssertionError);
    expect(() => majority(2.5)).toThrow(AssertionError);
  });
});

describe('parseConsistency', () => {
  it('defaults to quorum and accepts the named levels and positive integers', () => {
    expect(parseConsistency(undefined, 'w')).toBe('quorum');
    expect(parseConsistency('', 'r')).toBe('quorum');
    expect(parseConsistency('one', 'w')).toBe('one');
    expect(parseConsistency('quorum', 'w')).toBe('quorum');
    expect(parseConsistency('all', 'r')).toBe('all');
    expect(parseConsistency('3', 'w')).toBe(3);
    expect(parseConsistency('9999', 'w')).toBe(9999);
  });

  it.each(['0', '-1', '01', '1.5', ' 1', '1 ', 'two', 'ONE', 'Quorum', '10000', '1e3', '0x2', 'NaN'])(
    'rejects %j with InvalidConsistencyError naming the parameter',
    (text) => {
      const attempt = (): unknown => parseConsistency(text, 'r');
      expect(attempt).toThrow(InvalidConsistencyError);
      expect(attempt).toThrow(/^r=/);
      try {
        attempt();
      } catch (error) {
        expect((error as InvalidConsistencyError).code).toBe('invalid_consistency');
      }
    },
  );

  it('round-trips through consistencyName', () => {
    for (const level of ['one', 'quorum', 'all', 1, 2, 17] as const) {
      expect(parseConsistency(consistencyName(level), 'w')).toBe(level);
    }
  });
});

describe('requiredAcks', () => {
  it('maps levels to acknowledgement counts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), (n) => {
        expect(requiredAcks('one', n)).toBe(1);
        expect(requiredAcks('quorum', n)).toBe(majority(n));
        expect(requiredAcks('all', n)).toBe(n);
        expect(requiredAcks(n, n)).toBe(n);
        expect(requiredAcks(1, n)).toBe(1);
      }),
    );
  });

  it('rejects w > N, 0, negative and fractional levels', () => {
    expect(() => requiredAcks(4, 3)).toThrow(InvalidConsistencyError);
    expect(() => requiredAcks(4, 3)).toThrow('w=4 is impossible: the cluster has 3 voter(s)');
    expect(() => requiredAcks(2, 3, 'r')).not.toThrow();
    expect(() => requiredAcks(5, 3, 'r')).toThrow(/^r=5/);
    for (const bad of [0, -1, -100, 1.5, Number.NaN]) {
      expect(() => requiredAcks(bad, 3)).toThrow(InvalidConsistencyError);
    }
  });

  it('asserts the voter count is valid', () => {
    expect(() => requiredAcks('one', 0)).toThrow(AssertionError);
  });
});

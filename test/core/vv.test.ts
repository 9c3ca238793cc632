// Laws of version vectors and dots (src/core/vv.ts): the partial order, join as least upper bound, coverage.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/core/assert.js';
import {
  type VersionVector,
  EMPTY_VV,
  covers,
  dotEqual,
  dotKey,
  vvCompare,
  vvConcurrent,
  vvDescends,
  vvEntries,
  vvEqual,
  vvFromEntries,
  vvGet,
  vvJoin,
  vvWithDot,
} from '../../src/core/vv.js';

const actorArb = fc.constantFrom('a', 'b', 'c', 'd');
const vvArb: fc.Arbitrary<VersionVector> = fc.dictionary(actorArb, fc.integer({ min: 1, max: 4 }), { maxKeys: 4 });
const dotArb = fc.record({ actor: actorArb, counter: fc.integer({ min: 1, max: 5 }) });

describe('vvDescends is a partial order', () => {
  it('is reflexive', () => {
    fc.assert(fc.property(vvArb, (a) => vvDescends(a, a)));
  });

  it('is antisymmetric up to vvEqual', () => {
    fc.assert(fc.property(vvArb, vvArb, (a, b) => !(vvDescends(a, b) && vvDescends(b, a)) || vvEqual(a, b)));
  });

  it('is transitive', () => {
    fc.assert(
      fc.property(vvArb, vvArb, vvArb, (a, b, c) => {
        const ab = vvJoin(a, b);
        const abc = vvJoin(ab, c);
        // abc >= ab >= a, so abc >= a; and any chain found at random must compose.
        expect(vvDescends(abc, ab) && vvDescends(ab, a) && vvDescends(abc, a)).toBe(true);
        if (vvDescends(a, b) && vvDescends(b, c)) expect(vvDescends(a, c)).toBe(true);
      }),
    );
  });

  it('treats a missing actor as 0 and the empty vector as bottom', () => {
    fc.assert(fc.property(vvArb, (a) => vvDescends(a, EMPTY_VV) && vvGet(a, 'zz') === 0));
    expect(vvGet({}, 'toString')).toBe(0);
    expect(vvEqual({}, EMPTY_VV)).toBe(true);
  });
});

describe('vvCompare', () => {
  it('is consistent with vvDescends', () => {
    fc.assert(
      fc.property(vvArb, vvArb, (a, b) => {
        const expected =
          vvDescends(a, b) && vvDescends(b, a) ? 'equal' : vvDescends(a, b) ? 'after' : vvDescends(b, a) ? 'before' : 'concurrent';
        expect(vvCompare(a, b)).toBe(expected);
      }),
    );
  });

  it('is antisymmetric: before <-> after, equal and concurrent are symmetric', () => {
    const flip = { before: 'after', after: 'before', equal: 'equal', concurrent: 'concurrent' } as const;
    fc.assert(fc.property(vvArb, vvArb, (a, b) => vvCompare(b, a) === flip[vvCompare(a, b)]));
    fc.assert(fc.property(vvArb, vvArb, (a, b) => vvConcurrent(a, b) === (vvCompare(a, b) === 'concurrent')));
  });

  it('classifies known examples', () => {
    expect(vvCompare({ a: 1 }, { a: 2 })).toBe('before');
    expect(vvCompare({ a: 2, b: 1 }, { a: 2 })).toBe('after');
    expect(vvCompare({ a: 1 }, { b: 1 })).toBe('concurrent');
    expect(vvCompare({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe('equal');
  });
});

describe('vvJoin is the least upper bound', () => {
  it('is commutative, associative and idempotent', () => {
    fc.assert(fc.property(vvArb, vvArb, (a, b) => vvEqual(vvJoin(a, b), vvJoin(b, a))));
    fc.assert(fc.property(vvArb, vvArb, vvArb, (a, b, c) => vvEqual(vvJoin(vvJoin(a, b), c), vvJoin(a, vvJoin(b, c)))));
    fc.assert(fc.property(vvArb, (a) => vvEqual(vvJoin(a, a), a)));
  });

  it('descends both arguments, and every common upper bound descends it', () => {
    fc.assert(
      fc.property(vvArb, vvArb, vvArb, (a, b, c) => {
        const j = vvJoin(a, b);
        expect(vvDescends(j, a) && vvDescends(j, b)).toBe(true);
        if (vvDescends(c, a) && vvDescends(c, b)) expect(vvDescends(c, j)).toBe(true);
      }),
    );
  });

  it('is the identity with the empty vector and does not mutate its arguments', () => {
    fc.assert(
      fc.property(vvArb, vvArb, (a, b) => {
        const before = JSON.stringify([a, b]);
        expect(vvEqual(vvJoin(a, EMPTY_VV), a)).toBe(true);
        vvJoin(a, b);
        expect(JSON.stringify([a, b])).toBe(before);
      }),
    );
  });

  it('takes the pointwise maximum', () => {
    fc.assert(
      fc.property(vvArb, vvArb, actorArb, (a, b, x) => vvGet(vvJoin(a, b), x) === Math.max(vvGet(a, x), vvGet(b, x))),
    );
  });
});

describe('dots', () => {
  it('covers(vv, dot) iff the actor entry reaches the counter', () => {
    fc.assert(fc.property(vvArb, dotArb, (vv, dot) => covers(vv, dot) === vvGet(vv, dot.actor) >= dot.counter));
  });

  it('vvWithDot covers the dot, descends the input and never lowers an entry', () => {
    fc.assert(
      fc.property(vvArb, dotArb, (vv, dot) => {
        const next = vvWithDot(vv, dot);
        expect(covers(next, dot)).toBe(true);
        expect(vvDescends(next, vv)).toBe(true);
        expect(vvGet(next, dot.actor)).toBe(Math.max(vvGet(vv, dot.actor), dot.counter));
      }),
    );
  });

  it('rejects non-positive dot counters', () => {
    expect(() => vvWithDot({}, { actor: 'a', counter: 0 })).toThrow(AssertionError);
    expect(() => vvWithDot({}, { actor: 'a', counter: 1.5 })).toThrow(AssertionError);
  });

  it('dotEqual and dotKey agree', () => {
    fc.assert(fc.property(dotArb, dotArb, (x, y) => dotEqual(x, y) === (dotKey(x) === dotKey(y))));
  });
});

describe('canonical entries', () => {
  it('vvEntries is sorted and round-trips through vvFromEntries', () => {
    fc.assert(
      fc.property(vvArb, (vv) => {
        const entries = vvEntries(vv);
        const actors = entries.map(([actor]) => actor);
        expect(actors).toEqual([...actors].sort());
        expect(vvEqual(vvFromEntries(entries), vv)).toBe(true);
      }),
    );
  });

  it('vvFromEntries keeps the maximum of repeated actors and rejects bad counters', () => {
    expect(vvFromEntries([['a', 2], ['a', 5], ['a', 3]])).toEqual({ a: 5 });
    expect(() => vvFromEntries([['a', 0]])).toThrow(AssertionError);
    expect(() => vvFromEntries([['a', -1]])).toThrow(AssertionError);
  });
});

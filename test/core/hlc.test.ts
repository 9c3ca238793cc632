// Hybrid logical clock laws (src/core/hlc.ts): a total order, ticks strictly increase, receive dominates both.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Hlc, HLC_ZERO, hlcCompare, hlcObserve, hlcTick } from '../../src/core/hlc.js';

const hlcArb: fc.Arbitrary<Hlc> = fc.record({ wallMs: fc.integer({ min: 0, max: 50 }), logical: fc.integer({ min: 0, max: 5 }) });
const physicalArb = fc.integer({ min: 0, max: 60 });

describe('hlcCompare', () => {
  it('is a total order consistent with (wallMs, logical)', () => {
    fc.assert(
      fc.property(hlcArb, hlcArb, hlcArb, (a, b, c) => {
        expect(hlcCompare(a, a)).toBe(0);
        expect(hlcCompare(a, b) + hlcCompare(b, a)).toBe(0); // antisymmetric
        if (hlcCompare(a, b) <= 0 && hlcCompare(b, c) <= 0) expect(hlcCompare(a, c)).toBeLessThanOrEqual(0);
        const lexical = a.wallMs !== b.wallMs ? Math.sign(a.wallMs - b.wallMs) : Math.sign(a.logical - b.logical);
        expect(hlcCompare(a, b)).toBe(lexical);
      }),
    );
  });
});

describe('hlcTick', () => {
  it('strictly increases even when the physical clock jumps backwards', () => {
    fc.assert(
      fc.property(fc.array(physicalArb, { maxLength: 40 }), (physical) => {
        let last = HLC_ZERO;
        for (const p of physical) {
          const next = hlcTick(last, p);
          expect(hlcCompare(next, last)).toBe(1);
          expect(next.wallMs).toBeGreaterThanOrEqual(p);
          last = next;
        }
      }),
    );
  });

  it('follows the physical clock when it moves forward', () => {
    expect(hlcTick({ wallMs: 10, logical: 3 }, 11)).toEqual({ wallMs: 11, logical: 0 });
    expect(hlcTick({ wallMs: 10, logical: 3 }, 10)).toEqual({ wallMs: 10, logical: 4 });
    expect(hlcTick({ wallMs: 10, logical: 3 }, 2)).toEqual({ wallMs: 10, logical: 4 });
  });
});

describe('hlcObserve', () => {
  it('is at least (in fact after) both the local and the remote clock, and at least the physical time', () => {
    fc.assert(
      fc.property(hlcArb, hlcArb, physicalArb, (last, remote, p) => {
        const next = hlcObserve(last, remote, p);
        expect(hlcCompare(next, last)).toBeGreaterThanOrEqual(0);
        expect(hlcCompare(next, remote)).toBeGreaterThanOrEqual(0);
        expect(hlcCompare(next, last)).toBe(1);
        expect(hlcCompare(next, remote)).toBe(1);
        expect(next.wallMs).toBeGreaterThanOrEqual(p);
      }),
    );
  });

  it('keeps a sequence of mixed ticks and receives monotonic', () => {
    const eventArb = fc.oneof(
      fc.record({ kind: fc.constant('tick' as const), p: physicalArb }),
      fc.record({ kind: fc.constant('observe' as const), p: physicalArb, remote: hlcArb }),
    );
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 40 }), (events) => {
        let last = HLC_ZERO;
        for (const e of events) {
          const next = e.kind === 'tick' ? hlcTick(last, e.p) : hlcObserve(last, e.remote, e.p);
          expect(hlcCompare(next, last)).toBe(1);
          last = next;
        }
      }),
    );
  });
});

// Hybrid logical clock laws (src/core/hlc.ts): a total order, ticks strictly increase, receive dominates both.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Hlc, HLC_LOGICAL_MAX, HLC_ZERO, hlcAdopt, hlcCompare, hlcTick } from '../../src/core/hlc.js';

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

  it('stays within safe integers and after `last` whatever `last` holds (it may come from a remote record)', () => {
    const huge = fc.oneof(fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(Number.MAX_SAFE_INTEGER - 1), fc.constant(HLC_LOGICAL_MAX), fc.nat());
    fc.assert(
      fc.property(huge, huge, fc.nat(), (wallMs, logical, p) => {
        const last = { wallMs, logical };
        const next = hlcTick(last, p);
        expect(Number.isSafeInteger(next.wallMs) && Number.isSafeInteger(next.logical)).toBe(true);
        expect(next.logical).toBeLessThanOrEqual(HLC_LOGICAL_MAX);
        const saturated = wallMs === Number.MAX_SAFE_INTEGER && logical >= HLC_LOGICAL_MAX;
        expect(hlcCompare(next, last)).toBe(saturated ? (logical === HLC_LOGICAL_MAX ? 0 : -1) : 1);
      }),
    );
    expect(hlcTick({ wallMs: 10, logical: HLC_LOGICAL_MAX }, 2)).toEqual({ wallMs: 11, logical: 0 });
    expect(hlcTick({ wallMs: 10, logical: Number.MAX_SAFE_INTEGER }, 2)).toEqual({ wallMs: 11, logical: 0 });
  });

  it('follows the physical clock when it moves forward', () => {
    expect(hlcTick({ wallMs: 10, logical: 3 }, 11)).toEqual({ wallMs: 11, logical: 0 });
    expect(hlcTick({ wallMs: 10, logical: 3 }, 10)).toEqual({ wallMs: 10, logical: 4 });
    expect(hlcTick({ wallMs: 10, logical: 3 }, 2)).toEqual({ wallMs: 10, logical: 4 });
  });
});

describe('hlcAdopt', () => {
  it('takes the later clock unless the remote one is more than the bound ahead of the physical time', () => {
    fc.assert(
      fc.property(hlcArb, hlcArb, physicalArb, fc.integer({ min: 0, max: 20 }), (last, remote, p, bound) => {
        const next = hlcAdopt(last, remote, p, bound);
        const tooFar = remote.wallMs > p + bound;
        expect(next).toEqual(tooFar || hlcCompare(remote, last) <= 0 ? last : remote);
      }),
    );
    expect(hlcAdopt(HLC_ZERO, { wallMs: Number.MAX_SAFE_INTEGER, logical: 0 }, 1_700_000_000_000, 60_000)).toBe(HLC_ZERO);
    expect(hlcAdopt(HLC_ZERO, { wallMs: 5, logical: 0 }, -Infinity, 60_000)).toBe(HLC_ZERO); // time unknown
  });
});

describe('a clock driven by ticks and remote timestamps', () => {
  // (The unbounded receive rule, which adopted any remote timestamp and could step past safe integers, is gone:
  // remote timestamps only ever go through hlcAdopt.)
  it('never goes backwards, ticks strictly after, and stays within safe integers', () => {
    const eventArb = fc.oneof(
      fc.record({ kind: fc.constant('tick' as const), p: physicalArb }),
      fc.record({ kind: fc.constant('adopt' as const), p: physicalArb, remote: fc.oneof(hlcArb, fc.constant({ wallMs: 10, logical: Number.MAX_SAFE_INTEGER })) }),
    );
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 40 }), (events) => {
        let last = HLC_ZERO;
        for (const e of events) {
          const next = e.kind === 'tick' ? hlcTick(last, e.p) : hlcAdopt(last, e.remote, e.p, 60_000);
          if (e.kind === 'tick') expect(hlcCompare(next, last)).toBe(1);
          else expect(hlcCompare(next, last)).toBeGreaterThanOrEqual(0);
          expect(Number.isSafeInteger(next.wallMs) && Number.isSafeInteger(next.logical)).toBe(true);
          last = next;
        }
      }),
    );
  });
});

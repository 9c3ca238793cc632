// Properties of versioned records (src/core/record.ts) over realistic histories from gen.ts: the merge is a
// join, newer writes supersede exactly what their client saw, concurrent writes (and deletes) are never lost.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/core/assert.js';
import { type Hlc, hlcCompare, hlcTick } from '../../src/core/hlc.js';
import {
  EMPTY_RECORD,
  type Sibling,
  type VersionedRecord,
  type ClientContext,
  applyWrite,
  compareSiblings,
  contextAfterWrite,
  isDeleted,
  liveSiblings,
  lwwWinner,
  mergeRecords,
  recordContains,
  recordWellFormed,
  recordsEqual,
  withoutUnissued,
  DOT_COUNTER_MAX,
} from '../../src/core/record.js';
import { type Dot, covers, dotKey, vvDescends, vvFromEntries, vvJoin } from '../../src/core/vv.js';
import { ACTORS, type History, dotsOf, historyArb, histOf, pick, siblingsIdentical, truthProblem } from './gen.js';

const idx = fc.nat();

function sameRecord(a: VersionedRecord, b: VersionedRecord): boolean {
  return recordsEqual(a, b) && siblingsIdentical(a, b);
}

function freshDot(h: History, actor: number): Dot {
  return { actor: ACTORS[actor] as string, counter: h.nextCounter[actor] as number };
}

function freshHlc(h: History, actor: number): Hlc {
  return hlcTick(h.hlcs[actor] as Hlc, 0);
}

const bytes = (n: number): Uint8Array => Uint8Array.of(n);

describe('generated histories', () => {
  it('only contain well-formed records that agree with the true causal history', () => {
    fc.assert(
      fc.property(historyArb, (h) => {
        for (const r of h.states) {
          expect(recordWellFormed(r)).toBe(true);
          expect(truthProblem(r, h.writes)).toBeUndefined();
        }
      }),
    );
  });
});

describe('mergeRecords is a join', () => {
  it('is commutative (dots, values and clocks)', () => {
    fc.assert(
      fc.property(historyArb, idx, idx, (h, i, j) => {
        const a = pick(h.states, i);
        const b = pick(h.states, j);
        expect(sameRecord(mergeRecords(a, b), mergeRecords(b, a))).toBe(true);
      }),
    );
  });

  it('is associative', () => {
    fc.assert(
      fc.property(historyArb, idx, idx, idx, (h, i, j, k) => {
        const [a, b, c] = [pick(h.states, i), pick(h.states, j), pick(h.states, k)];
        expect(sameRecord(mergeRecords(mergeRecords(a, b), c), mergeRecords(a, mergeRecords(b, c)))).toBe(true);
      }),
    );
  });

  it('is idempotent and absorbing', () => {
    fc.assert(
      fc.property(historyArb, idx, idx, (h, i, j) => {
        const a = pick(h.states, i);
        const b = pick(h.states, j);
        expect(sameRecord(mergeRecords(a, a), a)).toBe(true);
        const ab = mergeRecords(a, b);
        expect(sameRecord(mergeRecords(ab, a), ab)).toBe(true);
        expect(sameRecord(mergeRecords(ab, b), ab)).toBe(true);
        expect(recordContains(ab, a) && recordContains(ab, b)).toBe(true);
      }),
    );
  });

  it('has the empty record as identity', () => {
    fc.assert(
      fc.property(historyArb, idx, (h, i) => {
        const a = pick(h.states, i);
        expect(sameRecord(mergeRecords(a, EMPTY_RECORD), a)).toBe(true);
        expect(sameRecord(mergeRecords(EMPTY_RECORD, a), a)).toBe(true);
      }),
    );
  });

  it('keeps the truth: merges of any subset are well formed, drop nothing unseen, keep no stale sibling', () => {
    fc.assert(
      fc.property(historyArb, fc.array(idx, { minLength: 1, maxLength: 6 }), (h, picks) => {
        const merged = picks.map((i) => pick(h.states, i)).reduce(mergeRecords);
        expect(recordWellFormed(merged)).toBe(true);
        expect(truthProblem(merged, h.writes)).toBeUndefined();
        for (const i of picks) expect(vvDescends(merged.context, pick(h.states, i).context)).toBe(true);
      }),
    );
  });
});

describe('causality', () => {
  it('a write whose context covers the old dots supersedes them, whatever it is merged with', () => {
    fc.assert(
      fc.property(historyArb, idx, fc.nat({ max: ACTORS.length - 1 }), fc.option(fc.nat({ max: 9 }), { nil: null }), idx, (h, i, actor, v, j) => {
        const read = pick(h.states, i);
        const dot = freshDot(h, actor);
        const next = applyWrite(h.replicas[actor] as VersionedRecord, read.context, dot, v === null ? null : bytes(v), freshHlc(h, actor));
        expect(recordWellFormed(next)).toBe(true);
        // No sibling the client had seen survives, in the write itself or merged with what the client read.
        for (const s of read.siblings) {
          expect(next.siblings.some((t) => dotKey(t.dot) === dotKey(s.dot))).toBe(false);
        }
        expect(sameRecord(mergeRecords(next, read), next)).toBe(true);
        expect(sameRecord(mergeRecords(read, next), next)).toBe(true);
        // The new dot survives a merge with any older state.
        const other = pick(h.states, j);
        expect(dotsOf(mergeRecords(other, next))).toContain(dotKey(dot));
        // And the history extended with this write still agrees with the truth.
        const writes = new Map(h.writes).set(dotKey(dot), { dot, value: v === null ? null : bytes(v), hist: histOf(read, h.writes) });
        expect(truthProblem(mergeRecords(other, next), writes)).toBeUndefined();
      }),
    );
  });

  it('concurrent writes are never silently dropped: both survive merges as siblings', () => {
    fc.assert(
      fc.property(historyArb, idx, idx, idx, fc.boolean(), fc.boolean(), (h, i, j, k, del1, del2) => {
        // Actors a and b write at the same time, each from some earlier read: neither saw the other.
        const d1 = freshDot(h, 0);
        const d2 = freshDot(h, 1);
        const w1 = applyWrite(h.replicas[0] as VersionedRecord, pick(h.states, i).context, d1, del1 ? null : bytes(1), freshHlc(h, 0));
        const w2 = applyWrite(h.replicas[1] as VersionedRecord, pick(h.states, j).context, d2, del2 ? null : bytes(2), freshHlc(h, 1));
        const other = pick(h.states, k);
        for (const merged of [mergeRecords(w1, w2), mergeRecords(w2, w1), mergeRecords(mergeRecords(other, w1), w2), mergeRecords(w2, mergeRecords(w1, other))]) {
          expect(dotsOf(merged)).toContain(dotKey(d1));
          expect(dotsOf(merged)).toContain(dotKey(d2));
          expect(recordWellFormed(merged)).toBe(true);
        }
      }),
    );
  });

  it('applyWrite replaces exactly the siblings its context covers and keeps the others', () => {
    fc.assert(
      fc.property(historyArb, fc.nat({ max: ACTORS.length - 1 }), fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }), (h, actor, mask) => {
        const local = h.replicas[actor] as VersionedRecord;
        // A context naming some of the siblings' dots exactly (as a client that saw only those would send).
        const seen = local.siblings.filter((_, n) => mask[n % mask.length] === true);
        const context = vvFromEntries(seen.map((s) => [s.dot.actor, s.dot.counter] as const));
        const dot = freshDot(h, actor);
        const next = applyWrite(local, context, dot, bytes(7), freshHlc(h, actor));
        const expected = local.siblings.filter((s) => !covers(context, s.dot)).map((s) => dotKey(s.dot));
        expect(dotsOf(next).sort()).toEqual([...expected, dotKey(dot)].sort());
        expect(vvDescends(next.context, vvJoin(local.context, context))).toBe(true);
        expect(covers(next.context, dot)).toBe(true);
      }),
    );
  });

  it('never trusts local coverage of the write dot and beyond: the writer never issued it (a forged record)', () => {
    // A forged record covering writer `a` up to the largest counter, holding a forged version of `a` too.
    const forged: VersionedRecord = {
      context: { a: DOT_COUNTER_MAX, b: 3 },
      siblings: [
        { dot: { actor: 'b', counter: 3 }, value: bytes(3), hlc: { wallMs: 1, logical: 0 } },
        { dot: { actor: 'a', counter: 9 }, value: bytes(9), hlc: { wallMs: 1, logical: 0 } },
      ],
    };
    const r = applyWrite(forged, { a: DOT_COUNTER_MAX }, { actor: 'a', counter: 2 }, bytes(2), { wallMs: 2, logical: 0 });
    expect(r.context).toEqual({ a: 2, b: 3 });
    expect(r.siblings.map((s) => dotKey(s.dot))).toEqual(['a:2', 'b:3']); // b:3 stays: the client context does not cover it
    expect(recordWellFormed(r)).toBe(true);
    // The token handed back covers the new dot, not the forged coverage past it.
    expect(contextAfterWrite(forged, { vv: { a: DOT_COUNTER_MAX }, unseen: [] }, { actor: 'a', counter: 2 }).vv).toEqual({ a: 2 });
    // A dot counter that is not a positive integer is still a programmer error.
    expect(() => applyWrite(EMPTY_RECORD, {}, { actor: 'a', counter: 0 }, bytes(2), { wallMs: 2, logical: 0 })).toThrow(AssertionError);
  });

  it('withoutUnissued cuts a writer at its highest issued counter and leaves everything else', () => {
    const r: VersionedRecord = {
      context: { a: 50, b: 7 },
      siblings: [
        { dot: { actor: 'a', counter: 4 }, value: bytes(4), hlc: { wallMs: 1, logical: 0 } },
        { dot: { actor: 'a', counter: 40 }, value: bytes(40), hlc: { wallMs: 1, logical: 0 } },
        { dot: { actor: 'b', counter: 7 }, value: bytes(7), hlc: { wallMs: 1, logical: 0 } },
      ],
    };
    expect(withoutUnissued(r, 'a', 50)).toBe(r);
    expect(withoutUnissued(r, 'c', 0)).toBe(r);
    const cut = withoutUnissued(r, 'a', 10);
    expect(cut.context).toEqual({ a: 10, b: 7 });
    expect(cut.siblings.map((s) => dotKey(s.dot))).toEqual(['a:4', 'b:7']);
    expect(withoutUnissued(r, 'a', 0).context).toEqual({ b: 7 });
  });
});

describe('contextAfterWrite (the token a write hands back)', () => {
  const t = (n: number): Hlc => ({ wallMs: n, logical: 0 });
  const read = (record: VersionedRecord): ClientContext => ({ vv: record.context, unseen: [] });
  // One coordinator X: `base` (X:1) read by two clients; client 2 writes X:2, then client 1 writes X:3.
  const base = applyWrite(EMPTY_RECORD, {}, { actor: 'X', counter: 1 }, bytes(1), t(1));
  const withClient2 = applyWrite(base, base.context, { actor: 'X', counter: 2 }, bytes(2), t(2));
  const withBoth = applyWrite(withClient2, base.context, { actor: 'X', counter: 3 }, bytes(3), t(3));
  const token1 = contextAfterWrite(withClient2, read(base), { actor: 'X', counter: 3 });

  it('covers what the write superseded and its own dot, not the sibling it left concurrent', () => {
    expect(dotsOf(withBoth)).toEqual(['X:2', 'X:3']);
    // The record's context {X:3} covers X:2 too (dot counters are per writer): the token excludes it.
    expect(token1).toEqual({ vv: { X: 3 }, unseen: [{ actor: 'X', counter: 2 }] });
    const again = applyWrite(withBoth, token1.vv, { actor: 'X', counter: 4 }, bytes(4), t(4), token1.unseen);
    expect(dotsOf(again)).toEqual(['X:2', 'X:4']);
    expect(recordWellFormed(again)).toBe(true);
    // And the write after that, with the token that one returned, still keeps client 2's version.
    const token2 = contextAfterWrite(withBoth, token1, { actor: 'X', counter: 4 });
    expect(token2).toEqual({ vv: { X: 4 }, unseen: [{ actor: 'X', counter: 2 }] });
    const third = applyWrite(again, token2.vv, { actor: 'X', counter: 5 }, bytes(5), t(5), token2.unseen);
    expect(dotsOf(third)).toEqual(['X:2', 'X:5']);
  });

  it('is the written record context after a blind write or a write that saw every sibling', () => {
    const blind = contextAfterWrite(withBoth, undefined, { actor: 'X', counter: 4 });
    expect(blind).toEqual({ vv: { X: 4 }, unseen: [] });
    const resolved = contextAfterWrite(withBoth, read(withBoth), { actor: 'Y', counter: 1 });
    expect(resolved).toEqual({ vv: { X: 3, Y: 1 }, unseen: [] });
    expect(dotsOf(applyWrite(withBoth, resolved.vv, { actor: 'X', counter: 4 }, bytes(4), t(4), resolved.unseen))).toEqual(['X:4']);
  });

  it('keeps exceptions a coordinator has not seen yet; the record there never covers them', () => {
    // Client 1 writes again at Y, which has neither X:2 nor X:3 yet.
    const atY = applyWrite(EMPTY_RECORD, token1.vv, { actor: 'Y', counter: 1 }, bytes(4), t(4), token1.unseen);
    expect(covers(atY.context, { actor: 'X', counter: 2 })).toBe(false);
    const token2 = contextAfterWrite(EMPTY_RECORD, token1, { actor: 'Y', counter: 1 });
    expect(token2).toEqual({ vv: { X: 3, Y: 1 }, unseen: [{ actor: 'X', counter: 2 }] });
    // Merged with X's record, client 2's version survives (client 1's X:3 may come back as a sibling:
    // Y cannot record it superseded without also covering X:2; a spurious sibling, never a lost write).
    const merged = mergeRecords(withBoth, atY);
    expect(dotsOf(merged)).toContain('X:2');
    expect(dotsOf(merged)).toContain('Y:1');
    // A write with the second token anywhere afterwards supersedes client 1's versions only.
    const next = applyWrite(merged, token2.vv, { actor: 'X', counter: 4 }, bytes(5), t(5), token2.unseen);
    expect(dotsOf(next)).toEqual(['X:2', 'X:4']);
  });

  it('drops exceptions that are dead at the coordinator (superseded there)', () => {
    // Someone who saw both siblings resolved them (at Y); client 1's old token still excludes X:2.
    const resolved = applyWrite(withBoth, withBoth.context, { actor: 'Y', counter: 1 }, bytes(9), t(4));
    expect(contextAfterWrite(resolved, token1, { actor: 'X', counter: 4 })).toEqual({ vv: { X: 4 }, unseen: [] });
    // A version the client never saw with the new dot's writer and an older counter becomes an exception.
    const resolvedAtX = applyWrite(withBoth, withBoth.context, { actor: 'X', counter: 4 }, bytes(9), t(4));
    expect(contextAfterWrite(resolvedAtX, token1, { actor: 'X', counter: 5 })).toEqual({ vv: { X: 5 }, unseen: [{ actor: 'X', counter: 4 }] });
  });

  it('a follow-up write with it supersedes exactly the client\'s own write and what it had read', () => {
    fc.assert(
      fc.property(historyArb, idx, idx, idx, fc.nat({ max: ACTORS.length - 1 }), fc.nat({ max: ACTORS.length - 1 }), (h, i, k, j, a, b) => {
        const counters = [...h.nextCounter];
        const fresh = (actor: number): Dot => {
          const counter = counters[actor] as number;
          counters[actor] = counter + 1;
          return { actor: ACTORS[actor] as string, counter };
        };
        const writes = new Map(h.writes);
        const seen1 = pick(h.states, i);
        const seen2 = pick(h.states, k);
        // Client 2 writes at coordinator a from its read; then client 1 writes there from its own read.
        const dc = fresh(a);
        const local = applyWrite(h.replicas[a] as VersionedRecord, seen2.context, dc, bytes(2), freshHlc(h, a));
        writes.set(dotKey(dc), { dot: dc, value: bytes(2), hist: histOf(seen2, h.writes) });
        const d = fresh(a);
        const written = applyWrite(local, seen1.context, d, bytes(1), freshHlc(h, a));
        const hist1 = histOf(seen1, h.writes);
        writes.set(dotKey(d), { dot: d, value: bytes(1), hist: hist1 });
        const token = contextAfterWrite(local, read(seen1), d);
        // Client 1 writes again with the token at coordinator b, which has its first write.
        const there = mergeRecords(h.replicas[b] as VersionedRecord, written);
        const d2 = fresh(b);
        const again = applyWrite(there, token.vv, d2, bytes(3), freshHlc(h, b), token.unseen);
        writes.set(dotKey(d2), { dot: d2, value: bytes(3), hist: new Set([...hist1, dotKey(d)]) });
        const sawIt = (dot: Dot): boolean => dotKey(dot) === dotKey(d) || covers(seen1.context, dot);
        const expected = there.siblings.filter((s) => !sawIt(s.dot)).map((s) => dotKey(s.dot));
        expect(dotsOf(again).sort()).toEqual([...expected, dotKey(d2)].sort());
        expect(dotsOf(again)).toContain(dotKey(dc));
        expect(recordWellFormed(again)).toBe(true);
        expect(truthProblem(again, writes)).toBeUndefined();
        expect(truthProblem(mergeRecords(pick(h.states, j), again), writes)).toBeUndefined();
      }),
    );
  });
});

describe('tombstones follow the same rules', () => {
  const h0 = { wallMs: 1, logical: 0 };
  const v1 = applyWrite(EMPTY_RECORD, {}, { actor: 'a', counter: 1 }, bytes(1), h0);

  it('a delete with the read context replaces the value with a tombstone', () => {
    const del = applyWrite(v1, v1.context, { actor: 'b', counter: 1 }, null, { wallMs: 2, logical: 0 });
    expect(dotsOf(del)).toEqual(['b:1']);
    expect(isDeleted(del)).toBe(true);
    expect(liveSiblings(del)).toEqual([]);
    expect(sameRecord(mergeRecords(v1, del), del)).toBe(true);
  });

  it('a concurrent delete and write both survive; a later write with the merged context resolves them', () => {
    const del = applyWrite(v1, v1.context, { actor: 'b', counter: 1 }, null, { wallMs: 2, logical: 0 });
    const put = applyWrite(v1, v1.context, { actor: 'a', counter: 2 }, bytes(2), { wallMs: 3, logical: 0 });
    const both = mergeRecords(del, put);
    expect(dotsOf(both)).toEqual(['a:2', 'b:1']);
    expect(isDeleted(both)).toBe(false);
    expect(liveSiblings(both).map((s) => dotKey(s.dot))).toEqual(['a:2']);
    const resolved = applyWrite(both, both.context, { actor: 'c', counter: 1 }, null, { wallMs: 4, logical: 0 });
    expect(dotsOf(resolved)).toEqual(['c:1']);
    expect(isDeleted(resolved)).toBe(true);
    expect(dotsOf(mergeRecords(put, resolved))).toEqual(['c:1']);
  });

  it('a blind write does not resurrect over nor erase a concurrent tombstone', () => {
    const del = applyWrite(v1, v1.context, { actor: 'b', counter: 1 }, null, h0);
    const blind = applyWrite(EMPTY_RECORD, {}, { actor: 'c', counter: 1 }, bytes(3), h0);
    const merged = mergeRecords(blind, del);
    expect(dotsOf(merged)).toEqual(['b:1', 'c:1']);
    expect(isDeleted(EMPTY_RECORD)).toBe(true);
  });
});

describe('lwwWinner', () => {
  const maxSibling = (siblings: readonly Sibling[]): Sibling | undefined =>
    [...siblings].sort((x, y) => hlcCompare(x.hlc, y.hlc) || compareSiblings(x, y)).at(-1);

  it('picks the greatest (hlc, actor, counter) and is independent of merge order', () => {
    fc.assert(
      fc.property(historyArb, fc.array(fc.tuple(idx, fc.nat()), { minLength: 1, maxLength: 5 }), (h, picks) => {
        const forward = picks.map(([i]) => pick(h.states, i)).reduce(mergeRecords);
        const shuffled = [...picks].sort((x, y) => x[1] - y[1]).map(([i]) => pick(h.states, i));
        const backward = shuffled.reduceRight(mergeRecords);
        expect(lwwWinner(forward)?.dot).toEqual(lwwWinner(backward)?.dot);
        expect(lwwWinner(forward)?.dot).toEqual(maxSibling(forward.siblings)?.dot);
      }),
    );
  });

  it('breaks hlc ties by actor then counter, and may pick a tombstone', () => {
    const t = { wallMs: 5, logical: 0 };
    const a = applyWrite(EMPTY_RECORD, {}, { actor: 'a', counter: 1 }, bytes(1), t);
    const b = applyWrite(EMPTY_RECORD, {}, { actor: 'b', counter: 1 }, null, t);
    expect(lwwWinner(mergeRecords(a, b))?.dot).toEqual({ actor: 'b', counter: 1 });
    expect(lwwWinner(mergeRecords(b, a))?.value).toBeNull();
    expect(lwwWinner(EMPTY_RECORD)).toBeUndefined();
  });
});

describe('recordWellFormed', () => {
  const s = (actor: string, counter: number): Sibling => ({ dot: { actor, counter }, value: null, hlc: { wallMs: 0, logical: 0 } });

  it('rejects siblings outside the context, duplicate dots, bad counters and empty actors', () => {
    expect(recordWellFormed({ context: { a: 1 }, siblings: [s('a', 1)] })).toBe(true);
    expect(recordWellFormed({ context: { a: 1 }, siblings: [s('a', 2)] })).toBe(false);
    expect(recordWellFormed({ context: { a: 2 }, siblings: [s('a', 2), s('a', 2)] })).toBe(false);
    expect(recordWellFormed({ context: { a: 2 }, siblings: [s('a', 0)] })).toBe(false);
    expect(recordWellFormed({ context: { '': 2 }, siblings: [s('', 1)] })).toBe(false);
    expect(recordWellFormed({ context: { a: 0 }, siblings: [] })).toBe(false);
    expect(recordWellFormed({ context: { a: 1.5 }, siblings: [] })).toBe(false);
  });
});

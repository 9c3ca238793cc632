// The anti-entropy digest (src/core/digest.ts): incremental updates equal a rebuild, order does not matter,
// equal roots mean equal contents (no false "in sync"), and a top-down comparison finds exactly the segments
// that differ at a cost proportional to the difference.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/core/assert.js';
import { DIGEST_SHAPE_DEFAULT, MerkleDigest, differingSegments, entryHash, hashesEqual, segmentOf, versionSummary } from '../../src/core/digest.js';
import { EMPTY_RECORD, type VersionedRecord, applyWrite, mergeRecords } from '../../src/core/record.js';

const SMALL = { segmentsLog2: 4, fanoutLog2: 2 }; // 16 segments: many keys share one, as with a big store

/** A record: one to three sibling dots (some tombstones) and a context covering them and maybe more. */
const recordArb: fc.Arbitrary<VersionedRecord> = fc
  .record({
    siblings: fc.uniqueArray(fc.record({ actor: fc.constantFrom('a', 'b', 'c'), counter: fc.integer({ min: 1, max: 6 }), del: fc.boolean() }), {
      selector: (x) => `${x.actor}:${x.counter}`,
      minLength: 1,
      maxLength: 3,
    }),
    extra: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.integer({ min: 1, max: 9 })),
  })
  .map(({ siblings, extra }) => {
    const context: Record<string, number> = { ...extra };
    for (const x of siblings) context[x.actor] = Math.max(context[x.actor] ?? 0, x.counter);
    return {
      context,
      siblings: siblings.map((x) => ({ dot: { actor: x.actor, counter: x.counter }, value: x.del ? null : new Uint8Array([x.counter]), hlc: { wallMs: x.counter, logical: 0 } })),
    };
  });

const storeArb = fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), recordArb, { maxKeys: 40 });

function build(store: Record<string, VersionedRecord>, shape = SMALL, order?: readonly string[]): MerkleDigest {
  const digest = new MerkleDigest(shape);
  for (const key of order ?? Object.keys(store)) digest.update(key, undefined, store[key]);
  return digest;
}

const sameContents = (a: Record<string, VersionedRecord>, b: Record<string, VersionedRecord>): boolean => {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => (a[k] === undefined) === (b[k] === undefined) && (a[k] === undefined || versionSummary(a[k]!) === versionSummary(b[k]!)));
};

describe('merkle digest', () => {
  it('is the same whatever order the keys were added in, and empty again when they are removed', () => {
    fc.assert(
      fc.property(storeArb, fc.integer(), (store, seed) => {
        const keys = Object.keys(store);
        const shuffled = [...keys].sort((x, y) => ((hashOf(x) ^ seed) >>> 0) - ((hashOf(y) ^ seed) >>> 0));
        const a = build(store);
        const b = build(store, SMALL, shuffled);
        expect(hashesEqual(a.root(), b.root())).toBe(true);
        for (const key of keys) a.update(key, store[key], undefined);
        expect(a.root()).toEqual({ hi: 0, lo: 0 });
        expect(a.size).toBe(0);
      }),
    );
  });

  it('incremental updates equal a rebuild from the final contents', () => {
    fc.assert(
      fc.property(storeArb, fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 6 }), fc.option(recordArb, { nil: undefined })), { maxLength: 30 }), (start, edits) => {
        const live: Record<string, VersionedRecord> = { ...start };
        const digest = build(live);
        for (const [key, record] of edits) {
          digest.update(key, live[key], record);
          if (record === undefined) delete live[key];
          else live[key] = record;
        }
        const rebuilt = build(live);
        expect(hashesEqual(digest.root(), rebuilt.root())).toBe(true);
        expect(digest.size).toBe(Object.keys(live).length);
      }),
    );
  });

  it('equal roots exactly when the contents are equal (no false "in sync"), and the diff finds every differing key', () => {
    fc.assert(
      fc.property(storeArb, fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 6 }), fc.option(recordArb, { nil: undefined })), { maxLength: 5 }), (base, changes) => {
        const other: Record<string, VersionedRecord> = { ...base };
        for (const [key, record] of changes) {
          if (record === undefined) delete other[key];
          else other[key] = record;
        }
        const a = build(base);
        const b = build(other);
        expect(hashesEqual(a.root(), b.root())).toBe(sameContents(base, other));
        const { segments } = differingSegments(a, b);
        const differing = [...new Set([...Object.keys(base), ...Object.keys(other)])].filter(
          (k) => !hashesEqual(entryHash(k, base[k]), entryHash(k, other[k])),
        );
        for (const key of differing) expect(segments).toContain(segmentOf(key, SMALL));
        for (const segment of segments) expect(differing.some((k) => segmentOf(k, SMALL) === segment)).toBe(true);
      }),
    );
  });

  it('finds one differing key among 10,000 by comparing 1 + depth x fan-out hashes', () => {
    const a = new MerkleDigest();
    const b = new MerkleDigest();
    const record = (n: number): VersionedRecord => applyWrite(EMPTY_RECORD, {}, { actor: 'a', counter: n }, new Uint8Array([n & 0xff]), { wallMs: n, logical: 0 });
    for (let i = 1; i <= 10_000; i++) {
      a.update(`key-${i}`, undefined, record(i));
      b.update(`key-${i}`, undefined, record(i));
    }
    expect(hashesEqual(a.root(), b.root())).toBe(true);
    b.update('key-4242', record(4242), mergeRecords(record(4242), applyWrite(EMPTY_RECORD, {}, { actor: 'b', counter: 1 }, null, { wallMs: 1, logical: 0 })));
    const { segments, compared } = differingSegments(a, b);
    expect(segments).toEqual([segmentOf('key-4242')]);
    expect(compared).toBe(1 + a.depth * (1 << DIGEST_SHAPE_DEFAULT.fanoutLog2)); // 65 hashes, 520 bytes
  });

  it('tells apart records that differ only in context or in a tombstone, and keys that differ only by length', () => {
    const w = applyWrite(EMPTY_RECORD, {}, { actor: 'a', counter: 1 }, new Uint8Array([1]), { wallMs: 1, logical: 0 });
    const wider = { ...w, context: { ...w.context, b: 3 } };
    expect(hashesEqual(entryHash('k', w), entryHash('k', wider))).toBe(false);
    const tomb = applyWrite(EMPTY_RECORD, {}, { actor: 'a', counter: 1 }, null, { wallMs: 1, logical: 0 });
    expect(hashesEqual(entryHash('k', w), entryHash('k', tomb))).toBe(false);
    expect(hashesEqual(entryHash('a', w), entryHash('b', w))).toBe(false);
  });

  it('rejects bad shapes and updates that lie about the previous record', () => {
    expect(() => new MerkleDigest({ segmentsLog2: 6, fanoutLog2: 4 })).toThrow(AssertionError);
    expect(() => new MerkleDigest({ segmentsLog2: 30, fanoutLog2: 5 })).toThrow(AssertionError);
    const d = new MerkleDigest(SMALL);
    const w = applyWrite(EMPTY_RECORD, {}, { actor: 'a', counter: 1 }, new Uint8Array([1]), { wallMs: 1, logical: 0 });
    expect(() => d.update('k', w, undefined)).toThrow(AssertionError);
  });
});

function hashOf(text: string): number {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h;
}

// Shared by the record, replica and sync fuzz targets: byte-level mutations of valid encodings, and the check
// that a decoded record satisfies what the core assumes (it goes through every merge function without an
// assertion failure, and re-encodes to a record that decodes the same).
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import {
  EMPTY_RECORD,
  type VersionedRecord,
  applyWrite,
  contextAfterWrite,
  lwwWinner,
  mergeRecords,
  recordContains,
  recordWellFormed,
  recordsEqual,
  STORED_RECORD_LIMITS,
  withoutUnissued,
} from '../../src/core/record.js';
import { vvGet } from '../../src/core/vv.js';
import { WireFormatError } from '../../src/wire/errors.js';
import { decodeRecord, encodeRecord } from '../../src/wire/record.js';

type Edit = { readonly op: 'flip' | 'set' | 'insert' | 'delete' | 'truncate' | 'dup'; readonly at: number; readonly byte: number; readonly len: number };

const editArb: fc.Arbitrary<Edit> = fc.record({
  op: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate', 'dup'),
  at: fc.nat(),
  byte: fc.nat(255),
  len: fc.integer({ min: 1, max: 16 }),
});

/** Random edits of `bytes`: bit flips, byte sets, inserts, deletes, truncation, duplicated runs. */
export function mutate(bytes: Uint8Array, edits: readonly Edit[]): Uint8Array {
  let b = Array.from(bytes);
  for (const e of edits) {
    const at = b.length === 0 ? 0 : e.at % (b.length + 1);
    switch (e.op) {
      case 'flip':
        if (at < b.length) b[at] = (b[at] as number) ^ (1 << (e.byte % 8));
        break;
      case 'set':
        if (at < b.length) b[at] = e.byte;
        break;
      case 'insert':
        b.splice(at, 0, ...Array.from({ length: e.len }, (_, i) => (e.byte + i * 37) & 0xff));
        break;
      case 'delete':
        b.splice(at, e.len);
        break;
      case 'truncate':
        b = b.slice(0, at);
        break;
      case 'dup':
        b.splice(at, 0, ...b.slice(at, at + e.len));
        break;
    }
  }
  return Uint8Array.from(b);
}

/**
 * Bytes to decode: random, or one of `valid` (encodings sampled once, so a run spends its time decoding rather
 * than generating) untouched or with random edits.
 */
export function inputArb(valid: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const pick = fc.nat(valid.length - 1).map((i) => valid[i] as Uint8Array);
  return fc.oneof(
    { arbitrary: fc.uint8Array({ maxLength: 256 }), weight: 2 },
    { arbitrary: pick, weight: 1 },
    { arbitrary: fc.tuple(pick, fc.array(editArb, { minLength: 1, maxLength: 4 })).map(([b, edits]) => mutate(b, edits)), weight: 5 },
  );
}

/** `count` valid encodings from `arb`, the same every run (fixed seed). */
export function samplePool<T>(arb: fc.Arbitrary<T>, encode: (value: T) => Uint8Array, count = 4000): Uint8Array[] {
  return fc.sample(arb, { numRuns: count, seed: 12 }).map(encode);
}

/** Runs `decode`; a throw must be a WireFormatError (returns undefined then). */
export function decodeOrWireError<T>(decode: () => T): T | undefined {
  try {
    return decode();
  } catch (err) {
    if (err instanceof WireFormatError) return undefined;
    throw err;
  }
}

/** A failed invariant (plain checks: the runs are long, and vitest's expect costs more than the decode). */
export function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`invariant broken: ${what}`);
}


const PROBE: VersionedRecord = {
  context: { a: 3, b: 1 },
  siblings: [
    { dot: { actor: 'a', counter: 3 }, value: Uint8Array.of(1), hlc: { wallMs: 5, logical: 0 } },
    { dot: { actor: 'b', counter: 1 }, value: null, hlc: { wallMs: 4, logical: 2 } },
  ],
};

/** A decoded record satisfies the core's invariants: every record function takes it without an assertion. */
export function checkRecord(r: VersionedRecord): void {
  check(recordWellFormed(r, STORED_RECORD_LIMITS), 'well formed');
  check(isDeepStrictEqual(decodeRecord(encodeRecord(r)), r), 'reads back the same');
  for (const other of [EMPTY_RECORD, PROBE, r]) {
    const m = mergeRecords(r, other);
    check(recordsEqual(m, mergeRecords(other, r)), 'merge commutes');
    check(recordWellFormed(m) || m.siblings.length > 1024 || Object.keys(m.context).length > 4096, 'merge well formed');
    check(recordContains(m, r), 'merge contains its input');
  }
  lwwWinner(r);
  // A write on top, as a coordinator would make it: a fresh dot of its own writer (above what it issued).
  const actor = r.siblings[0]?.dot.actor ?? 'w';
  let issued = 0;
  for (const s of r.siblings) if (s.dot.actor === actor && s.dot.counter > issued) issued = s.dot.counter;
  const dot = { actor, counter: issued + 1 };
  check(vvGet(withoutUnissued(r, actor, issued).context, actor) <= issued, 'cut at the issued counter');
  const written = applyWrite(r, r.context, dot, Uint8Array.of(7), { wallMs: 1, logical: 0 });
  check(recordWellFormed(written) || written.siblings.length > 1024, 'a write on top is well formed');
  contextAfterWrite(r, { vv: r.context, unseen: [] }, dot);
  // And a write by a coordinator that covers nothing of it yet (a blind write of another writer).
  applyWrite(r, {}, { actor: 'fresh-writer', counter: 1 }, null, { wallMs: 1, logical: 0 });
}

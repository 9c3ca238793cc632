// Property tests for the record codec: exact round trip, tombstone vs empty value, and that arbitrary or
// corrupted bytes only ever produce WireFormatError.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { VersionedRecord } from '../../src/core/record.js';
import { WireFormatError } from '../../src/wire/errors.js';
import { decodeRecord, encodeRecord } from '../../src/wire/record.js';
import * as pb from '../../src/wire/gen/record.pb.js';
import { recordArb, expectCorruptionsRejected, expectOnlyWireErrors } from './arbitraries.js';

const decodeOrWireError = (bytes: Uint8Array): void => expectOnlyWireErrors(decodeRecord, bytes);

describe('record codec', () => {
  it('round-trips arbitrary well-formed records', () => {
    fc.assert(
      fc.property(recordArb, (record) => {
        expect(decodeRecord(encodeRecord(record))).toEqual(record);
      }),
      { numRuns: 500 },
    );
  });

  it('encodes equal records to identical bytes (context order does not matter)', () => {
    const a: VersionedRecord = { context: { x: 1, y: 2 }, siblings: [] };
    const b: VersionedRecord = { context: { y: 2, x: 1 }, siblings: [] };
    expect(encodeRecord(a)).toEqual(encodeRecord(b));
  });

  it('keeps a tombstone distinct from an empty value', () => {
    const hlc = { wallMs: 5, logical: 0 };
    const tomb: VersionedRecord = { context: { a: 1 }, siblings: [{ dot: { actor: 'a', counter: 1 }, value: null, hlc }] };
    const empty: VersionedRecord = { context: { a: 1 }, siblings: [{ dot: { actor: 'a', counter: 1 }, value: new Uint8Array(0), hlc }] };
    expect(decodeRecord(encodeRecord(tomb)).siblings[0]?.value).toBeNull();
    expect(decodeRecord(encodeRecord(empty)).siblings[0]?.value).toEqual(new Uint8Array(0));
    expect(encodeRecord(tomb)).not.toEqual(encodeRecord(empty));
  });

  it('decodes the empty buffer as the empty record', () => {
    expect(decodeRecord(new Uint8Array(0))).toEqual({ context: {}, siblings: [] });
  });

  it('copies values out of the input buffer', () => {
    const record: VersionedRecord = {
      context: { a: 1 },
      siblings: [{ dot: { actor: 'a', counter: 1 }, value: new Uint8Array([1, 2, 3]), hlc: { wallMs: 1, logical: 0 } }],
    };
    const bytes = encodeRecord(record);
    const decoded = decodeRecord(bytes);
    bytes.fill(0);
    expect(decoded.siblings[0]?.value).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('rejects structurally invalid records with WireFormatError', () => {
    const bad: Array<[string, pb.VersionedRecord]> = [
      ['counter above 2^53', { context: [{ actor: 'a', counter: 2n ** 53n }], siblings: [] }],
      ['zero context counter', { context: [{ actor: 'a', counter: 0n }], siblings: [] }],
      ['duplicate context actor', { context: [{ actor: 'a', counter: 1n }, { actor: 'a', counter: 2n }], siblings: [] }],
      ['reserved actor', { context: [{ actor: '__proto__', counter: 1n }], siblings: [] }],
      ['sibling not covered', { context: [], siblings: [{ actor: 'a', counter: 1n, hlcWallMs: 0n, hlcLogical: 0n }] }],
      ['empty sibling actor', { context: [{ actor: 'a', counter: 1n }], siblings: [{ actor: '', counter: 1n, hlcWallMs: 0n, hlcLogical: 0n }] }],
      ['huge hlc', { context: [{ actor: 'a', counter: 1n }], siblings: [{ actor: 'a', counter: 1n, hlcWallMs: 2n ** 63n, hlcLogical: 0n }] }],
      [
        'duplicate dot',
        {
          context: [{ actor: 'a', counter: 1n }],
          siblings: [
            { actor: 'a', counter: 1n, hlcWallMs: 0n, hlcLogical: 0n },
            { actor: 'a', counter: 1n, hlcWallMs: 1n, hlcLogical: 0n },
          ],
        },
      ],
    ];
    for (const [what, msg] of bad) {
      expect(() => decodeRecord(pb.VersionedRecord.encode(msg)), what).toThrow(WireFormatError);
    }
  });

  it('throws only WireFormatError on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), decodeOrWireError), { numRuns: 2000 });
  });

  it('throws only WireFormatError on truncated or bit-flipped encodings', () => {
    fc.assert(
      fc.property(recordArb, fc.nat(), fc.nat(7), (record, at, bit) => {
        expectCorruptionsRejected(decodeRecord, encodeRecord(record), at, bit);
      }),
      { numRuns: 1000 },
    );
  });
});

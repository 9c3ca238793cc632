// protons-runtime 8.0.1 wrote uint64 values in [2^31, 2^32) as garbage (found by the sync frame fuzz target: a
// digest at epoch 2^31 re-encoded to an unreadable frame). Every safe integer must be written as the standard
// varint, whatever field carries it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { VersionedRecord } from '../../src/core/record.js';
import { decodeRecord, encodeRecord } from '../../src/wire/record.js';
import * as pb from '../../src/wire/gen/record.pb.js';
import { decodeFrame, encodeFrame } from '../../src/wire/replica.js';
import { installUint64Fix } from '../../src/wire/uint64-fix.js';

/** The protobuf varint of a positive integer (reference; 0 is the default and not written). */
function varint(n: bigint): number[] {
  const out: number[] = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return out;
}

describe('uint64 encoding', () => {
  it('is installed once (importing a codec installs it)', () => {
    expect(installUint64Fix()).toBe(false);
  });

  it('writes every safe integer as the standard varint, around every power of two too', () => {
    const edges: bigint[] = [];
    for (let b = 0n; b <= 53n; b++) for (const d of [-1n, 0n, 1n]) if ((1n << b) + d >= 1n && (1n << b) + d <= BigInt(Number.MAX_SAFE_INTEGER)) edges.push((1n << b) + d);
    const check = (n: bigint): void => {
      expect(Array.from(pb.VvEntry.encode({ actor: '', counter: n }))).toEqual([16, ...varint(n)]);
    };
    edges.forEach(check);
    fc.assert(fc.property(fc.bigInt({ min: 1n, max: BigInt(Number.MAX_SAFE_INTEGER) }), (n) => check(n)), { numRuns: 2000 });
  });

  it('round-trips records and frames with counters, clocks and epochs in [2^31, 2^32)', () => {
    const n = 2 ** 31;
    const record: VersionedRecord = {
      context: { a: 2 ** 32 - 1 },
      siblings: [{ dot: { actor: 'a', counter: n + 5 }, value: Uint8Array.of(1), hlc: { wallMs: n, logical: 2 ** 32 - 1 } }],
    };
    expect(decodeRecord(encodeRecord(record))).toEqual(record);
    const msg = { type: 'write' as const, opId: n, epoch: n + 1, key: 'k', record };
    expect(decodeFrame(encodeFrame([msg]))).toEqual([msg]);
  });
});

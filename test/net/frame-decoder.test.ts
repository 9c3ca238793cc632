// The incremental length-prefixed frame reader: any chunking of a byte stream yields the same frames, and
// bad prefixes are rejected as soon as they are seen.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameDecoder, framePrefix } from '../../src/net/frame-decoder.js';
import { WireFormatError } from '../../src/wire/errors.js';

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

describe('FrameDecoder', () => {
  it('reassembles frames from arbitrary chunkings', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1 }), (frames, cuts) => {
        const stream = concat(frames.flatMap((f) => [framePrefix(f.length), f]));
        const decoder = new FrameDecoder(1000);
        const out: Uint8Array[] = [];
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const n = cuts[i % cuts.length] as number;
          out.push(...decoder.push(stream.subarray(at, at + n)).map((f) => f.slice()));
          at += n;
        }
        expect(out).toEqual(frames);
        expect(decoder.bufferedBytes).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('encodes prefixes as protobuf-style varints', () => {
    expect([...framePrefix(0)]).toEqual([0]);
    expect([...framePrefix(127)]).toEqual([127]);
    expect([...framePrefix(300)]).toEqual([0xac, 0x02]);
    expect([...framePrefix(4 * 1024 * 1024)]).toEqual([0x80, 0x80, 0x80, 0x02]);
  });

  it('rejects a length over the maximum before any body arrives', () => {
    const decoder = new FrameDecoder(1000);
    expect(() => decoder.push(framePrefix(1001))).toThrow(WireFormatError);
    expect(new FrameDecoder(1000).push(framePrefix(1000))).toEqual([]);
  });

  it('rejects a prefix longer than the maximum needs', () => {
    const decoder = new FrameDecoder(4 * 1024 * 1024);
    expect(() => decoder.push(Uint8Array.of(0x80, 0x80, 0x80))).not.toThrow();
    expect(() => decoder.push(Uint8Array.of(0x80))).toThrow(WireFormatError);
  });
});

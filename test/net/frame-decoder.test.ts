// The incremental length-prefixed frame reader: any chunking of a byte stream yields the same frames, and
// bad prefixes are rejected as soon as they are seen.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteBudget } from '../../src/net/budget.js';
import { FRAME_BUFFER_INITIAL_BYTES } from '../../src/net/constants.js';
import { FrameBudgetError } from '../../src/net/errors.js';
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

describe('FrameDecoder buffering and budgets', () => {
  const MiB = 1024 * 1024;

  it('an announced length costs nothing until its bytes arrive, then at most twice what arrived', () => {
    const decoder = new FrameDecoder(4 * MiB);
    expect(decoder.push(framePrefix(4 * MiB))).toEqual([]);
    expect(decoder.chargedBytes).toBe(0);
    decoder.push(new Uint8Array(1));
    expect(decoder.chargedBytes).toBe(FRAME_BUFFER_INITIAL_BYTES);
    let sent = 1;
    while (sent + 100_000 < 4 * MiB) {
      decoder.push(new Uint8Array(100_000));
      sent += 100_000;
      expect(decoder.bufferedBytes).toBe(sent);
      expect(decoder.chargedBytes).toBeLessThanOrEqual(Math.max(2 * sent, FRAME_BUFFER_INITIAL_BYTES));
    }
    const rest = 4 * MiB - sent;
    const frames = decoder.push(new Uint8Array(rest).fill(7));
    expect(frames).toHaveLength(1);
    expect(frames[0]).toHaveLength(4 * MiB);
    expect(frames[0]?.[4 * MiB - 1]).toBe(7);
    expect(decoder.chargedBytes).toBe(0);
  });

  it('decoders sharing a budget: the one that does not fit is refused with FrameBudgetError; bytes come back', () => {
    const connection = new ByteBudget('connection', 200 * 1024);
    const node = new ByteBudget('node', 300 * 1024);
    const a = new FrameDecoder(MiB, [connection, node]);
    const b = new FrameDecoder(MiB, [connection, node]);
    a.push(new Uint8Array([...framePrefix(MiB), ...new Uint8Array(150 * 1024)]));
    expect(connection.usedBytes).toBe(a.chargedBytes);
    expect(node.usedBytes).toBe(a.chargedBytes);
    b.push(framePrefix(MiB));
    expect(() => b.push(new Uint8Array(100 * 1024))).toThrow(FrameBudgetError);
    // Nothing of b's refused reservation is held, and b refuses further input.
    expect(connection.usedBytes).toBe(a.chargedBytes);
    expect(() => b.push(new Uint8Array(1))).toThrow(WireFormatError);
    a.dispose();
    expect(connection.usedBytes).toBe(0);
    expect(node.usedBytes).toBe(0);
  });

  it('dispose (stream closed or reset) releases what the decoder held', () => {
    const budget = new ByteBudget('node', MiB);
    const decoder = new FrameDecoder(1000, [budget]);
    decoder.push(new Uint8Array([...framePrefix(900), 1, 2, 3]));
    expect(budget.usedBytes).toBeGreaterThan(0);
    decoder.dispose();
    expect(budget.usedBytes).toBe(0);
    decoder.dispose();
    expect(budget.usedBytes).toBe(0);
  });
});

// Fuzz target for the frame decoder (src/net/frame-decoder.ts): arbitrary bytes in arbitrary chunkings, several
// decoders sharing a connection and a node budget. Only WireFormatError or FrameBudgetError may escape; budgets
// are never exceeded and are whole again once a decoder fails or is disposed; a decoder never holds more than
// twice what arrived of its frame; and well-formed streams decode to exactly the frames sent, whatever the cut.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteBudget } from '../../src/net/budget.js';
import { FrameBudgetError } from '../../src/net/errors.js';
import { FrameDecoder, framePrefix } from '../../src/net/frame-decoder.js';
import { WireFormatError } from '../../src/wire/errors.js';
import { fuzzRuns, fuzzTimeoutMs } from './runs.js';

/** Cuts `bytes` into chunks of the given sizes (cycled), each at least one byte. */
function chunked(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = cuts[i % cuts.length] as number;
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Bytes that are often near-valid: prefixes of random lengths (some over the maximum, some over-long) and bodies. */
const streamBytes = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  fc
    .array(
      fc.tuple(fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 2 ** 28 })), fc.uint8Array({ maxLength: 400 }), fc.boolean()),
      { maxLength: 6 },
    )
    .map((parts) => concat(parts.flatMap(([length, body, overlong]) => [overlong ? Uint8Array.of(0x80 | (length & 0x7f), 0x80, 0x80, 0x80, 0x80) : framePrefix(length), body]))),
);

describe('frame decoder fuzz', () => {
  it(
    'arbitrary bytes and chunkings: only typed errors, budgets never exceeded, released on failure',
    () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 2048 }),
          fc.integer({ min: 1, max: 4096 }),
          fc.integer({ min: 1, max: 8192 }),
          fc.integer({ min: 1, max: 512 }),
          fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), streamBytes, fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 })), { minLength: 1, maxLength: 4 }),
          (frameBytesMax, connectionLimit, nodeLimit, initialBytes, feeds) => {
            const connection = new ByteBudget('connection', connectionLimit);
            const node = new ByteBudget('node', nodeLimit);
            const decoders = [0, 1, 2].map(() => new FrameDecoder(frameBytesMax, [connection, node], initialBytes));
            const failed = new Set<FrameDecoder>();
            for (const [which, bytes, cuts] of feeds) {
              const decoder = decoders[which] as FrameDecoder;
              for (const chunk of chunked(bytes, cuts)) {
                try {
                  for (const frame of decoder.push(chunk)) expect(frame.length).toBeLessThanOrEqual(frameBytesMax);
                  expect(failed.has(decoder)).toBe(false);
                } catch (err) {
                  if (!(err instanceof WireFormatError || err instanceof FrameBudgetError)) throw err;
                  failed.add(decoder);
                  expect(decoder.chargedBytes).toBe(0);
                }
                expect(connection.usedBytes).toBeLessThanOrEqual(connectionLimit);
                expect(node.usedBytes).toBeLessThanOrEqual(nodeLimit);
                expect(decoder.chargedBytes).toBeLessThanOrEqual(Math.max(2 * decoder.bufferedBytes, initialBytes));
                const held = decoders.reduce((n, d) => n + d.chargedBytes, 0);
                expect(connection.usedBytes).toBe(held);
                expect(node.usedBytes).toBe(held);
              }
            }
            for (const decoder of decoders) decoder.dispose();
            expect(connection.usedBytes).toBe(0);
            expect(node.usedBytes).toBe(0);
          },
        ),
        { numRuns: fuzzRuns(2000) },
      );
    },
    fuzzTimeoutMs(),
  );

  it(
    'well-formed streams decode to the frames sent, whatever the chunking',
    () => {
      fc.assert(
        fc.property(
          fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 6 }),
          fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 8 }),
          fc.integer({ min: 1, max: 256 }),
          (frames, cuts, initialBytes) => {
            const budget = new ByteBudget('node', 2 * 700);
            const decoder = new FrameDecoder(700, [budget], initialBytes);
            const out: Uint8Array[] = [];
            for (const chunk of chunked(concat(frames.flatMap((f) => [framePrefix(f.length), f])), cuts)) {
              for (const frame of decoder.push(chunk)) out.push(frame.slice());
            }
            expect(out).toEqual(frames);
            expect(budget.usedBytes).toBe(0);
          },
        ),
        { numRuns: fuzzRuns(2000) },
      );
    },
    fuzzTimeoutMs(),
  );
});

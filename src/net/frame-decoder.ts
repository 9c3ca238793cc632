// Incremental reader of varint-length-prefixed frames from a byte stream. Holds at most one partial frame,
// rejects an oversized or malformed length prefix as soon as it is seen, and buffers a partial frame only as
// its bytes arrive (doubling from FRAME_BUFFER_INITIAL_BYTES, never past the announced length), charging every
// byte it allocates to its byte budgets (connection and node): an announced length costs nothing until sent.
import { assert } from '../core/assert.js';
import { WireFormatError } from '../wire/errors.js';
import { type ByteBudget, reserveAll } from './budget.js';
import { FRAME_BUFFER_INITIAL_BYTES } from './constants.js';
import { FrameBudgetError } from './errors.js';

export class FrameDecoder {
  private readonly frameBytesMax: number;
  private readonly budgets: readonly ByteBudget[];
  /** Varint bytes needed to encode frameBytesMax: a longer prefix is malformed. */
  private readonly prefixBytesMax: number;
  private length = 0;
  private prefixBytes = 0;
  /** Announced length of the frame being assembled; undefined while reading a prefix. */
  private expected: number | undefined;
  private partial: Uint8Array = new Uint8Array(0);
  private filled = 0;
  /** Bytes reserved in every budget (the partial buffer's capacity). */
  private charged = 0;
  private failed = false;
  private readonly initialBufferBytes: number;

  /** `initialBufferBytes` (default FRAME_BUFFER_INITIAL_BYTES) is the first allocation of a partial frame. */
  constructor(frameBytesMax: number, budgets: readonly ByteBudget[] = [], initialBufferBytes = FRAME_BUFFER_INITIAL_BYTES) {
    assert(Number.isSafeInteger(frameBytesMax) && frameBytesMax > 0, 'frameBytesMax is a positive integer');
    assert(Number.isSafeInteger(initialBufferBytes) && initialBufferBytes > 0, 'initialBufferBytes is a positive integer');
    this.frameBytesMax = frameBytesMax;
    this.budgets = budgets;
    this.initialBufferBytes = initialBufferBytes;
    this.prefixBytesMax = Math.max(1, Math.ceil(Math.log2(frameBytesMax + 1) / 7));
  }

  /** Bytes of the frame being assembled (for observability and tests). */
  get bufferedBytes(): number {
    return this.filled;
  }

  /** Bytes allocated for the frame being assembled, as charged to the budgets. */
  get chargedBytes(): number {
    return this.charged;
  }

  /**
   * Feeds received bytes; returns the frames they complete, in order. Throws WireFormatError (malformed
   * prefix, frame over the maximum) or FrameBudgetError (a budget is used up); after either, the decoder has
   * released what it held and refuses further input (the stream is to be reset).
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failed) throw new WireFormatError('frame stream already failed');
    try {
      return this.read(chunk);
    } catch (err) {
      this.failed = true;
      this.dispose();
      throw err;
    }
  }

  /** Releases the partial frame and its budget (stream closed or reset). Idempotent. */
  dispose(): void {
    this.releaseCharge();
    this.partial = new Uint8Array(0);
    this.filled = 0;
    this.expected = undefined;
  }

  private read(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let i = 0;
    while (i < chunk.length) {
      const expected = this.expected;
      if (expected !== undefined) {
        const take = Math.min(chunk.length - i, expected - this.filled);
        this.ensureCapacity(this.filled + take, expected);
        this.partial.set(chunk.subarray(i, i + take), this.filled);
        this.filled += take;
        i += take;
        if (this.filled === expected) {
          frames.push(this.partial.subarray(0, expected));
          this.dispose();
        }
        continue;
      }
      const b = chunk[i] as number;
      i += 1;
      this.length += (b & 0x7f) * 2 ** (7 * this.prefixBytes);
      this.prefixBytes += 1;
      if (b & 0x80) {
        if (this.prefixBytes >= this.prefixBytesMax) throw new WireFormatError('frame length prefix too long');
        continue;
      }
      const length = this.length;
      this.length = 0;
      this.prefixBytes = 0;
      if (length > this.frameBytesMax) throw new WireFormatError(`frame of ${length} bytes exceeds ${this.frameBytesMax}`);
      if (chunk.length - i >= length) {
        // The whole frame is in this chunk: no copy (decoding copies out whatever it keeps).
        frames.push(chunk.subarray(i, i + length));
        i += length;
      } else {
        this.expected = length;
      }
    }
    return frames;
  }

  /** Grows the partial buffer to hold `needed` bytes (doubling, at most `expected`), charging the budgets first. */
  private ensureCapacity(needed: number, expected: number): void {
    const capacity = this.partial.length;
    if (needed <= capacity) return;
    const grown = Math.min(expected, Math.max(needed, capacity * 2, this.initialBufferBytes));
    const refused = reserveAll(this.budgets, grown - capacity);
    if (refused !== undefined) throw new FrameBudgetError(refused.name, refused.limitBytes, expected);
    this.charged += grown - capacity;
    const next = new Uint8Array(grown);
    next.set(this.partial.subarray(0, this.filled));
    this.partial = next;
  }

  private releaseCharge(): void {
    if (this.charged === 0) return;
    for (const budget of this.budgets) budget.release(this.charged);
    this.charged = 0;
  }
}

/** The varint length prefix for a frame of `length` bytes. */
export function framePrefix(length: number): Uint8Array {
  assert(Number.isSafeInteger(length) && length >= 0, 'frame length is a non-negative integer');
  const out: number[] = [];
  let n = length;
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

// Incremental reader of varint-length-prefixed frames from a byte stream. Holds at most one partial frame,
// rejects an oversized or malformed length prefix as soon as it is seen, and copies only partial frames.
import { assert } from '../core/assert.js';
import { WireFormatError } from '../wire/errors.js';

export class FrameDecoder {
  private readonly frameBytesMax: number;
  /** Varint bytes needed to encode frameBytesMax: a longer prefix is malformed. */
  private readonly prefixBytesMax: number;
  private length = 0;
  private prefixBytes = 0;
  private partial: Uint8Array | undefined;
  private filled = 0;

  constructor(frameBytesMax: number) {
    assert(Number.isSafeInteger(frameBytesMax) && frameBytesMax > 0, 'frameBytesMax is a positive integer');
    this.frameBytesMax = frameBytesMax;
    this.prefixBytesMax = Math.max(1, Math.ceil(Math.log2(frameBytesMax + 1) / 7));
  }

  /** Bytes of the frame being assembled (for observability and tests). */
  get bufferedBytes(): number {
    return this.filled;
  }

  /** Feeds received bytes; returns the frames they complete, in order. Throws WireFormatError. */
  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let i = 0;
    while (i < chunk.length) {
      const partial = this.partial;
      if (partial !== undefined) {
        const take = Math.min(chunk.length - i, partial.length - this.filled);
        partial.set(chunk.subarray(i, i + take), this.filled);
        this.filled += take;
        i += take;
        if (this.filled === partial.length) {
          frames.push(partial);
          this.partial = undefined;
          this.filled = 0;
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
        this.partial = new Uint8Array(length);
      }
    }
    return frames;
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

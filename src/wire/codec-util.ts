// Shared helpers for the protobuf codecs: 64-bit integer conversion with range checks, and the wrapper
// that turns any decoder failure into a WireFormatError.
import { assert } from '../core/assert.js';
import { WireFormatError } from './errors.js';
import './uint64-fix.js';

const SAFE_MAX_BIG = BigInt(Number.MAX_SAFE_INTEGER);

/** A uint64 from the wire as a JS number; rejects values above Number.MAX_SAFE_INTEGER. */
export function safeNumber(value: bigint, what: string): number {
  if (value < 0n || value > SAFE_MAX_BIG) throw new WireFormatError(`${what} out of range: ${value}`);
  return Number(value);
}

/** A JS number for a uint64 field; encoding anything but a non-negative safe integer is a programmer error. */
export function toUint64(value: number, what: string): bigint {
  assert(Number.isSafeInteger(value) && value >= 0, `${what} is a non-negative safe integer (got ${value})`);
  return BigInt(value);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * A string from the wire that is valid text: the protobuf reader turns invalid UTF-8 into lone surrogates, which
 * encode back to other bytes (a key would alias another, a name would change on its way on).
 */
export function checkText(value: string, what: string): string {
  if (LONE_SURROGATE.test(value)) throw new WireFormatError(`${what} is not valid UTF-8`);
  return value;
}

/** Runs a decoder; anything it throws that is not already a WireFormatError becomes one. */
export function wireDecode<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof WireFormatError) throw err;
    const detail = err instanceof Error ? err.message : String(err);
    throw new WireFormatError(`malformed ${what}: ${detail}`, { cause: err });
  }
}

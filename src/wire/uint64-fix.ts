// Owns a fix of protons-runtime 8.0.1's uint64 encoder, installed on import (src/wire/codec-util.ts imports it).
// Its LongBits keeps the low word signed (`lo | 0`), so a value in [2^31, 2^32) (high word 0, low word's top bit
// set) is written as garbage: the right length, a wrong first byte, zeros after it. A dot counter, an epoch, an
// operation id or an HLC logical counter there made an unreadable frame (or a record the store cannot read back).
// Safe integers are written by the library's own number encoder instead, which is correct for them.
import { writer } from 'protons-runtime';

const SAFE_MAX_BIG = BigInt(Number.MAX_SAFE_INTEGER);
const FIXED = Symbol.for('quorumd.protonsUint64Fix');

interface Uint64Writer {
  uint64(value: bigint): unknown;
  uint64Number(value: number): unknown;
}

/** Installs the fix once; returns true when the writer needed it (for the test). */
export function installUint64Fix(): boolean {
  let proto = Object.getPrototypeOf(writer()) as Uint64Writer & { [FIXED]?: true };
  while (proto !== null && !Object.prototype.hasOwnProperty.call(proto, 'uint64')) proto = Object.getPrototypeOf(proto) as typeof proto;
  if (proto === null || proto[FIXED] === true) return false;
  const original = proto.uint64;
  proto.uint64 = function (this: Uint64Writer, value: bigint): unknown {
    if (typeof value === 'bigint' && value >= 0n && value <= SAFE_MAX_BIG) return this.uint64Number(Number(value));
    return original.call(this, value);
  };
  proto[FIXED] = true;
  return true;
}

installUint64Fix();

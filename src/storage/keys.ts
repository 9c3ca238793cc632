// Key order and argument checks shared by the storage adapters. Keys sort by Unicode code point, which is
// the byte order of their UTF-8 encoding and so exactly SQLite's BINARY collation of TEXT.
import { assert } from '../core/assert.js';

/** Largest page scan() hands out in one call. */
export const SCAN_LIMIT_MAX = 10_000;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Code point (= UTF-8 byte) order. JS `<` compares UTF-16 code units, which disagrees only when a surrogate
 * (U+D800-DFFF, part of an astral character) meets a unit in U+E000-FFFF: the astral character is larger.
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Move surrogates above U+FFFF and U+E000-FFFF down into their place; order within each group holds.
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

/** Keys must be well-formed Unicode: a lone surrogate has no UTF-8 form and would be stored altered. */
export function assertStorableKey(key: string): void {
  assert(typeof key === 'string' && !LONE_SURROGATE.test(key), `storage key ${JSON.stringify(key)} is well-formed Unicode`);
}

export function assertScanLimit(limit: number): void {
  assert(Number.isSafeInteger(limit) && limit >= 0 && limit <= SCAN_LIMIT_MAX, `scan limit ${limit} is in 0..${SCAN_LIMIT_MAX}`);
}

// Key order and argument checks shared by the storage adapters. Keys sort by Unicode code point, which is
// the byte order of their UTF-8 encoding and so exactly SQLite's BINARY collation of TEXT.
import { assert } from '../core/assert.js';

export { compareKeys } from '../core/keys.js';

/** Largest page scan() hands out in one call. */
export const SCAN_LIMIT_MAX = 10_000;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Keys must be well-formed Unicode: a lone surrogate has no UTF-8 form and would be stored altered. */
export function assertStorableKey(key: string): void {
  assert(typeof key === 'string' && !LONE_SURROGATE.test(key), `storage key ${JSON.stringify(key)} is well-formed Unicode`);
}

export function assertScanLimit(limit: number): void {
  assert(Number.isSafeInteger(limit) && limit >= 0 && limit <= SCAN_LIMIT_MAX, `scan limit ${limit} is in 0..${SCAN_LIMIT_MAX}`);
}

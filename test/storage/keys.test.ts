// Key order: compareKeys must agree with UTF-8 byte order (SQLite's BINARY collation) on all keys.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assertStorableKey, compareKeys } from '../../src/storage/keys.js';
import { TRICKY_KEYS, utf8Order } from './contract.js';

describe('compareKeys', () => {
  it('orders like UTF-8 bytes', () => {
    const key = fc.oneof(fc.string({ unit: 'binary', maxLength: 6 }), fc.constantFrom(...TRICKY_KEYS));
    fc.assert(
      fc.property(key, key, (a, b) => {
        expect(Math.sign(compareKeys(a, b))).toBe(Math.sign(utf8Order(a, b)));
      }),
      { numRuns: 5_000 },
    );
  });

  it('refuses lone surrogates, which have no UTF-8 form', () => {
    for (const k of ['\ud800', 'a\udc00', '\udc00\ud800', 'x\ud83d']) expect(() => assertStorableKey(k), k).toThrow(/well-formed/);
    for (const k of TRICKY_KEYS) assertStorableKey(k);
  });
});

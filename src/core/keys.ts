// Key order shared by the core (resume points of data streams) and the storage adapters (scan order): keys
// sort by Unicode code point, which is the byte order of their UTF-8 encoding and so SQLite's BINARY collation.

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

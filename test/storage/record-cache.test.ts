// The SqliteStore's record cache is bounded in bytes, not only in entries: 2,000 values of 1 MiB kept 2.45 GiB
// of RSS before (16,384 entries allowed ~16 GiB). Measured as the memory a store retains after reading back
// values far beyond the budget, and as the cache's own accounting.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config/defaults.js';
import { applyWrite, EMPTY_RECORD, type VersionedRecord } from '../../src/core/record.js';
import { openSqliteStore, type SqliteStore } from '../../src/storage/sqlite.js';
import { DATABASE_FILE } from '../../src/config/files.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;

function bigRecord(i: number, bytes: number): VersionedRecord {
  const value = new Uint8Array(bytes).fill(i % 251);
  return applyWrite(EMPTY_RECORD, {}, { actor: 'A', counter: i + 1 }, value, { wallMs: 1_000 + i, logical: 0 });
}

function retainedBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

describe('SqliteStore record cache', () => {
  let dir: string;
  let store: SqliteStore | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'quorumd-cache-'));
  });

  afterEach(async () => {
    await store?.close();
    store = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('retains at most about its byte budget after 160 values of 1 MiB are written and read back', async () => {
    store = openSqliteStore(join(dir, DATABASE_FILE));
    const before = retainedBytes();
    const count = 160;
    for (let i = 0; i < count; i++) await store.put(`big/${i}`, bigRecord(i, MiB));
    for (let i = 0; i < count; i++) expect(store.get(`big/${i}`)?.siblings[0]?.value?.length).toBe(MiB);
    const retained = retainedBytes() - before;
    // The default budget (32 MiB) plus room for the allocator; without a byte bound all 160 MiB stayed.
    expect(Math.round(retained / MiB)).toBeLessThan(64);
    expect(DEFAULTS.recordCacheBytesMax).toBe(32 * MiB);
    expect(store.cacheUsage.bytes).toBeLessThanOrEqual(DEFAULTS.recordCacheBytesMax);
  }, 60_000);

  it('keeps its accounting within a small budget under mixed sizes, overwrites and removals', async () => {
    const budget = 64 * 1024;
    store = openSqliteStore(join(dir, DATABASE_FILE), { cacheBytesMax: budget, cacheEntriesMax: 1_000 });
    for (let round = 0; round < 3; round++) {
      const writes: Array<Promise<void>> = [];
      for (let i = 0; i < 300; i++) {
        const key = `k/${i % 120}`;
        writes.push(i % 7 === 0 ? store.remove(key) : store.put(key, bigRecord(i, (i * 97) % 6_000)));
        store.get(`k/${(i * 13) % 120}`);
        store.get(`absent/${i}`);
        expect(store.cacheUsage.bytes).toBeLessThanOrEqual(budget);
      }
      await Promise.all(writes);
    }
    // Every read still answers what was written (the cache is only a shortcut).
    for (let i = 280; i < 300; i++) {
      if (i % 7 === 0) continue;
      const value = store.get(`k/${i % 120}`)?.siblings.at(-1)?.value;
      expect(value?.length).toBe((i * 97) % 6_000);
    }
    expect(store.cacheUsage.entries).toBeGreaterThan(0);
  });
});

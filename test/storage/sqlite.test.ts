// SqliteStore specifics: schema version refusal, durability pragmas, group commit batching, the failure
// path of a commit, and corrupt records surfacing as StorageCorruptionError.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageCorruptionError, StorageOpenError } from '../../src/storage/errors.js';
import { SchemaVersionError, StoreClosedError } from '../../src/storage/port.js';
import { SCHEMA_VERSION, type SqliteStore, openSqliteStore } from '../../src/storage/sqlite.js';
import { rec } from './contract.js';

describe('SqliteStore', () => {
  let dir: string;
  let path: string;
  const open: SqliteStore[] = [];
  const track = (store: SqliteStore): SqliteStore => (open.push(store), store);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'quorumd-sqlite-'));
    path = join(dir, 'data.db');
  });

  afterEach(async () => {
    for (const store of open.splice(0)) await store.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  function raw(fn: (db: Database.Database) => void): void {
    const db = new Database(path);
    try {
      fn(db);
    } finally {
      db.close();
    }
  }

  it('creates a new database at the current schema version', async () => {
    await track(openSqliteStore(path)).close();
    raw((db) => expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION));
    await track(openSqliteStore(path)).close(); // and reopens it
  });

  it('refuses a newer or unknown schema version', () => {
    raw((db) => db.pragma('user_version = 99'));
    const error = (() => {
      try {
        openSqliteStore(path);
      } catch (err) {
        return err;
      }
    })();
    expect(error).toBeInstanceOf(SchemaVersionError);
    expect(error).toMatchObject({ found: 99, supported: SCHEMA_VERSION });
    expect(String(error)).toMatch(/schema version 99; this quorumd supports version 1/);
  });

  it("refuses another program's database (tables but no version)", () => {
    raw((db) => db.exec('CREATE TABLE foreign_data (x)'));
    expect(() => openSqliteStore(path)).toThrow(SchemaVersionError);
  });

  it('refuses a file that is not a database with StorageOpenError', () => {
    writeFileSync(path, 'this is not a sqlite database, just some text that is long enough'.repeat(20));
    expect(() => openSqliteStore(path)).toThrow(StorageOpenError);
  });

  it('runs in WAL mode with synchronous=FULL', () => {
    const store = track(openSqliteStore(path));
    expect(store.settings).toEqual({ journalMode: 'wal', synchronous: 2 });
  });

  it('commits all writes of one turn in one transaction', async () => {
    const store = track(openSqliteStore(path));
    const before = store.commitCount;
    const writes = Array.from({ length: 1000 }, (_, i) => store.put(`k${i}`, rec(['a', i + 1, 'v'])));
    writes.push(store.setMeta('m', '1'));
    expect(store.commitCount).toBe(before); // nothing committed synchronously
    await Promise.all(writes);
    expect(store.commitCount).toBe(before + 1);
    await store.flush(); // nothing staged: no empty transaction
    expect(store.commitCount).toBe(before + 1);
  });

  it('commits early when the staged batch reaches its bound', async () => {
    const store = track(openSqliteStore(path, { stagedEntriesMax: 100 }));
    const writes = Array.from({ length: 1000 }, (_, i) => store.put(`k${i}`, rec(['a', i + 1, 'v'])));
    expect(store.commitCount).toBe(10);
    await Promise.all(writes);
    expect(store.commitCount).toBe(10);
    expect(store.stats().totalKeys).toBe(1000);
  });

  it('rejects a failed batch and then refuses writes, naming the cause', async () => {
    const store = track(openSqliteStore(path));
    await store.put('ok', rec(['a', 1, 'v']));
    raw((db) => db.exec("CREATE TRIGGER boom BEFORE INSERT ON kv WHEN NEW.key = 'bad' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"));
    const good = store.put('fine', rec(['a', 2, 'v']));
    const bad = store.put('bad', rec(['a', 3, 'v']));
    await expect(good).rejects.toThrow('injected failure'); // same transaction, same fate
    await expect(bad).rejects.toThrow('injected failure');
    const refused = store.put('later', rec(['a', 4, 'v']));
    await expect(refused).rejects.toBeInstanceOf(StoreClosedError);
    await expect(refused).rejects.toThrow(/failed a commit.*injected failure/);
    await expect(store.flush()).rejects.toBeInstanceOf(StoreClosedError);
    expect(store.get('ok')).toBeDefined();
    await store.close();
    const reopened = track(openSqliteStore(path));
    expect(reopened.get('fine')).toBeUndefined();
    expect(reopened.get('ok')).toBeDefined();
  });

  it('reports a corrupt record with StorageCorruptionError', async () => {
    const writer = track(openSqliteStore(path));
    await writer.put('k', rec(['a', 1, 'v']));
    await writer.close();
    raw((db) => db.prepare("UPDATE kv SET record = x'ffffffff' WHERE key = 'k'").run());
    const store = track(openSqliteStore(path)); // a fresh store: nothing cached, the bytes come from disk
    expect(() => store.get('k')).toThrow(StorageCorruptionError);
    expect(() => store.get('k')).toThrow(/corrupt record for key "k"/);
    expect(() => store.scan(undefined, 10)).toThrow(StorageCorruptionError);
  });

  it('serves hot keys from a bounded cache that follows writes', async () => {
    const store = track(openSqliteStore(path, { cacheEntriesMax: 2 }));
    await Promise.all(['a', 'b', 'c'].map((k, i) => store.put(k, rec(['x', i + 1, k]))));
    for (const k of ['a', 'b', 'c']) expect(new TextDecoder().decode(store.get(k)?.siblings[0]?.value ?? undefined)).toBe(k);
    expect(store.get('missing')).toBeUndefined();
    await store.put('missing', rec(['x', 9, 'now here']));
    expect(store.get('missing')?.siblings).toHaveLength(1);
    expect(store.stats()).toMatchObject({ liveKeys: 4, totalKeys: 4 });
    await store.put('a', rec(['x', 10, null])); // evicted earlier: the live count still comes out right
    expect(store.stats()).toMatchObject({ liveKeys: 3, totalKeys: 4 });
  });

  it('recounts stats on open', async () => {
    const store = track(openSqliteStore(path));
    await Promise.all([store.put('a', rec(['x', 1, 'v'])), store.put('b', rec(['x', 2, null]))]);
    await store.close();
    expect(track(openSqliteStore(path)).stats()).toMatchObject({ liveKeys: 1, totalKeys: 2 });
  });
});

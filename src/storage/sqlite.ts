// SQLite StoragePort (better-sqlite3): WAL with synchronous=FULL, so nothing is acknowledged before fsync, and
// group commit, so writes staged in one event-loop turn share one transaction. Owns the on-disk schema.
import Database from 'better-sqlite3';
import { chmodSync, closeSync, openSync } from 'node:fs';
import { setImmediate } from 'node:timers';
import { DEFAULTS } from '../config/defaults.js';
import { DATABASE_SIDE_FILE_SUFFIXES } from '../config/files.js';
import { assert } from '../core/assert.js';
import { type VersionedRecord, isDeleted } from '../core/record.js';
import { decodeRecord, encodeRecord } from '../wire/record.js';
import { StorageCorruptionError, StorageOpenError, storeFailedError } from './errors.js';
import { assertScanLimit, assertStorableKey, compareKeys } from './keys.js';
import { SchemaVersionError, type StoragePort, type StoreStats, type StoredEntry, StoreClosedError } from './port.js';

/** PRAGMA user_version of the layout below; any other non-zero version is refused. */
export const SCHEMA_VERSION = 1;
/** Staged writes (distinct keys and meta names) at which a commit runs at once instead of at turn end. */
export const STAGED_ENTRIES_MAX = 10_000;
/** Staged encoded bytes at which a commit runs at once (bounds memory held by one batch). */
export const STAGED_BYTES_MAX = 64 * 1024 * 1024;
/** How long a commit waits on a lock held by another connection (normally there is none). */
export const BUSY_TIMEOUT_MS = 5_000;

// Keys are TEXT in a UTF-8 database with BINARY collation: SQLite orders them by UTF-8 bytes, as compareKeys does.
const SCHEMA = `
  CREATE TABLE kv (
    key TEXT PRIMARY KEY COLLATE BINARY,
    record BLOB NOT NULL,
    live INTEGER NOT NULL CHECK (live IN (0, 1))
  );
  CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
  PRAGMA user_version = ${SCHEMA_VERSION};
`;

/** Decoded records kept in memory (least recently used out): saves a SELECT and a decode per hot-key access. */
export const CACHE_ENTRIES_MAX = DEFAULTS.recordCacheEntriesMax;
/** Bytes the cache may hold (its entries' estimated sizes, see CACHE_ENTRY_OVERHEAD_BYTES). */
export const CACHE_BYTES_MAX = DEFAULTS.recordCacheBytesMax;
/**
 * Memory of a cache entry beyond its encoded record and key: the Map slot, the decoded record's objects (siblings,
 * dots, contexts) and its typed-array headers. An estimate on the high side, so the bound holds.
 */
export const CACHE_ENTRY_OVERHEAD_BYTES = 256;

export interface SqliteStoreOptions {
  readonly cacheEntriesMax?: number;
  readonly cacheBytesMax?: number;
  readonly stagedEntriesMax?: number;
  readonly stagedBytesMax?: number;
  readonly busyTimeoutMs?: number;
}

/**
 * Mode of the database and its -wal/-shm files: the data is the daemon user's alone, whatever the mode of the
 * directory it is in (SQLite creates files 0644, and its -wal/-shm copy the database file's mode).
 */
export const DATABASE_FILE_MODE = 0o600;

/** Opens (creating if new) the database at `path`. Throws SchemaVersionError or StorageOpenError. */
export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): SqliteStore {
  const onDisk = path !== '' && path !== ':memory:' && !path.startsWith('file:');
  let db: Database.Database;
  try {
    // Created empty with the private mode before SQLite opens it (an empty file is a new database), so neither
    // it nor the -wal/-shm SQLite derives from it is ever readable by others, not even for a moment.
    if (onDisk) createPrivate(path);
    db = new Database(path, { timeout: options.busyTimeoutMs ?? BUSY_TIMEOUT_MS });
  } catch (err) {
    throw new StorageOpenError(`cannot open database ${path}: ${message(err)}`, { cause: err });
  }
  try {
    prepareSchema(db, path);
    // Files from before this rule (or made by another program) are narrowed too; -wal/-shm exist by now.
    if (onDisk) for (const file of [path, ...DATABASE_SIDE_FILE_SUFFIXES.map((s) => `${path}${s}`)]) restrictMode(file);
    return new SqliteStore(db, path, options);
  } catch (err) {
    db.close();
    if (err instanceof SchemaVersionError || err instanceof StorageOpenError) throw err;
    throw new StorageOpenError(`cannot open database ${path}: ${message(err)}`, { cause: err });
  }
}

function createPrivate(path: string): void {
  try {
    closeSync(openSync(path, 'wx', DATABASE_FILE_MODE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** chmod to DATABASE_FILE_MODE if the file exists (a file we may not chmod is not ours: refused). */
function restrictMode(file: string): void {
  try {
    chmodSync(file, DATABASE_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new StorageOpenError(`cannot make ${file} private (mode 0600): ${message(err)}`, { cause: err });
  }
}

function prepareSchema(db: Database.Database, path: string): void {
  const found = db.pragma('user_version', { simple: true });
  assert(typeof found === 'number', 'user_version is a number');
  if (found === 0) {
    // Version 0 with tables in it is some other program's database, not a new one.
    const objects = db.prepare('SELECT COUNT(*) FROM sqlite_master').pluck().get() as number;
    if (objects > 0) throw new SchemaVersionError(0, SCHEMA_VERSION, path);
    db.pragma("encoding = 'UTF-8'");
  } else if (found !== SCHEMA_VERSION) {
    throw new SchemaVersionError(found, SCHEMA_VERSION, path);
  }
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') throw new StorageOpenError(`cannot enable WAL on ${path} (journal mode stays ${String(mode)})`);
  db.pragma('synchronous = FULL');
  if (found === 0) db.transaction(() => db.exec(SCHEMA))();
  const encoding = db.pragma('encoding', { simple: true });
  if (encoding !== 'UTF-8') throw new StorageOpenError(`database ${path} uses encoding ${String(encoding)}, not UTF-8`);
}

/** A staged write, or a staged removal (record undefined). */
interface Staged {
  readonly record: VersionedRecord | undefined;
  readonly bytes: Uint8Array;
  readonly live: boolean;
}

interface Batch {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type Row = [key: string, record: Buffer];

/** A cached record (null: the key is known to be absent) and its estimated memory in bytes. */
interface CacheEntry {
  readonly record: VersionedRecord | null;
  readonly bytes: number;
}

export class SqliteStore implements StoragePort {
  readonly kind = 'sqlite' as const;
  readonly path: string;
  private readonly db: Database.Database;
  private readonly stagedEntriesMax: number;
  private readonly stagedBytesMax: number;
  private readonly selectRecord: Database.Statement<[string], Buffer>;
  private readonly selectLive: Database.Statement<[string], number>;
  /** key -> committed record, or null when the key is known to be absent. LRU (Map order) bounded in bytes and entries. */
  private readonly cache = new Map<string, CacheEntry>();
  private readonly cacheEntriesMax: number;
  private readonly cacheBytesMax: number;
  private cacheBytes = 0;
  private readonly scanFirst: Database.Statement<[number], Row>;
  private readonly scanAfter: Database.Statement<[string, number], Row>;
  private readonly writeBatch: (kv: ReadonlyMap<string, Staged>, meta: ReadonlyMap<string, string | undefined>) => void;
  /** Writes not yet committed; reads look here first. */
  private readonly staged = new Map<string, Staged>();
  /** Staged meta writes; undefined stages a removal. */
  private readonly stagedMeta = new Map<string, string | undefined>();
  private stagedBytes = 0;
  /** Staged entries that are removals (a scan reads this many more rows, as they may shadow some). */
  private stagedRemovals = 0;
  /** Every meta value, durable or staged (meta is small, so it all lives in memory). */
  private readonly meta = new Map<string, string>();
  private batch: Batch | undefined;
  private commitScheduled = false;
  private liveKeys: number;
  private totalKeys: number;
  private commits = 0;
  private recordsCommitted = 0;
  private closing: Promise<void> | undefined;
  private failure: unknown;

  constructor(db: Database.Database, path: string, options: SqliteStoreOptions = {}) {
    this.db = db;
    this.path = path;
    this.stagedEntriesMax = options.stagedEntriesMax ?? STAGED_ENTRIES_MAX;
    this.stagedBytesMax = options.stagedBytesMax ?? STAGED_BYTES_MAX;
    assert(this.stagedEntriesMax >= 1 && this.stagedBytesMax >= 1, 'staging limits are positive');
    this.selectRecord = db.prepare<[string], Buffer>('SELECT record FROM kv WHERE key = ?').pluck();
    this.selectLive = db.prepare<[string], number>('SELECT live FROM kv WHERE key = ?').pluck();
    this.cacheEntriesMax = options.cacheEntriesMax ?? CACHE_ENTRIES_MAX;
    this.cacheBytesMax = options.cacheBytesMax ?? CACHE_BYTES_MAX;
    assert(this.cacheEntriesMax >= 1 && this.cacheBytesMax >= 1, 'cache limits are positive');
    this.scanFirst = db.prepare<[number], Row>('SELECT key, record FROM kv ORDER BY key LIMIT ?').raw();
    this.scanAfter = db.prepare<[string, number], Row>('SELECT key, record FROM kv WHERE key > ? ORDER BY key LIMIT ?').raw();
    const upsert = db.prepare<[string, Uint8Array, number]>(
      'INSERT INTO kv (key, record, live) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET record = excluded.record, live = excluded.live',
    );
    const upsertMeta = db.prepare<[string, string]>(
      'INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
    );
    const deleteKey = db.prepare<[string]>('DELETE FROM kv WHERE key = ?');
    const deleteMeta = db.prepare<[string]>('DELETE FROM meta WHERE name = ?');
    this.writeBatch = db.transaction((kv: ReadonlyMap<string, Staged>, meta: ReadonlyMap<string, string | undefined>) => {
      for (const [key, s] of kv) {
        if (s.record === undefined) deleteKey.run(key);
        else upsert.run(key, s.bytes, s.live ? 1 : 0);
      }
      for (const [name, value] of meta) {
        if (value === undefined) deleteMeta.run(name);
        else upsertMeta.run(name, value);
      }
    });
    const counts = db.prepare('SELECT COUNT(*), COALESCE(SUM(live), 0) FROM kv').raw().get() as [number, number];
    this.totalKeys = counts[0];
    this.liveKeys = counts[1];
    for (const [name, value] of db.prepare('SELECT name, value FROM meta').raw().all() as Array<[string, string]>) {
      this.meta.set(name, value);
    }
  }

  /** Transactions committed so far (for tests and metrics: shows how well group commit batches). */
  get commitCount(): number {
    return this.commits;
  }

  /** What the record cache holds now (for tests and memory figures). */
  get cacheUsage(): { entries: number; bytes: number } {
    return { entries: this.cache.size, bytes: this.cacheBytes };
  }

  /** The durability settings in force on this connection. */
  get settings(): { journalMode: string; synchronous: number } {
    this.checkOpen();
    return {
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: Number(this.db.pragma('synchronous', { simple: true })),
    };
  }

  get(key: string): VersionedRecord | undefined {
    this.checkOpen();
    const staged = this.staged.get(key);
    if (staged !== undefined) return staged.record;
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached.record ?? undefined;
    }
    const bytes = this.selectRecord.get(key);
    const record = bytes === undefined ? undefined : this.decode(key, bytes);
    this.remember(key, record ?? null, bytes?.length ?? 0);
    return record;
  }

  put(key: string, record: VersionedRecord): Promise<void> {
    assertStorableKey(key);
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    const bytes = encodeRecord(record);
    const live = !isDeleted(record);
    const before = this.stateOf(key);
    this.remember(key, record, bytes.length);
    if (!before.exists) this.totalKeys += 1;
    if (before.live) this.liveKeys -= 1;
    if (live) this.liveKeys += 1;
    this.stage(key, { record, bytes, live });
    return this.enqueue();
  }

  remove(key: string): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    const before = this.stateOf(key);
    if (!before.exists) return this.flush();
    this.totalKeys -= 1;
    if (before.live) this.liveKeys -= 1;
    this.remember(key, null, 0);
    this.stage(key, { record: undefined, bytes: new Uint8Array(0), live: false });
    return this.enqueue();
  }

  /** Whether the key exists (staged or stored) and has a live sibling. */
  private stateOf(key: string): { exists: boolean; live: boolean } {
    const staged = this.staged.get(key);
    if (staged !== undefined) return { exists: staged.record !== undefined, live: staged.live };
    const cached = this.cache.get(key)?.record;
    if (cached === null) return { exists: false, live: false };
    if (cached !== undefined) return { exists: true, live: !isDeleted(cached) };
    const stored = this.selectLive.get(key);
    return { exists: stored !== undefined, live: stored === 1 };
  }

  private stage(key: string, entry: Staged): void {
    const previous = this.staged.get(key);
    this.stagedBytes += entry.bytes.length + (previous === undefined ? key.length : -previous.bytes.length);
    const wasRemoval = previous !== undefined && previous.record === undefined;
    this.stagedRemovals += (entry.record === undefined ? 1 : 0) - (wasRemoval ? 1 : 0);
    this.staged.set(key, entry);
  }

  scan(afterKey: string | undefined, limit: number): StoredEntry[] {
    this.checkOpen();
    assertScanLimit(limit);
    if (limit === 0) return [];
    const rowLimit = limit + this.stagedRemovals;
    const rows = afterKey === undefined ? this.scanFirst.all(rowLimit) : this.scanAfter.all(afterKey, rowLimit);
    const staged = [...this.staged.keys()].filter((k) => afterKey === undefined || compareKeys(k, afterKey) > 0).sort(compareKeys);
    // Merge two sorted lists; a staged write shadows the row for its key. The first `limit` rows suffice:
    // any row in the answer is preceded by fewer than `limit` rows.
    const out: StoredEntry[] = [];
    let i = 0;
    let j = 0;
    while (out.length < limit && (i < rows.length || j < staged.length)) {
      const row = rows[i];
      const key = staged[j];
      const c = row === undefined ? 1 : key === undefined ? -1 : compareKeys(row[0], key);
      if (c < 0) {
        const [k, bytes] = row as Row;
        out.push({ key: k, record: this.decode(k, bytes) });
        i += 1;
      } else {
        const record = (this.staged.get(key as string) as Staged).record;
        if (record !== undefined) out.push({ key: key as string, record });
        j += 1;
        if (c === 0) i += 1;
      }
    }
    return out;
  }

  stats(): StoreStats {
    this.checkOpen();
    return { liveKeys: this.liveKeys, totalKeys: this.totalKeys, commits: this.commits, recordsCommitted: this.recordsCommitted };
  }

  getMeta(name: string): string | undefined {
    this.checkOpen();
    return this.meta.get(name);
  }

  deleteMeta(name: string): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    if (!this.meta.has(name)) return this.flush();
    this.meta.delete(name);
    this.stagedMeta.set(name, undefined);
    this.stagedBytes += name.length;
    return this.enqueue();
  }

  metaNames(prefix: string): string[] {
    this.checkOpen();
    const out: string[] = [];
    for (const name of this.meta.keys()) if (name.startsWith(prefix)) out.push(name);
    return out;
  }

  setMeta(name: string, value: string): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    const previous = this.stagedMeta.get(name);
    this.stagedBytes += value.length + (previous === undefined ? name.length : -previous.length);
    this.meta.set(name, value);
    this.stagedMeta.set(name, value);
    return this.enqueue();
  }

  flush(): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    return this.batch === undefined ? Promise.resolve() : this.batch.promise;
  }

  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    const failedBefore = this.failure !== undefined;
    if (!failedBefore) this.commit();
    this.db.close();
    const failedNow = !failedBefore && this.failure !== undefined;
    this.closing = failedNow ? Promise.reject(this.failure) : Promise.resolve();
    this.closing.catch(() => undefined); // the batch's writers see the error too; don't demand a handler here
    return this.closing;
  }

  private enqueue(): Promise<void> {
    if (this.batch === undefined) this.batch = newBatch();
    const { promise } = this.batch;
    if (this.staged.size + this.stagedMeta.size >= this.stagedEntriesMax || this.stagedBytes >= this.stagedBytesMax) {
      this.commit();
    } else if (!this.commitScheduled) {
      this.commitScheduled = true;
      // Two check phases later, not one: messages queued in this turn (to replicas) go out first, so the
      // network round trip overlaps our fsync instead of waiting for it; meanwhile more writes join the batch.
      setImmediate(() =>
        setImmediate(() => {
          this.commitScheduled = false;
          if (this.closing === undefined && this.failure === undefined) this.commit();
        }),
      );
    }
    return promise;
  }

  /** Writes every staged entry in one transaction, then settles the batch. */
  private commit(): void {
    const batch = this.batch;
    if (batch === undefined) return;
    this.batch = undefined;
    try {
      this.writeBatch(this.staged, this.stagedMeta);
    } catch (err) {
      // Staged writes stay visible (the caller already acted on them) but will never be durable.
      this.failure = err;
      batch.reject(err);
      return;
    }
    this.commits += 1;
    this.recordsCommitted += this.staged.size;
    this.staged.clear();
    this.stagedMeta.clear();
    this.stagedBytes = 0;
    this.stagedRemovals = 0;
    batch.resolve();
  }

  /** Caches `record` (null: absent) for `key`; `encodedBytes` is its stored size (its memory's main part). */
  private remember(key: string, record: VersionedRecord | null, encodedBytes: number): void {
    const previous = this.cache.get(key);
    if (previous !== undefined) {
      this.cache.delete(key);
      this.cacheBytes -= previous.bytes;
    }
    const bytes = encodedBytes + 2 * key.length + CACHE_ENTRY_OVERHEAD_BYTES;
    // A record bigger than an eighth of the budget would flush most of it at once: read from disk instead.
    if (bytes > this.cacheBytesMax >>> 3) return;
    this.cache.set(key, { record, bytes });
    this.cacheBytes += bytes;
    // Evict in bulk, down to 7/8 of either limit: taking the oldest one at a time walks the Map's deleted slots
    // from its start on every call (V8 compacts them only on rehash), which made each write cost tens of
    // microseconds.
    if (this.cache.size > this.cacheEntriesMax + (this.cacheEntriesMax >>> 3) || this.cacheBytes > this.cacheBytesMax) {
      const entriesTarget = Math.min(this.cacheEntriesMax, this.cache.size);
      const bytesTarget = Math.min(this.cacheBytesMax - (this.cacheBytesMax >>> 3), this.cacheBytes);
      for (const [oldest, entry] of this.cache) {
        if (this.cache.size <= entriesTarget && this.cacheBytes <= bytesTarget) break;
        this.cache.delete(oldest);
        this.cacheBytes -= entry.bytes;
      }
    }
  }

  private decode(key: string, bytes: Uint8Array): VersionedRecord {
    try {
      return decodeRecord(bytes);
    } catch (err) {
      throw new StorageCorruptionError(`corrupt record for key ${JSON.stringify(key)} in ${this.path}: ${message(err)}`, {
        cause: err,
      });
    }
  }

  private refusal(): StoreClosedError | undefined {
    if (this.closing !== undefined) return new StoreClosedError();
    return this.failure === undefined ? undefined : storeFailedError(this.failure);
  }

  private checkOpen(): void {
    if (this.closing !== undefined) throw new StoreClosedError();
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

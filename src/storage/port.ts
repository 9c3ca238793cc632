// The storage port: what the runtime needs from a durable local replica store. Reads are synchronous and see
// every staged write; writes resolve only once durable (fsync'd), and concurrent writes share one commit.
import type { VersionedRecord } from '../core/record.js';

export interface StoredEntry {
  readonly key: string;
  readonly record: VersionedRecord;
}

export interface StoreStats {
  /** Keys with at least one live (non-tombstone) sibling. */
  readonly liveKeys: number;
  /** All stored keys, tombstones included. */
  readonly totalKeys: number;
  /** Durable commits so far and the records they wrote (records / commits shows group commit at work). */
  readonly commits: number;
  readonly recordsCommitted: number;
}

export interface StoragePort {
  readonly kind: 'memory' | 'sqlite';

  /** Latest record for the key, including writes staged but not yet durable. */
  get(key: string): VersionedRecord | undefined;

  /**
   * Stages `record` as the new state of `key` (visible to get() at once) and resolves when it is durable.
   * The caller has already merged it with the previous state. Writes staged in the same event-loop turn are
   * committed in one transaction (group commit). Rejects if the commit fails; the store then refuses writes.
   */
  put(key: string, record: VersionedRecord): Promise<void>;

  /**
   * Removes `key` entirely (a tombstone purged at causal stability: src/core/anti-entropy.ts), visible to
   * get() and scan() at once; resolves when durable. Removing an absent key is a no-op.
   */
  remove(key: string): Promise<void>;

  /** Up to `limit` entries with key > `afterKey` (or from the start), in key order, including staged writes. */
  scan(afterKey: string | undefined, limit: number): StoredEntry[];

  stats(): StoreStats;

  /** Small named values (membership, dot reservation, ...), committed durably and in order with put(). */
  getMeta(name: string): string | undefined;
  setMeta(name: string, value: string): Promise<void>;
  /** Removes a meta value (durably, in order with the rest); removing an absent name is a no-op. */
  deleteMeta(name: string): Promise<void>;
  /** Names of the meta values that start with `prefix` (meta lives in memory: this is cheap). */
  metaNames(prefix: string): string[];

  /** Resolves when everything staged so far is durable. */
  flush(): Promise<void>;

  /** Flushes, then closes. Further calls fail. Idempotent. */
  close(): Promise<void>;
}

/** The database was written by an unknown or newer schema version: refuse to open rather than guess. */
export class SchemaVersionError extends Error {
  readonly found: number;
  readonly supported: number;
  constructor(found: number, supported: number, path: string) {
    super(`database ${path} has schema version ${found}; this quorumd supports version ${supported}`);
    this.name = 'SchemaVersionError';
    this.found = found;
    this.supported = supported;
  }
}

/** The store is closed or failed a commit; no further writes are accepted. */
export class StoreClosedError extends Error {
  constructor(message = 'the store is closed') {
    super(message);
    this.name = 'StoreClosedError';
  }
}

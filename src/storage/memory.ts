// In-memory StoragePort for unit tests and the simulator: a Map plus a sorted key index. Writes are durable
// as soon as they are staged; an optional hook fails commits to exercise the runtime's error path.
import { type VersionedRecord, isDeleted } from '../core/record.js';
import { storeFailedError } from './errors.js';
import { assertScanLimit, assertStorableKey, compareKeys } from './keys.js';
import { type StoragePort, type StoreStats, type StoredEntry, StoreClosedError } from './port.js';

export interface MemoryStoreOptions {
  /** Asked on every commit; an Error returned fails that commit and the store, as a failing disk would. */
  readonly commitError?: () => Error | undefined;
}

export class MemoryStore implements StoragePort {
  readonly kind = 'memory' as const;
  private readonly records = new Map<string, VersionedRecord>();
  /** Every key, in compareKeys order (deletes are tombstones; remove() takes purged ones out). */
  private readonly sortedKeys: string[] = [];
  private readonly meta = new Map<string, string>();
  private readonly commitError: (() => Error | undefined) | undefined;
  private liveKeys = 0;
  /** Every put is its own commit here (nothing to batch: no disk). */
  private commits = 0;
  private recordsCommitted = 0;
  private closed = false;
  private failure: Error | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    this.commitError = options.commitError;
  }

  get(key: string): VersionedRecord | undefined {
    this.checkOpen();
    return this.records.get(key);
  }

  put(key: string, record: VersionedRecord): Promise<void> {
    assertStorableKey(key);
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    const previous = this.records.get(key);
    if (previous === undefined) this.sortedKeys.splice(this.indexAfter(key, false), 0, key);
    else if (!isDeleted(previous)) this.liveKeys -= 1;
    if (!isDeleted(record)) this.liveKeys += 1;
    this.records.set(key, record);
    this.recordsCommitted += 1;
    return this.commit();
  }

  remove(key: string): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    const previous = this.records.get(key);
    if (previous === undefined) return Promise.resolve();
    if (!isDeleted(previous)) this.liveKeys -= 1;
    this.records.delete(key);
    this.sortedKeys.splice(this.indexAfter(key, false), 1);
    return this.commit();
  }

  scan(afterKey: string | undefined, limit: number): StoredEntry[] {
    this.checkOpen();
    assertScanLimit(limit);
    const start = afterKey === undefined ? 0 : this.indexAfter(afterKey, true);
    return this.sortedKeys.slice(start, start + limit).map((key) => ({ key, record: this.records.get(key) as VersionedRecord }));
  }

  stats(): StoreStats {
    this.checkOpen();
    return { liveKeys: this.liveKeys, totalKeys: this.records.size, commits: this.commits, recordsCommitted: this.recordsCommitted };
  }

  getMeta(name: string): string | undefined {
    this.checkOpen();
    return this.meta.get(name);
  }

  deleteMeta(name: string): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    if (!this.meta.delete(name)) return Promise.resolve();
    return this.commit();
  }

  metaNames(prefix: string): string[] {
    this.checkOpen();
    return [...this.meta.keys()].filter((name) => name.startsWith(prefix));
  }

  setMeta(name: string, value: string): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    this.meta.set(name, value);
    return this.commit();
  }

  flush(): Promise<void> {
    const refusal = this.refusal();
    return refusal === undefined ? Promise.resolve() : Promise.reject(refusal);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private commit(): Promise<void> {
    const error = this.commitError?.();
    this.commits += 1;
    if (error === undefined) return Promise.resolve();
    this.failure = error;
    return Promise.reject(error);
  }

  /** Index of the first key > `key` (strict) or >= `key`. */
  private indexAfter(key: string, strict: boolean): number {
    let lo = 0;
    let hi = this.sortedKeys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareKeys(this.sortedKeys[mid] as string, key);
      if (c < 0 || (strict && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private refusal(): StoreClosedError | undefined {
    if (this.closed) return new StoreClosedError();
    return this.failure === undefined ? undefined : storeFailedError(this.failure);
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }
}

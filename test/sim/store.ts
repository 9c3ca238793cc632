// A device's store in the simulator: the storage port (src/storage/port.ts) the real runtime runs on, on virtual
// time. Writes are visible at once and durable later, in order (the cluster decides when); a crash keeps only
// what was durable. Its faults model broken storage: acknowledging before durable, keeping one sibling only.
import type { VersionedRecord } from '../../src/core/record.js';
import { lwwWinner } from '../../src/core/record.js';
import type { StoragePort, StoreStats, StoredEntry } from '../../src/storage/port.js';

export interface SimStoreHooks {
  /**
   * Makes a staged change durable later, in order with the device's other writes: `apply` runs then (unless
   * the device crashed meanwhile), and the returned promise resolves after it.
   */
  readonly persist: (label: string, apply: () => void) => Promise<void>;
  /** Resolves once everything persisted so far is durable (lost in a crash, like the writes it waits for). */
  readonly flushed: () => Promise<void>;
  /** A record's visible (durable: false) or durable copy changed; `purged` on the removal of a key. */
  readonly changed: (key: string, durable: boolean) => void;
  readonly staged?: (key: string, before: VersionedRecord | undefined, record: VersionedRecord) => void;
  readonly purging?: (key: string, current: VersionedRecord) => void;
  readonly metaSet?: (name: string) => void;
}

export interface SimStoreFaults {
  /** Writes resolve (are acknowledged) at once, before they are durable. */
  readonly ackBeforeDurable: boolean;
  /** Only the last-writer-wins sibling of a record is kept: concurrent writes silently dropped. */
  readonly lwwStore: boolean;
}

export class SimStore implements StoragePort {
  readonly kind = 'memory' as const;
  records = new Map<string, VersionedRecord>();
  readonly durableRecords = new Map<string, VersionedRecord>();
  meta = new Map<string, string>();
  readonly durableMeta = new Map<string, string>();
  /** Sorted keys of `records`, rebuilt lazily (scans are rare, writes are many). */
  private sorted: string[] | undefined;
  hooks: SimStoreHooks;

  constructor(
    readonly id: string,
    hooks: SimStoreHooks,
    private readonly faults: SimStoreFaults,
  ) {
    this.hooks = hooks;
  }

  get(key: string): VersionedRecord | undefined {
    return this.records.get(key);
  }

  put(key: string, record: VersionedRecord): Promise<void> {
    let stored = record;
    if (this.faults.lwwStore && record.siblings.length > 1) {
      const winner = lwwWinner(record);
      stored = { context: record.context, siblings: winner === undefined ? [] : [winner] };
    }
    const before = this.records.get(key);
    this.hooks.staged?.(key, before, record);
    if (before === undefined) this.sorted = undefined;
    this.records.set(key, stored);
    this.hooks.changed(key, false);
    return this.durably(`put ${key}`, () => {
      this.durableRecords.set(key, stored);
      this.hooks.changed(key, true);
    });
  }

  remove(key: string): Promise<void> {
    const current = this.records.get(key);
    if (current === undefined) return Promise.resolve();
    this.hooks.purging?.(key, current);
    this.records.delete(key);
    this.sorted = undefined;
    this.hooks.changed(key, false);
    return this.durably(`purge ${key}`, () => {
      this.durableRecords.delete(key);
      this.hooks.changed(key, true);
    });
  }

  scan(afterKey: string | undefined, limit: number): StoredEntry[] {
    this.sorted ??= [...this.records.keys()].sort();
    const out: StoredEntry[] = [];
    for (const key of this.sorted) {
      if (afterKey !== undefined && key <= afterKey) continue;
      if (out.length >= limit) break;
      out.push({ key, record: this.records.get(key) as VersionedRecord });
    }
    return out;
  }

  stats(): StoreStats {
    let live = 0;
    for (const record of this.records.values()) if (record.siblings.some((s) => s.value !== null)) live += 1;
    return { liveKeys: live, totalKeys: this.records.size, commits: 0, recordsCommitted: 0 };
  }

  getMeta(name: string): string | undefined {
    return this.meta.get(name);
  }

  setMeta(name: string, value: string): Promise<void> {
    this.meta.set(name, value);
    this.hooks.metaSet?.(name);
    return this.durably(`meta ${name}`, () => this.durableMeta.set(name, value));
  }

  deleteMeta(name: string): Promise<void> {
    this.meta.delete(name);
    return this.durably(`meta -${name}`, () => this.durableMeta.delete(name));
  }

  metaNames(prefix: string): string[] {
    return [...this.meta.keys()].filter((n) => n.startsWith(prefix));
  }

  flush(): Promise<void> {
    return this.faults.ackBeforeDurable ? Promise.resolve() : this.hooks.flushed();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** A crash: what was staged and not durable is gone. */
  crash(): void {
    this.records = new Map(this.durableRecords);
    this.meta = new Map(this.durableMeta);
    this.sorted = undefined;
  }

  private durably(label: string, apply: () => void): Promise<void> {
    const done = this.hooks.persist(label, apply);
    return this.faults.ackBeforeDurable ? Promise.resolve() : done;
  }
}

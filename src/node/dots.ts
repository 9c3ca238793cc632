// Dot allocation for writes this device coordinates. The counter never goes backwards, also across crashes:
// blocks of counters are reserved durably before use, so a restart skips unused ones but never reuses one
// (a reused dot silently loses writes: Riak's kv679).
import { assert } from '../core/assert.js';
import type { Dot } from '../core/vv.js';
import { META, readMeta, writeMeta } from '../storage/meta.js';
import type { StoragePort } from '../storage/port.js';

export class DotAllocator {
  private readonly store: StoragePort;
  private readonly actor: string;
  private readonly blockSize: number;
  private counter: number;
  /** Highest counter durably reserved. */
  private reservedDurable: number;
  /** A reservation in progress (to `reservingTo`), or undefined. */
  private reserving: Promise<void> | undefined;
  private reservingTo = 0;

  private constructor(store: StoragePort, actor: string, blockSize: number, start: number) {
    this.store = store;
    this.actor = actor;
    this.blockSize = blockSize;
    this.counter = start;
    this.reservedDurable = start;
  }

  /** Opens the allocator: every counter at or below the stored reservation is treated as used. */
  static async open(store: StoragePort, actor: string, blockSize: number): Promise<DotAllocator> {
    assert(Number.isSafeInteger(blockSize) && blockSize >= 2, 'dot reservation block holds at least 2');
    const start = readMeta(store, META.dotReserved) ?? 0;
    const allocator = new DotAllocator(store, actor, blockSize, start);
    await allocator.reserve();
    return allocator;
  }

  /** The writer these dots name. */
  get writer(): string {
    return this.actor;
  }

  /** The highest counter handed out so far (0 before the first). */
  get current(): number {
    return this.counter;
  }

  /** A fresh dot. Resolves at once unless the reserved block ran out before the next one was durable. */
  async next(): Promise<Dot> {
    if (this.counter + 1 > this.reservedDurable) await this.reserve();
    this.counter += 1;
    assert(this.counter <= this.reservedDurable, 'dots are used only once durably reserved');
    if (this.reservedDurable - this.counter < this.blockSize / 2 && this.reserving === undefined) {
      void this.reserve().catch(() => undefined); // failure resurfaces on the next awaited reserve()
    }
    return { actor: this.actor, counter: this.counter };
  }

  private reserve(): Promise<void> {
    if (this.reserving !== undefined) return this.reserving;
    const to = Math.max(this.counter, this.reservedDurable) + this.blockSize;
    this.reservingTo = to;
    this.reserving = writeMeta(this.store, META.dotReserved, to).then(
      () => {
        this.reservedDurable = Math.max(this.reservedDurable, this.reservingTo);
        this.reserving = undefined;
      },
      (error: unknown) => {
        this.reserving = undefined;
        throw error;
      },
    );
    return this.reserving;
  }
}

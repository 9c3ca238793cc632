// Gives memory back after bulk work (a start-up scan, a catch-up, a big data stream): V8 collects old-space
// garbage only under allocation pressure, so an idle daemon would otherwise keep the peak of its last bulk
// operation resident for good — tens of MB on a device with 1 GB. A full collection then lets V8 shrink the heap.
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

/** A full garbage collection now (through V8's `gc`, exposed once at first use). */
export function collectGarbage(): void {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

/** Collects after bulk work, at most once per `minIntervalMs` and outside the caller's turn. */
export class GarbageCollector {
  private lastMs = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly minIntervalMs: number,
    private readonly monotonicMs: () => number = () => performance.now(),
  ) {}

  private usedAfterLast = 0;

  /** Collects when the heap in use grew by more than `growthBytes` since the last collection (bulk work done). */
  check(growthBytes: number): void {
    if (getHeapStatistics().used_heap_size - this.usedAfterLast > growthBytes) this.request();
  }

  /** Some bulk work just ended: collect soon (coalesced with other requests). */
  request(): void {
    if (this.timer !== undefined) return;
    const wait = Math.max(0, this.lastMs + this.minIntervalMs - this.monotonicMs());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.lastMs = this.monotonicMs();
      collectGarbage();
      this.usedAfterLast = getHeapStatistics().used_heap_size;
    }, Math.max(wait, 100));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

// Virtual time for the simulator: a priority queue of events ordered by (time, insertion order), and a running
// hash of every event executed (the trace) so two runs of the same seed can be compared exactly.
export interface SimEvent {
  readonly at: number;
  readonly seq: number;
  readonly label: string;
  readonly run: () => void;
}

export class Scheduler {
  now = 0;
  executed = 0;
  private readonly heap: SimEvent[] = [];
  private seq = 0;
  readonly trace: TraceHash;

  constructor(keepTrace: boolean) {
    this.trace = new TraceHash(keepTrace);
  }

  get pending(): number {
    return this.heap.length;
  }

  schedule(at: number, label: string, run: () => void): void {
    const event: SimEvent = { at: Math.max(at, this.now), seq: this.seq++, label, run };
    this.heap.push(event);
    let i = this.heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, this.heap[parent] as SimEvent)) break;
      this.heap[i] = this.heap[parent] as SimEvent;
      i = parent;
    }
    this.heap[i] = event;
  }

  nextTime(): number | undefined {
    return this.heap[0]?.at;
  }

  /** Runs the earliest event; false when there is none. */
  step(): boolean {
    const event = this.pop();
    if (event === undefined) return false;
    this.now = event.at;
    this.executed += 1;
    this.trace.add(`${event.at} ${event.label}`);
    event.run();
    return true;
  }

  private pop(): SimEvent | undefined {
    const top = this.heap[0];
    const last = this.heap.pop();
    if (top === undefined || last === undefined || this.heap.length === 0) return top;
    let i = 0;
    const n = this.heap.length;
    while (true) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      let best = last;
      if (l < n && before(this.heap[l] as SimEvent, best)) {
        m = l;
        best = this.heap[l] as SimEvent;
      }
      if (r < n && before(this.heap[r] as SimEvent, best)) m = r;
      if (m === i) break;
      this.heap[i] = this.heap[m] as SimEvent;
      i = m;
    }
    this.heap[i] = last;
    return top;
  }
}

function before(x: SimEvent, y: SimEvent): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

/** A 64-bit (two 32-bit lanes) running hash of trace lines; optionally keeps the lines for --verbose. */
export class TraceHash {
  private h1 = 0xdeadbeef;
  private h2 = 0x41c6ce57;
  readonly lines: string[] | undefined;

  constructor(keep: boolean) {
    this.lines = keep ? [] : undefined;
  }

  add(line: string): void {
    this.lines?.push(line);
    let h1 = this.h1;
    let h2 = this.h2;
    for (let i = 0; i < line.length; i++) {
      const ch = line.charCodeAt(i);
      h1 = Math.imul(h1 ^ ch, 2654435761);
      h2 = Math.imul(h2 ^ ch, 1597334677);
    }
    h1 = Math.imul(h1 ^ 10, 2654435761);
    h2 = Math.imul(h2 ^ 10, 1597334677);
    this.h1 = h1;
    this.h2 = h2;
  }

  digest(): string {
    let h1 = Math.imul(this.h1 ^ (this.h1 >>> 16), 2246822507) ^ Math.imul(this.h2 ^ (this.h2 >>> 13), 3266489909);
    let h2 = Math.imul(this.h2 ^ (this.h2 >>> 16), 2246822507) ^ Math.imul(this.h1 ^ (this.h1 >>> 13), 3266489909);
    h1 >>>= 0;
    h2 >>>= 0;
    return h2.toString(16).padStart(8, '0') + h1.toString(16).padStart(8, '0');
  }
}

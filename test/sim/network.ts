// Simulated network on virtual time: per-message random delay (so messages reorder), loss, duplication, and
// partitions (groups of nodes; a message across the cut is refused at send time and dropped in flight).
import type { Rng } from './rng.js';
import type { Scheduler } from './scheduler.js';

export interface NetworkConditions {
  minDelayMs: number;
  maxDelayMs: number;
  /** Probability that a message is silently lost. */
  lossRate: number;
  /** Probability that a message is delivered twice (each copy with its own delay). */
  duplicateRate: number;
}

export interface NetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  cut: number;
}

export class Network<M> {
  readonly stats: NetworkStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, cut: 0 };
  /** node -> partition group; empty when the network is whole. */
  private groupOf = new Map<string, number>();

  constructor(
    private readonly rng: Rng,
    private readonly scheduler: Scheduler,
    public conditions: NetworkConditions,
    private readonly deliver: (from: string, to: string, msg: M) => void,
    private readonly describe: (msg: M) => string,
  ) {}

  /** Splits the nodes into groups; nodes not named form no group and reach nobody. */
  partition(groups: ReadonlyArray<readonly string[]>): void {
    this.groupOf = new Map();
    groups.forEach((group, i) => {
      for (const node of group) this.groupOf.set(node, i);
    });
  }

  heal(): void {
    this.groupOf = new Map();
  }

  get partitioned(): boolean {
    return this.groupOf.size > 0;
  }

  describePartition(): string {
    if (!this.partitioned) return 'whole';
    const groups = new Map<number, string[]>();
    for (const [node, g] of this.groupOf) groups.set(g, [...(groups.get(g) ?? []), node]);
    return [...groups.values()].map((g) => g.join(',')).join(' | ');
  }

  connected(a: string, b: string): boolean {
    if (a === b || this.groupOf.size === 0) return true;
    const ga = this.groupOf.get(a);
    return ga !== undefined && ga === this.groupOf.get(b);
  }

  /** Sends `msg`; false when `to` is across a cut right now (the sender learns at once, like a failed dial). */
  send(from: string, to: string, msg: M): boolean {
    if (!this.connected(from, to)) {
      this.stats.cut += 1;
      return false;
    }
    this.stats.sent += 1;
    if (this.rng.chance(this.conditions.lossRate)) {
      this.stats.lost += 1;
      return true;
    }
    const copies = this.rng.chance(this.conditions.duplicateRate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated += 1;
    const label = `net ${from}->${to} ${this.describe(msg)}`;
    for (let i = 0; i < copies; i++) {
      const delay = this.rng.int(this.conditions.minDelayMs, this.conditions.maxDelayMs);
      this.scheduler.schedule(this.scheduler.now + delay, label, () => {
        if (!this.connected(from, to)) {
          this.stats.cut += 1;
          return;
        }
        this.stats.delivered += 1;
        this.deliver(from, to, msg);
      });
    }
    return true;
  }
}

// Version vectors and dots: the causal-history vocabulary of the record model. A dot (actor, counter) names
// one write event; a version vector maps actor -> highest counter seen and stands for every dot at or below.
import { assert } from './assert.js';

export interface Dot {
  readonly actor: string;
  readonly counter: number;
}

/** actor -> highest counter covered. Counters are positive integers; a missing actor means 0. */
export type VersionVector = Readonly<Record<string, number>>;

export const EMPTY_VV: VersionVector = Object.freeze({});

export function vvGet(vv: VersionVector, actor: string): number {
  return Object.prototype.hasOwnProperty.call(vv, actor) ? (vv[actor] as number) : 0;
}

/** True when the vector's causal history includes the dot. */
export function covers(vv: VersionVector, dot: Dot): boolean {
  return vvGet(vv, dot.actor) >= dot.counter;
}

/** Pointwise maximum. */
export function vvJoin(a: VersionVector, b: VersionVector): VersionVector {
  const out: Record<string, number> = { ...a };
  for (const actor of Object.keys(b)) {
    const n = b[actor] as number;
    if (n > vvGet(out, actor)) out[actor] = n;
  }
  return out;
}

/** a >= b pointwise: every event b has seen, a has seen too. */
export function vvDescends(a: VersionVector, b: VersionVector): boolean {
  for (const actor of Object.keys(b)) {
    if (vvGet(a, actor) < (b[actor] as number)) return false;
  }
  return true;
}

export function vvEqual(a: VersionVector, b: VersionVector): boolean {
  return vvDescends(a, b) && vvDescends(b, a);
}

export type Ordering = 'equal' | 'before' | 'after' | 'concurrent';

/** How a relates to b: 'before' means a happened before b (b descends a). */
export function vvCompare(a: VersionVector, b: VersionVector): Ordering {
  const aGeB = vvDescends(a, b);
  const bGeA = vvDescends(b, a);
  if (aGeB && bGeA) return 'equal';
  if (aGeB) return 'after';
  if (bGeA) return 'before';
  return 'concurrent';
}

export function vvConcurrent(a: VersionVector, b: VersionVector): boolean {
  return vvCompare(a, b) === 'concurrent';
}

/** The vector with the dot added (assumes the dot's counter is the actor's newest event). */
export function vvWithDot(vv: VersionVector, dot: Dot): VersionVector {
  assert(Number.isSafeInteger(dot.counter) && dot.counter > 0, 'dot counter is a positive integer');
  if (vvGet(vv, dot.actor) >= dot.counter) return vv;
  return { ...vv, [dot.actor]: dot.counter };
}

export function dotEqual(a: Dot, b: Dot): boolean {
  return a.actor === b.actor && a.counter === b.counter;
}

export function dotKey(dot: Dot): string {
  return `${dot.actor}:${dot.counter}`;
}

/** Canonical (sorted) entries, for deterministic encoding and comparison. */
export function vvEntries(vv: VersionVector): Array<[string, number]> {
  return Object.keys(vv)
    .sort()
    .map((actor) => [actor, vv[actor] as number]);
}

export function vvFromEntries(entries: Iterable<readonly [string, number]>): VersionVector {
  const out: Record<string, number> = {};
  for (const [actor, n] of entries) {
    assert(Number.isSafeInteger(n) && n > 0, 'version vector counters are positive integers');
    if (n > vvGet(out, actor)) out[actor] = n;
  }
  return out;
}

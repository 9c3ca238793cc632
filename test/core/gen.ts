// Realistic record histories for property tests: a few actors coordinate writes whose client contexts come from
// earlier states (as a client's read would), and replicas merge each other's states. Tracks true causality.
import fc from 'fast-check';
import { type Hlc, HLC_ZERO, hlcTick } from '../../src/core/hlc.js';
import { EMPTY_RECORD, type Sibling, type VersionedRecord, applyWrite, mergeRecords } from '../../src/core/record.js';
import { type Dot, covers, dotKey, vvGet } from '../../src/core/vv.js';

export const ACTORS = ['a', 'b', 'c'] as const;

export type Step =
  /** Actor `actor` coordinates a write; the client's context is states[from % n] (a past read), or blind. */
  | { readonly kind: 'write'; readonly actor: number; readonly from: number | null; readonly value: number | null; readonly wall: number }
  /** Replica `into` merges replica `from`'s current state (anti-entropy, read repair, a replicated write). */
  | { readonly kind: 'merge'; readonly into: number; readonly from: number };

export interface WriteEvent {
  readonly dot: Dot;
  readonly value: Uint8Array | null;
  /** Dot keys of every write this one causally follows (what its client had seen, transitively). */
  readonly hist: ReadonlySet<string>;
}

export interface History {
  /** Every record that ever existed, in order: EMPTY_RECORD, then each replica state after each step. */
  readonly states: readonly VersionedRecord[];
  /** The replicas' final states (one per actor). */
  readonly replicas: readonly VersionedRecord[];
  readonly writes: ReadonlyMap<string, WriteEvent>;
  /** The next unused counter per actor, for tests that add writes of their own. */
  readonly nextCounter: readonly number[];
  readonly hlcs: readonly Hlc[];
}

const writeStep: fc.Arbitrary<Step> = fc.record({
  kind: fc.constant('write' as const),
  actor: fc.nat({ max: ACTORS.length - 1 }),
  from: fc.option(fc.nat(), { nil: null }),
  value: fc.option(fc.nat({ max: 255 }), { nil: null, freq: 5 }),
  wall: fc.nat({ max: 30 }),
});

const mergeStep: fc.Arbitrary<Step> = fc.record({
  kind: fc.constant('merge' as const),
  into: fc.nat({ max: ACTORS.length - 1 }),
  from: fc.nat({ max: ACTORS.length - 1 }),
});

export const stepsArb: fc.Arbitrary<Step[]> = fc.array(fc.oneof(writeStep, mergeStep), { minLength: 1, maxLength: 30 });

export const historyArb: fc.Arbitrary<History> = stepsArb.map(buildHistory);

/** The dot keys a client "sees" when it reads `record`: its siblings and everything they follow. */
export function histOf(record: VersionedRecord, writes: ReadonlyMap<string, WriteEvent>): Set<string> {
  const hist = new Set<string>();
  for (const s of record.siblings) {
    const k = dotKey(s.dot);
    hist.add(k);
    for (const h of writes.get(k)?.hist ?? []) hist.add(h);
  }
  return hist;
}

export function buildHistory(steps: readonly Step[]): History {
  const replicas: VersionedRecord[] = ACTORS.map(() => EMPTY_RECORD);
  const states: VersionedRecord[] = [EMPTY_RECORD];
  const writes = new Map<string, WriteEvent>();
  const counters = ACTORS.map(() => 0);
  const hlcs: Hlc[] = ACTORS.map(() => HLC_ZERO);
  for (const step of steps) {
    if (step.kind === 'write') {
      const source = step.from === null ? EMPTY_RECORD : (states[step.from % states.length] as VersionedRecord);
      const counter = (counters[step.actor] as number) + 1;
      counters[step.actor] = counter;
      const dot: Dot = { actor: ACTORS[step.actor] as string, counter };
      const hlc = hlcTick(hlcs[step.actor] as Hlc, step.wall);
      hlcs[step.actor] = hlc;
      const value = step.value === null ? null : Uint8Array.of(step.value, counter);
      writes.set(dotKey(dot), { dot, value, hist: histOf(source, writes) });
      const next = applyWrite(replicas[step.actor] as VersionedRecord, source.context, dot, value, hlc);
      replicas[step.actor] = next;
      states.push(next);
    } else {
      const next = mergeRecords(replicas[step.into] as VersionedRecord, replicas[step.from] as VersionedRecord);
      replicas[step.into] = next;
      states.push(next);
    }
  }
  return { states, replicas, writes, nextCounter: counters.map((c) => c + 1), hlcs };
}

/**
 * What is wrong with `record` against the true history, or undefined: every sibling is a real write with its
 * value; siblings are pairwise concurrent; every real write the context covers is a sibling or is followed
 * by one (nothing was dropped without a write that had seen it).
 */
export function truthProblem(record: VersionedRecord, writes: ReadonlyMap<string, WriteEvent>): string | undefined {
  for (const s of record.siblings) {
    const w = writes.get(dotKey(s.dot));
    if (w === undefined) return `sibling ${dotKey(s.dot)} is no real write`;
    if (!bytesEqual(w.value, s.value)) return `sibling ${dotKey(s.dot)} has the wrong value`;
  }
  for (const s of record.siblings) {
    const hist = writes.get(dotKey(s.dot))?.hist ?? new Set<string>();
    for (const t of record.siblings) {
      if (hist.has(dotKey(t.dot))) return `sibling ${dotKey(t.dot)} is causally older than sibling ${dotKey(s.dot)}`;
    }
  }
  for (const [k, w] of writes) {
    if (!covers(record.context, w.dot)) continue;
    const kept = record.siblings.some((s) => s.dot.actor === w.dot.actor && s.dot.counter === w.dot.counter);
    const followed = record.siblings.some((s) => writes.get(dotKey(s.dot))?.hist.has(k) === true);
    if (!kept && !followed) return `write ${k} is covered by the context but neither kept nor superseded`;
  }
  for (const actor of Object.keys(record.context)) {
    const issued = [...writes.values()].filter((w) => w.dot.actor === actor).length;
    if (vvGet(record.context, actor) > issued) return `context names ${actor}:${vvGet(record.context, actor)}, never issued`;
  }
  return undefined;
}

export function bytesEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Same dots (recordsEqual) and, sibling by sibling, the same values and clocks. */
export function siblingsIdentical(a: VersionedRecord, b: VersionedRecord): boolean {
  if (a.siblings.length !== b.siblings.length) return false;
  return a.siblings.every((s, i) => {
    const t = b.siblings[i] as Sibling;
    return s.dot.actor === t.dot.actor && s.dot.counter === t.dot.counter && bytesEqual(s.value, t.value) &&
      s.hlc.wallMs === t.hlc.wallMs && s.hlc.logical === t.hlc.logical;
  });
}

export function pick<T>(items: readonly T[], index: number): T {
  return items[index % items.length] as T;
}

export function dotsOf(record: VersionedRecord): string[] {
  return record.siblings.map((s) => dotKey(s.dot));
}

// Versioned records: the per-key value as a set of concurrent siblings plus a causal context (dotted version
// vectors, Almeida et al.). Owns the merge rules: a write supersedes exactly the siblings its context covers.
import { assert } from './assert.js';
import { type Hlc, hlcCompare } from './hlc.js';
import { type Dot, type VersionVector, covers, dotEqual, dotKey, vvEqual, vvJoin, vvWithDot, EMPTY_VV } from './vv.js';

export interface Sibling {
  /** The write event that created this version; dot.actor is the writer (coordinating device). */
  readonly dot: Dot;
  /** The value, or null for a tombstone (a delete). */
  readonly value: Uint8Array | null;
  /** Hybrid logical clock of the write, for deterministic last-writer-wins resolution on request. */
  readonly hlc: Hlc;
}

export interface VersionedRecord {
  /** Every write event this replica has seen for the key (or superseded). Covers every sibling's dot. */
  readonly context: VersionVector;
  /** Versions not superseded by any other seen write: one normally, several after concurrent writes. */
  readonly siblings: readonly Sibling[];
}

export const EMPTY_RECORD: VersionedRecord = Object.freeze({ context: EMPTY_VV, siblings: Object.freeze([]) });

/**
 * Join of two replicas' records (commutative, associative, idempotent). A sibling survives unless the other
 * side has seen its dot (covers it) without keeping it, i.e. the other side saw it superseded.
 */
export function mergeRecords(a: VersionedRecord, b: VersionedRecord): VersionedRecord {
  const siblings: Sibling[] = [];
  const seen = new Set<string>();
  for (const s of a.siblings) {
    const inB = b.siblings.some((t) => dotEqual(t.dot, s.dot));
    if (inB || !covers(b.context, s.dot)) {
      siblings.push(s);
      seen.add(dotKey(s.dot));
    }
  }
  for (const s of b.siblings) {
    if (seen.has(dotKey(s.dot))) continue;
    if (!covers(a.context, s.dot)) siblings.push(s);
  }
  siblings.sort(compareSiblings);
  return { context: vvJoin(a.context, b.context), siblings };
}

/**
 * The record after a client write (value) or delete (null) with causal context `clientContext` (from an
 * earlier read; empty for a blind write), coordinated by the dot's actor. Siblings the client had seen are
 * replaced; siblings it had not seen stay as concurrent versions.
 */
export function applyWrite(
  local: VersionedRecord,
  clientContext: VersionVector,
  dot: Dot,
  value: Uint8Array | null,
  hlc: Hlc,
): VersionedRecord {
  assert(!covers(local.context, dot), `dot ${dotKey(dot)} is new (dot counters never go backwards)`);
  const kept = local.siblings.filter((s) => !covers(clientContext, s.dot));
  const siblings = [...kept, { dot, value, hlc }];
  siblings.sort(compareSiblings);
  return { context: vvWithDot(vvJoin(local.context, clientContext), dot), siblings };
}

/** Deterministic sibling order (by actor, then counter) so equal records encode identically. */
export function compareSiblings(a: Sibling, b: Sibling): number {
  if (a.dot.actor !== b.dot.actor) return a.dot.actor < b.dot.actor ? -1 : 1;
  return a.dot.counter - b.dot.counter;
}

/** Same causal context and same sibling dots (values follow from dots: a dot names one write). */
export function recordsEqual(a: VersionedRecord, b: VersionedRecord): boolean {
  if (a.siblings.length !== b.siblings.length) return false;
  if (!vvEqual(a.context, b.context)) return false;
  for (let i = 0; i < a.siblings.length; i++) {
    if (!dotEqual((a.siblings[i] as Sibling).dot, (b.siblings[i] as Sibling).dot)) return false;
  }
  return true;
}

/** True when `b` adds nothing to `a` (merging b into a changes nothing). */
export function recordContains(a: VersionedRecord, b: VersionedRecord): boolean {
  return recordsEqual(mergeRecords(a, b), a);
}

export function liveSiblings(record: VersionedRecord): Sibling[] {
  return record.siblings.filter((s) => s.value !== null);
}

export function isDeleted(record: VersionedRecord): boolean {
  return record.siblings.every((s) => s.value === null);
}

/** Last-writer-wins pick by (hlc, actor, counter); a deterministic total order. May be a tombstone. */
export function lwwWinner(record: VersionedRecord): Sibling | undefined {
  let best: Sibling | undefined;
  for (const s of record.siblings) {
    if (best === undefined) {
      best = s;
      continue;
    }
    const c = hlcCompare(s.hlc, best.hlc);
    if (c > 0 || (c === 0 && compareSiblings(s, best) > 0)) best = s;
  }
  return best;
}

/** Structural checks for a record decoded from the wire or disk (caller turns false into a typed error). */
export function recordWellFormed(record: VersionedRecord): boolean {
  const dots = new Set<string>();
  for (const s of record.siblings) {
    if (!Number.isSafeInteger(s.dot.counter) || s.dot.counter <= 0) return false;
    if (s.dot.actor.length === 0) return false;
    if (!covers(record.context, s.dot)) return false;
    const k = dotKey(s.dot);
    if (dots.has(k)) return false;
    dots.add(k);
  }
  for (const n of Object.values(record.context)) {
    if (!Number.isSafeInteger(n) || n <= 0) return false;
  }
  return true;
}

// Versioned records: the per-key value as a set of concurrent siblings plus a causal context (dotted version
// vectors, Almeida et al.). Owns the merge rules: a write supersedes exactly the siblings its context covers.
import { equals as equalBytes } from 'uint8arrays';
import { assert } from './assert.js';
import { type Hlc, hlcCompare } from './hlc.js';
import { type Dot, type VersionVector, covers, dotEqual, dotKey, vvEqual, vvGet, vvJoin, vvWithDot, EMPTY_VV } from './vv.js';

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
 * Most siblings a record may hold: a record with more is refused when decoded from a peer, and a client write
 * that would leave more is refused (see SIBLINGS_PER_WRITE_MAX). Siblings pile up only from concurrent writes
 * (different coordinators, or clients writing with stale context tokens) that nobody resolves; Riak refuses
 * writes at 100 by default. The alive siblings in any join of replicas number at most SIBLINGS_PER_WRITE_MAX
 * per writer that coordinated one of them (each writer's record held them all at its last write), so this
 * leaves room for 16 such writers: a home cluster has a handful of devices (and an incarnation each per crash).
 */
export const SIBLINGS_MAX = 1024;
/** Most siblings a client write may leave on its coordinator (the write is refused above; resolve first). */
export const SIBLINGS_PER_WRITE_MAX = 64;
/**
 * Largest dot counter accepted (and the most a context may cover of one writer). A writer's counter grows by
 * one per write plus at most one reservation block per start (DEFAULTS.dotReserveBlock): at a million writes a
 * second it needs 8.9 years to get here, so no real writer does; a forged counter near MAX_SAFE_INTEGER is
 * refused instead of being carried into arithmetic that leaves the safe integers.
 */
export const DOT_COUNTER_MAX = 2 ** 48;
/**
 * Most writers one record's context may name. Contexts are never pruned, so this counts every writer that ever
 * wrote the key: a few devices, each with a new incarnation after every crash. 4,096 is decades of that.
 */
export const CONTEXT_ACTORS_MAX = 4096;
/** Longest writer name: a peer ID (52 characters for Ed25519, 46 for RSA) plus `~` and an incarnation. */
export const ACTOR_CHARS_MAX = 128;

/** Limits on the size of a record (see recordWellFormed). */
export interface RecordLimits {
  readonly siblingsMax: number;
  readonly contextActorsMax: number;
}

/** What a record from a peer may hold. */
export const RECORD_LIMITS: RecordLimits = Object.freeze({ siblingsMax: SIBLINGS_MAX, contextActorsMax: CONTEXT_ACTORS_MAX });

/**
 * What a record read back from this device's own store may hold: no count limit. It holds only what this device
 * accepted or wrote, and a merge of two records within RECORD_LIMITS can exceed them (a join has every writer's
 * siblings and every writer): refusing to read such a record back would lose the key here. Peers refuse it.
 */
export const STORED_RECORD_LIMITS: RecordLimits = Object.freeze({ siblingsMax: Infinity, contextActorsMax: Infinity });

/**
 * Join of two replicas' records (commutative, associative, idempotent). A sibling survives unless the other
 * side has seen its dot (covers it) without keeping it, i.e. the other side saw it superseded.
 * O(n): one pass over both sibling lists in dot order (records keep them sorted; an unsorted list is sorted first).
 */
export function mergeRecords(a: VersionedRecord, b: VersionedRecord): VersionedRecord {
  const as = inDotOrder(a.siblings);
  const bs = inDotOrder(b.siblings);
  const siblings: Sibling[] = [];
  let i = 0;
  let j = 0;
  while (i < as.length || j < bs.length) {
    const s = as[i];
    const t = bs[j];
    const c = s === undefined ? 1 : t === undefined ? -1 : compareSiblings(s, t);
    if (c === 0) {
      siblings.push(s as Sibling); // on both sides: kept (a's copy; a dot names one write)
      i += 1;
      j += 1;
    } else if (c < 0) {
      if (!covers(b.context, (s as Sibling).dot)) siblings.push(s as Sibling);
      i += 1;
    } else {
      if (!covers(a.context, (t as Sibling).dot)) siblings.push(t as Sibling);
      j += 1;
    }
  }
  return { context: vvJoin(a.context, b.context), siblings };
}

/** The siblings in dot order (the list itself when it already is). */
function inDotOrder(siblings: readonly Sibling[]): readonly Sibling[] {
  for (let k = 1; k < siblings.length; k++) {
    if (compareSiblings(siblings[k - 1] as Sibling, siblings[k] as Sibling) > 0) return [...siblings].sort(compareSiblings);
  }
  return siblings;
}

/**
 * The record without anything of `actor` above counter `issuedMax`: its context stops covering that writer
 * there and siblings with such dots go. For the writer itself (which knows its highest issued counter
 * exactly), what is removed never happened: a record covering it was forged or corrupted, and keeping the
 * coverage would make every later write of that writer look superseded (lost on merge) here. Returns
 * `record` itself when there is nothing to remove.
 */
export function withoutUnissued(record: VersionedRecord, actor: string, issuedMax: number): VersionedRecord {
  const forgedSibling = record.siblings.some((s) => s.dot.actor === actor && s.dot.counter > issuedMax);
  if (vvGet(record.context, actor) <= issuedMax && !forgedSibling) return record;
  const context = vvAtMost(record.context, actor, issuedMax);
  const siblings = forgedSibling ? record.siblings.filter((s) => s.dot.actor !== actor || s.dot.counter <= issuedMax) : record.siblings;
  return { context, siblings };
}

/**
 * What a client has seen of a key, as its context token carries it: every dot `vv` covers except the `unseen`
 * ones. A read sees everything its vector covers (no exceptions); after a write the client has seen what it
 * superseded plus its own new dot, but not the versions the write left concurrent, and a vector alone cannot
 * say so when such a version has the same writer as the new dot and an older counter (see contextAfterWrite).
 */
export interface ClientContext {
  readonly vv: VersionVector;
  /** Dots `vv` covers that the client never saw (sorted, no duplicates). */
  readonly unseen: readonly Dot[];
}

/** True when the client context includes the dot: covered by its vector and not one of its exceptions. */
export function contextCovers(vv: VersionVector, unseen: readonly Dot[], dot: Dot): boolean {
  return covers(vv, dot) && !unseen.some((u) => dotEqual(u, dot));
}

/**
 * The record after a client write (value) or delete (null) with causal context `clientContext` minus the
 * dots `unseen` (from an earlier read or write; empty for a blind write), coordinated by the dot's actor.
 * Siblings the client had seen are replaced; siblings it had not seen stay as concurrent versions.
 *
 * A record's context is a plain vector and must never cover an unseen dot it does not hold (a merge would
 * take that as superseded and drop the version), so it takes the client context only below each actor's
 * oldest unseen dot. The superseded siblings held here are covered anyway (by the local context); a
 * superseded version not yet here may come back as a sibling, never the other way round.
 */
export function applyWrite(
  local: VersionedRecord,
  clientContext: VersionVector,
  dot: Dot,
  value: Uint8Array | null,
  hlc: Hlc,
  unseen: readonly Dot[] = [],
): VersionedRecord {
  assert(Number.isSafeInteger(dot.counter) && dot.counter > 0, 'a dot counter is a positive integer');
  // The dot is the writer's newest (its allocator never goes backwards, also across restarts), so a local record
  // covering it holds coverage the writer never issued (from a forged or corrupt record): dropped, never trusted.
  const prior = withoutUnissued(local, dot.actor, dot.counter - 1);
  assert(!covers(prior.context, dot), `dot ${dotKey(dot)} is new (dot counters never go backwards)`);
  const kept = prior.siblings.filter((s) => !contextCovers(clientContext, unseen, s.dot));
  const siblings = [...kept, { dot, value, hlc }];
  siblings.sort(compareSiblings);
  // Likewise a client context (issued from such a record) never carries coverage of the writer past its dot.
  const seen = vvAtMost(belowUnseen(clientContext, unseen), dot.actor, dot.counter - 1);
  return { context: vvWithDot(vvJoin(prior.context, seen), dot), siblings };
}

/** The vector covering at most `max` of `actor` (the vector itself when it already does). */
export function vvAtMost(vv: VersionVector, actor: string, max: number): VersionVector {
  if (vvGet(vv, actor) <= max) return vv;
  const out: Record<string, number> = { ...vv };
  if (max > 0) out[actor] = max;
  else delete out[actor];
  return out;
}

/** The vector without any dot at or above an unseen dot of the same actor. */
function belowUnseen(vv: VersionVector, unseen: readonly Dot[]): VersionVector {
  if (unseen.length === 0) return vv;
  const out: Record<string, number> = { ...vv };
  for (const u of unseen) {
    const n = Math.min(vvGet(out, u.actor), u.counter - 1);
    if (n > 0) out[u.actor] = n;
    else delete out[u.actor];
  }
  return out;
}

/**
 * The context to hand back to the client after its write applyWrite(local, sent.vv, dot, …, sent.unseen)
 * (`sent` undefined for a blind write, which supersedes the local context): what the write superseded plus
 * its own dot, never the siblings it left concurrent, so a follow-up write with it replaces exactly the
 * client's own write and what it had seen. Not the written record's context: that covers the concurrent
 * siblings too, and a write sent with it would silently drop another client's acknowledged write.
 *
 * The vector is the sent one joined with the dot. Dot counters are per writer, not per key, so when a kept
 * sibling has the dot's writer and an older counter the joined vector covers it: such siblings become
 * exceptions. The sent exceptions stay (this coordinator may not have their versions yet) unless they are
 * dead here (covered by the local context and not a sibling: superseded, so covering them changes nothing),
 * which keeps the list as short as the set of versions still concurrent.
 */
export function contextAfterWrite(local: VersionedRecord, sent: ClientContext | undefined, dot: Dot): ClientContext {
  const seen = sent ?? { vv: local.context, unseen: [] };
  // Never past the dot for its own writer (see applyWrite: coverage beyond it was never issued).
  const vv = vvJoin(vvAtMost(seen.vv, dot.actor, dot.counter - 1), { [dot.actor]: dot.counter });
  const live = (d: Dot): boolean => !covers(local.context, d) || local.siblings.some((s) => dotEqual(s.dot, d));
  const candidates = [
    ...seen.unseen.filter(live),
    ...local.siblings.filter((s) => !contextCovers(seen.vv, seen.unseen, s.dot)).map((s) => s.dot),
  ];
  const unseen: Dot[] = [];
  const keys = new Set<string>();
  for (const d of candidates) {
    if (!covers(vv, d) || dotEqual(d, dot) || keys.has(dotKey(d))) continue;
    keys.add(dotKey(d));
    unseen.push(d);
  }
  unseen.sort(compareDots);
  return { vv, unseen };
}

/** Deterministic sibling order (by actor, then counter) so equal records encode identically. */
export function compareSiblings(a: Sibling, b: Sibling): number {
  return compareDots(a.dot, b.dot);
}

/**
 * Whether `record` holds `sibling` itself: a sibling with its dot, its value and its HLC. A record that covers the
 * dot without holding it saw the write superseded (or was forged to cover it); one holding another sibling under
 * the same dot holds another write (a forged or reused dot), not this one.
 */
export function holdsSibling(record: VersionedRecord, sibling: Sibling): boolean {
  const held = record.siblings.find((s) => dotEqual(s.dot, sibling.dot));
  if (held === undefined || hlcCompare(held.hlc, sibling.hlc) !== 0) return false;
  if (held.value === null || sibling.value === null) return held.value === sibling.value;
  return equalBytes(held.value, sibling.value);
}

/** By actor, then counter. */
export function compareDots(a: Dot, b: Dot): number {
  if (a.actor !== b.actor) return a.actor < b.actor ? -1 : 1;
  return a.counter - b.counter;
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

/**
 * Structural checks for a record decoded from the wire or disk (caller turns false into a typed error): what a
 * real writer can produce. Positive safe counters up to DOT_COUNTER_MAX, non-empty writer names up to
 * ACTOR_CHARS_MAX, distinct dots each covered by the context, at most `limits` siblings and writers. Whether a context covers dots its writer never issued only the writer can tell
 * (see withoutUnissued).
 */
export function recordWellFormed(record: VersionedRecord, limits: RecordLimits = RECORD_LIMITS): boolean {
  if (record.siblings.length > limits.siblingsMax) return false;
  const dots = new Set<string>();
  for (const s of record.siblings) {
    if (!counterValid(s.dot.counter) || !actorValid(s.dot.actor)) return false;
    if (!covers(record.context, s.dot)) return false;
    const k = dotKey(s.dot);
    if (dots.has(k)) return false;
    dots.add(k);
  }
  let actors = 0;
  for (const actor of Object.keys(record.context)) {
    if (!actorValid(actor) || !counterValid(record.context[actor])) return false;
    actors += 1;
  }
  return actors <= limits.contextActorsMax;
}

function counterValid(n: number | undefined): boolean {
  return n !== undefined && Number.isSafeInteger(n) && n > 0 && n <= DOT_COUNTER_MAX;
}

function actorValid(actor: string): boolean {
  return actor.length > 0 && actor.length <= ACTOR_CHARS_MAX;
}

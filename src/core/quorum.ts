// Quorum math: how many acknowledgements a consistency level needs, counted over the voters of the committed
// membership configuration (never over whoever happens to be reachable).
import { assert } from './assert.js';
import { InvalidConsistencyError } from './errors.js';

export type ConsistencyLevel = 'one' | 'quorum' | 'all' | number;

/** ⌊N/2⌋+1. */
export function majority(voterCount: number): number {
  assert(Number.isSafeInteger(voterCount) && voterCount >= 1, 'a configuration has at least one voter');
  return Math.floor(voterCount / 2) + 1;
}

/** Parses `one|quorum|all|<n>` (as given in a query string); undefined means the default, quorum. */
export function parseConsistency(text: string | undefined, name: 'w' | 'r' | 'wait'): ConsistencyLevel {
  if (text === undefined || text === '') return 'quorum';
  if (text === 'one' || text === 'quorum' || text === 'all') return text;
  if (/^[1-9][0-9]{0,3}$/.test(text)) return Number(text);
  throw new InvalidConsistencyError(`${name}=${JSON.stringify(text)} is not one, quorum, all or a positive integer`);
}

/** Acknowledgements required for `level` with `voterCount` voters; impossible levels are an error. */
export function requiredAcks(level: ConsistencyLevel, voterCount: number, name: 'w' | 'r' = 'w'): number {
  assert(Number.isSafeInteger(voterCount) && voterCount >= 1, 'a configuration has at least one voter');
  if (level === 'one') return 1;
  if (level === 'quorum') return majority(voterCount);
  if (level === 'all') return voterCount;
  if (!Number.isSafeInteger(level) || level < 1) {
    throw new InvalidConsistencyError(`${name}=${level} must be at least 1`);
  }
  if (level > voterCount) {
    throw new InvalidConsistencyError(`${name}=${level} is impossible: the cluster has ${voterCount} voter(s)`);
  }
  return level;
}

export function consistencyName(level: ConsistencyLevel): string {
  return typeof level === 'number' ? String(level) : level;
}

/**
 * The stronger of two levels for `voterCount` voters (the one needing more acks; `b` on a tie). A write's `wait`
 * goes through this with its `w`, so waiting never weakens the write level.
 */
export function strongerLevel(a: ConsistencyLevel, b: ConsistencyLevel, voterCount: number): ConsistencyLevel {
  if (voterCount < 1) return b; // no configuration yet: the write is refused elsewhere
  return requiredAcks(b, voterCount, 'w') >= requiredAcks(a, voterCount, 'w') ? b : a;
}

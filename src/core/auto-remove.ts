// The auto-remove policy (autoRemoveAfterMs): which voters have been down since when, and which of them this
// device proposes to remove now. Pure: the caller reads health and the clock, and proposes the removals.

/** One heartbeat's view for the policy. */
export interface AutoRemoveInput {
  readonly self: string;
  /** The voters of the current configuration, in configuration order. */
  readonly voters: readonly string[];
  /** Whether each voter other than `self` is alive now (the failure detector's word). */
  readonly alive: (peer: string) => boolean;
  /** Since when (monotonic ms) each voter has been down, from the previous step; not modified. */
  readonly downSince: ReadonlyMap<string, number>;
  readonly nowMs: number;
  /** Propose removing a voter down this long; 0 or less: never. */
  readonly afterMs: number;
}

export interface AutoRemoveStep {
  /** The updated down-since times, to pass to the next step. */
  readonly downSince: Map<string, number>;
  /** Voters to propose removing now, with how long each was down. */
  readonly remove: ReadonlyArray<{ readonly peer: string; readonly downMs: number }>;
}

/**
 * Tracks since when each voter is down, and proposes removing those down for `afterMs`: only the first alive
 * voter by peer ID proposes (one proposer, not all of them at once), and only one attempt per period (a
 * proposed voter's time restarts).
 */
export function autoRemoveStep(input: AutoRemoveInput): AutoRemoveStep {
  const { self, voters, nowMs, afterMs } = input;
  const downSince = new Map(input.downSince);
  for (const peer of voters) {
    if (peer === self) continue;
    if (input.alive(peer)) downSince.delete(peer);
    else if (!downSince.has(peer)) downSince.set(peer, nowMs);
  }
  for (const peer of downSince.keys()) if (!voters.includes(peer)) downSince.delete(peer);
  const remove: Array<{ peer: string; downMs: number }> = [];
  if (afterMs <= 0 || !voters.includes(self)) return { downSince, remove };
  const aliveVoters = voters.filter((p) => p === self || !downSince.has(p));
  if (aliveVoters.sort()[0] !== self) return { downSince, remove };
  for (const [peer, since] of downSince) {
    if (nowMs - since < afterMs) continue;
    downSince.set(peer, nowMs); // one attempt per period
    remove.push({ peer, downMs: nowMs - since });
  }
  return { downSince, remove };
}

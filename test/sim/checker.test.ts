// Tests of the simulator itself: determinism (same seed, same trace), that it exercises what it claims to,
// and that its checker does fail on deliberately broken runtimes (a checker that never fails is useless).
import { describe, expect, it, vi } from 'vitest';
import { HintBook } from '../../src/node/hints.js';
import type { InvariantId } from './checker.js';
import { KNOWN_BUG_NAMES, SIM_BUGS, type SimBug } from './cluster.js';
import { Network } from './network.js';
import { Rng } from './rng.js';
import { Scheduler } from './scheduler.js';
import { type SimResult, runSimulation } from './sim.js';

describe('determinism', () => {
  it('the same seed gives an identical trace, with or without keeping the trace lines', async () => {
    for (const seed of [1, 7, 12345]) {
      const first = await runSimulation(seed);
      const second = await runSimulation(seed);
      const verbose = await runSimulation(seed, { keepTrace: true });
      expect(second.traceHash).toBe(first.traceHash);
      expect(second.events).toBe(first.events);
      expect(second.stats).toEqual(first.stats);
      expect(verbose.traceHash).toBe(first.traceHash);
      expect(verbose.trace?.length).toBeGreaterThan(first.events);
    }
  });

  it('different seeds give different traces', async () => {
    const hashes = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5]) hashes.add((await runSimulation(seed)).traceHash);
    expect(hashes.size).toBe(5);
  });

  it('the PRNG is deterministic, in range, and forks independent streams', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 1000 }, () => a.int(3, 7));
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b.int(3, 7)));
    expect(new Set(xs)).toEqual(new Set([3, 4, 5, 6, 7]));
    expect(new Rng(43).u32()).not.toBe(new Rng(42).u32());
    const mean = Array.from({ length: 10_000 }, () => a.float()).reduce((s, x) => s + x, 0) / 10_000;
    expect(mean).toBeGreaterThan(0.47);
    expect(mean).toBeLessThan(0.53);
  });
});

describe('simulated network', () => {
  it('delivers in delay order, drops across a partition, and refuses sends across the cut', () => {
    const scheduler = new Scheduler(true);
    const got: string[] = [];
    const net = new Network<string>(new Rng(1), scheduler, { minDelayMs: 1, maxDelayMs: 50, lossRate: 0, duplicateRate: 0 }, (from, to, m) => got.push(`${from}>${to}:${m}`), (m) => m);
    for (let i = 0; i < 20; i++) expect(net.send('a', 'b', `m${i}`)).toBe(true);
    net.partition([['a'], ['b', 'c']]);
    expect(net.send('a', 'b', 'refused')).toBe(false);
    expect(net.send('b', 'c', 'same side')).toBe(true);
    while (scheduler.step());
    expect(got).toEqual(['b>c:same side']); // the 20 in flight were cut
    net.heal();
    for (let i = 0; i < 20; i++) net.send('a', 'b', `m${i}`);
    while (scheduler.step());
    expect(got).toHaveLength(21);
    expect(got.slice(1)).not.toEqual(Array.from({ length: 20 }, (_, i) => `a>b:m${i}`)); // reordered
  });

  it('loses and duplicates at the configured rates', () => {
    const scheduler = new Scheduler(false);
    let delivered = 0;
    const net = new Network<number>(new Rng(2), scheduler, { minDelayMs: 1, maxDelayMs: 5, lossRate: 0.2, duplicateRate: 0.1 }, () => delivered++, String);
    for (let i = 0; i < 5000; i++) net.send('a', 'b', i);
    while (scheduler.step());
    expect(net.stats.lost / 5000).toBeCloseTo(0.2, 1);
    expect(delivered).toBe(5000 - net.stats.lost + net.stats.duplicated);
  });
});

/** Every known src/ bug steered around (cluster.ts KnownBug), so that a broken runtime is what fails. */
const workarounds = KNOWN_BUG_NAMES;

describe('coverage', () => {
  it('a short sweep exercises crashes, orphans, partitions, failures, siblings, quorum-acknowledged writes, membership changes, wipes, purges, hints and clock steps', async () => {
    const totals = new Map<string, number>();
    for (let seed = 1; seed <= 30; seed++) {
      const result = await runSimulation(seed, { overrides: { workarounds } });
      expect(result.message).toBeUndefined();
      for (const [k, v] of Object.entries(result.stats)) totals.set(k, (totals.get(k) ?? 0) + v);
      totals.set('maxSiblings', Math.max(totals.get('maxSiblings') ?? 0, result.stats['cluster.maxSiblings'] ?? 0));
    }
    for (const stat of [
      'cluster.crashes', 'orphaned', 'fault.partitions', 'failed', 'lost', 'rejected', 'ackedQuorum', 'rmw', 'noContext', 'deletes', 'unique', 'net.lost', 'net.duplicated',
      'cluster.sendFailures', 'membership.commits', 'membership.conflicts', 'membership.syncs', 'membership.syncFailures',
      // Storage wipes and the join -> seat replacement path, admissions, refused re-admissions, takeovers.
      'cluster.wipes', 'fault.wipesOfVoters', 'svc.replacementsDone', 'svc.alreadyMember', 'svc.admitted', 'svc.joinsRefusedRemoved', 'svc.readmitRefused', 'svc.takeovers', 'svc.finalized',
      // Tombstone purge, hinted handoff, clock steps and boots at 1970.
      'purges', 'cluster.hints', 'hints.delivered', 'cluster.clockSteps', 'cluster.boots1970',
    ]) {
      expect(totals.get(stat), stat).toBeGreaterThan(0);
    }
    expect(totals.get('maxSiblings')).toBeGreaterThan(2);
  });
});

describe('the checker catches broken runtimes', () => {
  const expected: Record<SimBug, readonly InvariantId[]> = {
    ackBeforeDurable: ['a', 'e'],
    lwwStore: ['d', 'a', 'e'],
    reuseActor: ['d', 'a', 'e', 'f'],
    // x: after a wipe the counter recovered from an empty store reissues a dot the core still holds (its assertion).
    volatileDotCounter: ['c', 'd', 'a', 'e', 'f', 'x'],
    skipSync: ['a', 'e', 'f'],
    staleStoreId: ['j', 'a', 'e', 'g'],
    // l: the injected fault (the membership service sees configurations without their removed devices) also drops
    // the removed list from the changes it derives, which can leave a joint phase unfinished.
    readmitRemoved: ['i', 'l'],
    noGrace: ['h'],
  };

  it.each(SIM_BUGS)('%s is reported, with the seed and a replay command', async (bug) => {
    let found: SimResult | undefined;
    // noGrace needs the most seeds: first at 630 with the daemon's own runtime and membership service and writes
    // acknowledged only by replicas holding them (518 with the simulator's copies, 86 before that ack rule).
    for (let seed = 1; seed <= 1000 && found === undefined; seed++) {
      const result = await runSimulation(seed, { overrides: { bug, workarounds } });
      if (!result.ok) found = result;
    }
    expect(found, `no seed in 1..1000 exposed ${bug}`).toBeDefined();
    expect(expected[bug]).toContain(found?.invariant);
    expect(found?.message).toContain(`seed ${found?.seed}`);
    expect(found?.message).toContain(`--seed ${found?.seed} --bug ${bug}`);
    // Replaying the failing seed fails the same way (the same events; an exception's stack names its caller).
    const again = await runSimulation(found?.seed ?? 0, { overrides: { bug, workarounds } });
    expect(again.traceHash).toBe(found?.traceHash);
    expect(again.message?.split('\n').slice(0, 3)).toEqual(found?.message?.split('\n').slice(0, 3));
    // Deterministic work (a few seconds on one idle core); the limit only ends a hang on a loaded runner.
  }, 240_000);

  it('a hint book that never takes a handover as delivered is reported as a busy loop of pushes (l)', async () => {
    // The runtime hands over the next batch as soon as one is confirmed: hints never cleared loop for ever.
    const stuck = vi.spyOn(HintBook.prototype, 'delivered').mockImplementation(() => Promise.resolve());
    try {
      let found: SimResult | undefined;
      for (let seed = 1; seed <= 60 && found === undefined; seed++) {
        const result = await runSimulation(seed, { overrides: { workarounds } });
        if (!result.ok) found = result;
      }
      expect(found?.invariant).toBe('l');
      expect(found?.message).toContain('busy loop of pushes');
    } finally {
      stuck.mockRestore();
    }
  }, 240_000);
});

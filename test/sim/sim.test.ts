// The seeded simulation sweep: every seed must keep every invariant of checker.ts after every step, and the
// liveness bound after healing. Configure with SIM_SEEDS (count, default 250), SIM_SEED_START (default 1),
// SIM_BUG (run a deliberately broken runtime) and SIM_WORKAROUNDS (see env.ts and cluster.ts KnownBug).
//
// Fault model (per seed, see configForSeed): message delay, reordering, loss and duplication; partitions; crashes
// (any number of devices, the unsynced writes lost); storage wipes with the identity kept (a device comes back
// with a new empty store, no configuration, no acceptor state, no hints, and asks to join; the member it asks
// gives its seat to the new store); wall-clock steps back and forward and boots at 1970; concurrent membership
// changes (admissions, removals, promotions, abandoned joint phases, attempted re-admission of removed devices);
// anti-entropy with tombstone purge and hinted handoff.
//
// The guarantee holds while at most a minority of the voters have lost their storage at once — a wiped voter
// counts until a finished change gave its seat to its new store — in every configuration: the current one, the
// previous voters while joint, and every configuration a change in flight may produce (Cluster.lossTolerable).
// A majority of voters losing storage at once is outside the guarantee: nothing is left to re-seat them from,
// and the cluster cannot recover by itself (an operator must rebuild it from the surviving stores). Crashes of
// any number of devices are within it (they lose only what was not yet durable, which was never acknowledged).
//
// Every device runs the daemon's own runtime and membership service (cluster.ts); the src/ bugs the simulator
// found (cluster.ts KnownBug) are fixed there.
import { describe, expect, it } from 'vitest';
import { envBug, envInt, envWorkarounds } from './env.js';
import { type SimResult, runSimulation } from './sim.js';

const count = envInt('SIM_SEEDS', 250);
const start = envInt('SIM_SEED_START', 1);
const bug = envBug();
const workarounds = envWorkarounds();

describe(`simulation sweep (seeds ${start}..${start + count - 1}${bug === undefined ? '' : `, bug ${bug}`}, workarounds ${workarounds.join(',') || 'none'})`, () => {
  it(
    'every seed keeps every invariant after every step, finishes every join and replacement, and converges',
    async () => {
      const failures: SimResult[] = [];
      const started = performance.now();
      let events = 0;
      const totals = new Map<string, number>();
      for (let seed = start; seed < start + count; seed++) {
        const result = await runSimulation(seed, { overrides: { workarounds, ...(bug === undefined ? {} : { bug }) } });
        events += result.events;
        for (const [k, v] of Object.entries(result.stats)) totals.set(k, (totals.get(k) ?? 0) + v);
        if (!result.ok) failures.push(result);
      }
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const shown = ['cluster.resumedPushes', 'cluster.wipes', 'svc.replacementsDone', 'purges', 'hints.delivered', 'svc.readmitRefused', 'cluster.clockSteps'];
      console.log(`simulation sweep: ${count - failures.length}/${count} seeds passed, ${events} events, ${shown.map((k) => `${k}=${totals.get(k) ?? 0}`).join(' ')}, ${seconds}s`);
      if (failures.length > 0) {
        const seeds = failures.map((f) => `${f.seed}(${f.invariant})`).join(' ');
        throw new Error(`${failures.length} of ${count} seeds failed: ${seeds}\n\nfirst failure:\n${failures[0]?.message}`);
      }
      expect(failures).toEqual([]);
      // Interrupted data-sync pushes that resumed, wipes re-seated, purges: they must occur, or the sweep does not check them.
      if (count >= 200) {
        for (const stat of ['cluster.resumedPushes', 'svc.replacementsDone', 'purges', 'hints.delivered']) expect(totals.get(stat), stat).toBeGreaterThan(0);
      }
    },
    Math.max(60_000, count * 2_000),
  );
});

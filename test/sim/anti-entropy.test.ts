// The anti-entropy sweep: w=one writes on both sides of partitions with loss, duplication, crashes, storage
// wipes, clock steps and membership changes, then heal and run anti-entropy only (no reads), with tombstone
// purge as each seed draws it. Every member must reach the same digest and the same records, with every
// acknowledged write and concurrent sibling kept and nothing a purged delete superseded back (checker.ts
// invariants hold after every step). Configure with SIM_AE_SEEDS (count, default 120), SIM_AE_SEED_START
// (default 1) and SIM_WORKAROUNDS (env.ts). The fault model and its bound are in sim.test.ts.
import { describe, expect, it } from 'vitest';
import { envInt, envWorkarounds } from './env.js';
import { AE_OVERRIDES, type SimResult, runSimulation } from './sim.js';

const count = envInt('SIM_AE_SEEDS', 120);
const start = envInt('SIM_AE_SEED_START', 1);
const workarounds = envWorkarounds();


describe(`anti-entropy simulation sweep (seeds ${start}..${start + count - 1})`, () => {
  it(
    'after healing, anti-entropy alone converges every member (digests and records), losing nothing',
    async () => {
      const failures: SimResult[] = [];
      const started = performance.now();
      let repaired = 0;
      const convergeMs: number[] = [];
      for (let seed = start; seed < start + count; seed++) {
        const result = await runSimulation(seed, { overrides: { ...AE_OVERRIDES, workarounds } });
        if (!result.ok) failures.push(result);
        repaired += result.stats['ae.keysRepaired'] ?? 0;
        convergeMs.push(result.stats.aeConvergeMs ?? -1);
      }
      convergeMs.sort((a, b) => a - b);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const p50 = convergeMs[Math.floor(convergeMs.length / 2)];
      const max = convergeMs[convergeMs.length - 1];
      console.log(`anti-entropy sweep: ${count - failures.length}/${count} seeds passed, ${repaired} keys repaired, virtual time heal→converged p50 ${p50} ms max ${max} ms, ${seconds}s`);
      if (failures.length > 0) {
        const seeds = failures.map((f) => `${f.seed}(${f.invariant})`).join(' ');
        throw new Error(`${failures.length} of ${count} seeds failed: ${seeds}\n\nfirst failure:\n${failures[0]?.message}`);
      }
      expect(failures).toEqual([]);
    },
    Math.max(60_000, count * 2_000),
  );
});

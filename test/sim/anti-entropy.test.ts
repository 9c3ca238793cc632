// The anti-entropy sweep: w=one writes on both sides of partitions with loss, duplication, crashes and
// membership changes, then heal and run anti-entropy only (no reads). Every member must reach the same digest
// and the same records, with every acknowledged write and concurrent sibling kept (checker.ts invariants hold
// after every step). Configure with SIM_AE_SEEDS (count, default 250) and SIM_AE_SEED_START (default 1).
import { describe, expect, it } from 'vitest';
import { type SimResult, runSimulation } from './sim.js';

function envInt(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  if (!/^[0-9]+$/.test(text)) throw new Error(`${name}=${text}: expected a non-negative integer`);
  return Number(text);
}

const count = envInt('SIM_AE_SEEDS', 250);
const start = envInt('SIM_AE_SEED_START', 1);

/** The anti-entropy scenario on top of each seed's own (cluster size, faults, membership changes). */
export const AE_OVERRIDES = { antiEntropyIntervalMs: 40, finalPhase: 'antiEntropy', oneWrites: 'most' } as const;

describe(`anti-entropy simulation sweep (seeds ${start}..${start + count - 1})`, () => {
  it(
    'after healing, anti-entropy alone converges every member (digests and records), losing nothing',
    () => {
      const failures: SimResult[] = [];
      const started = performance.now();
      let repaired = 0;
      const convergeMs: number[] = [];
      for (let seed = start; seed < start + count; seed++) {
        const result = runSimulation(seed, { overrides: AE_OVERRIDES });
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

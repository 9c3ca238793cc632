// The seeded simulation sweep: every seed must keep every invariant of checker.ts. Configure with
// SIM_SEEDS (count, default 500), SIM_SEED_START (default 1) and SIM_BUG (run a deliberately broken runtime).
import { describe, expect, it } from 'vitest';
import { SIM_BUGS, type SimBug } from './cluster.js';
import { type SimResult, runSimulation } from './sim.js';

function envInt(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  if (!/^[0-9]+$/.test(text)) throw new Error(`${name}=${text}: expected a non-negative integer`);
  return Number(text);
}

function envBug(): SimBug | undefined {
  const text = process.env.SIM_BUG;
  if (text === undefined || text === '') return undefined;
  if (!(SIM_BUGS as readonly string[]).includes(text)) throw new Error(`SIM_BUG=${text}: one of ${SIM_BUGS.join(', ')}`);
  return text as SimBug;
}

const count = envInt('SIM_SEEDS', 500);
const start = envInt('SIM_SEED_START', 1);
const bug = envBug();

describe(`simulation sweep (seeds ${start}..${start + count - 1}${bug === undefined ? '' : `, bug ${bug}`})`, () => {
  it(
    'every seed keeps every invariant after every step, and converges',
    () => {
      const failures: SimResult[] = [];
      const started = performance.now();
      let events = 0;
      let resumedPushes = 0;
      for (let seed = start; seed < start + count; seed++) {
        const result = runSimulation(seed, { overrides: bug === undefined ? {} : { bug } });
        events += result.events;
        resumedPushes += result.stats['cluster.resumedPushes'] ?? 0;
        if (!result.ok) failures.push(result);
      }
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(`simulation sweep: ${count - failures.length}/${count} seeds passed, ${events} events, ${resumedPushes} resumed pushes, ${seconds}s`);
      if (failures.length > 0) {
        const seeds = failures.map((f) => `${f.seed}(${f.invariant})`).join(' ');
        throw new Error(`${failures.length} of ${count} seeds failed: ${seeds}\n\nfirst failure:\n${failures[0]?.message}`);
      }
      expect(failures).toEqual([]);
      // Interrupted data-sync pushes that resumed where a crash left them must occur, or the sweep does not check them.
      if (count >= 200) expect(resumedPushes).toBeGreaterThan(0);
    },
    Math.max(60_000, count * 2_000),
  );
});

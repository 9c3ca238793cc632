// Bugs of src/ that the simulator found and that are not fixed yet (cluster.ts KnownBug has the diagnosis of
// each). For each, a seed on which the simulator fails when it models that bug as src/ has it (the other known
// bugs steered around, so the seed shows this one), and passes when this one is steered around too. The CI
// sweeps steer around all of them (env.ts) until src/ is fixed. When a fix lands, this test fails for its bug:
// for a bug in src/node (copied by test/sim/membership.ts, hints.ts, cluster.ts), make the copy do what the fixed
// code does; then remove the bug from KnownBug and from KNOWN_BUGS here.
import { describe, expect, it } from 'vitest';
import type { InvariantId } from './checker.js';
import { KNOWN_BUG_NAMES, type KnownBug } from './cluster.js';
import { runSimulation } from './sim.js';

export const KNOWN_BUGS: Record<KnownBug, { readonly seed: number; readonly invariant: InvariantId; readonly shows: RegExp }> = {
  // n2 proposes the seat replacement of wiped n1 and crashes in its joint phase; back up, it arms no takeover,
  // and n1 and n3 wait for it (alive) for good.
  takeoverAfterRestart: { seed: 15, invariant: 'l', shows: /replaced\[n1\] still joint/ },
  // Every voter's finalize of the removal of n2 loses its ballot (membership_conflict); each takes it as done.
  finalizeConflict: { seed: 182, invariant: 'l', shows: /removed\[n2\] still joint/ },
  // n2 boots at 1970 with hints created in 2023: handed over to n4 again and again, never taken as delivered.
  hintClockStep: { seed: 19, invariant: 'l', shows: /never took them as delivered/ },
  // Learner n4 is wiped, then promoted with its old store in its seat: every push to it stalls, every sync fails.
  silentPushTarget: { seed: 78, invariant: 'l', shows: /still joint; not settled: n4 \(epoch 5, store n4\.s2, not seated\)/ },
};

describe('known src/ bugs (not fixed yet): each has a seed that shows it', () => {
  it.each(KNOWN_BUG_NAMES)('%s', (bug) => {
    const { seed, invariant, shows } = KNOWN_BUGS[bug];
    const others = KNOWN_BUG_NAMES.filter((b) => b !== bug);
    const shown = runSimulation(seed, { overrides: { workarounds: others } });
    expect(shown.ok, `seed ${seed} no longer shows ${bug}: fixed in src/? (see the header of this file)`).toBe(false);
    expect(shown.invariant).toBe(invariant);
    expect(shown.message).toMatch(shows);
    expect(shown.message).toContain(`--seed ${seed}`);
    const steered = runSimulation(seed, { overrides: { workarounds: KNOWN_BUG_NAMES } });
    expect(steered.message).toBeUndefined();
  });
});

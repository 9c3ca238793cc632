// How many inputs a fuzz target tries: a short run inside `npm test`, FUZZ_RUNS (set by `npm run fuzz`) for the
// long ones. Every target prints its seed on failure through fast-check, so a finding replays with `seed` + `path`.

/** Inputs per fuzz target: FUZZ_RUNS when set (a positive integer), else `shortRuns`. */
export function fuzzRuns(shortRuns: number): number {
  const raw = process.env.FUZZ_RUNS;
  if (raw === undefined || raw === '') return shortRuns;
  const runs = Number(raw);
  if (!Number.isSafeInteger(runs) || runs <= 0) throw new Error(`FUZZ_RUNS must be a positive integer, got ${raw}`);
  return runs;
}

/** A test timeout that fits the run count: unlimited (0) for long runs, the default otherwise. */
export function fuzzTimeoutMs(): number | undefined {
  return process.env.FUZZ_RUNS === undefined || process.env.FUZZ_RUNS === '' ? undefined : 0;
}

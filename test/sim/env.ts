// Environment settings shared by the simulator's sweeps (vitest): seed ranges, a broken runtime to run, and which
// known src/ bugs to steer around.
import { KNOWN_BUG_NAMES, type KnownBug, SIM_BUGS, type SimBug } from './cluster.js';

export function envInt(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  if (!/^[0-9]+$/.test(text)) throw new Error(`${name}=${text}: expected a non-negative integer`);
  return Number(text);
}

export function envBug(): SimBug | undefined {
  const text = process.env.SIM_BUG;
  if (text === undefined || text === '') return undefined;
  if (!(SIM_BUGS as readonly string[]).includes(text)) throw new Error(`SIM_BUG=${text}: one of ${SIM_BUGS.join(', ')}`);
  return text as SimBug;
}

/**
 * SIM_WORKAROUNDS: `none`, a comma-separated list of KnownBug names, or unset: every flag on (what the CI sweeps
 * do; only silentPushTarget still changes anything, see cluster.ts KnownBug).
 */
export function envWorkarounds(): readonly KnownBug[] {
  const text = process.env.SIM_WORKAROUNDS;
  if (text === undefined || text === '' || text === 'all') return KNOWN_BUG_NAMES;
  if (text === 'none') return [];
  const names = text.split(',');
  for (const name of names) {
    if (!(KNOWN_BUG_NAMES as readonly string[]).includes(name)) throw new Error(`SIM_WORKAROUNDS=${text}: none, all, or names from ${KNOWN_BUG_NAMES.join(', ')}`);
  }
  return names as KnownBug[];
}

// The decisions of coordinating a membership change (src/node/membership.ts does the IO): retrying a change
// that lost its epoch, with what backoff; which background work a new configuration calls for (finishing a
// joint phase whose proposer is gone, promoting a learner into a free voter seat); when a finalize or a sync that
// failed still did its job. Pure: random numbers and liveness come in as arguments.
import { type MembershipConfig, isJoint, isVoter, livePreviousVoters, voterIds } from './membership.js';

/** A lost epoch (membership_conflict) is retried, up to `attemptsMax` attempts in all; anything else is final. */
export function retryChange(code: string | undefined, attempt: number, attemptsMax: number): boolean {
  return code === 'membership_conflict' && attempt < attemptsMax;
}

/** The backoff after attempt `attempt` lost its epoch: [20, 100 + 100 × attempt) ms, drawn with `u` in [0, 1). */
export const CHANGE_BACKOFF_MIN_MS = 20;
export const CHANGE_BACKOFF_SPAN_MS = 100;
export function changeBackoffMs(attempt: number, u: number): number {
  const hi = CHANGE_BACKOFF_SPAN_MS + CHANGE_BACKOFF_SPAN_MS * attempt;
  return CHANGE_BACKOFF_MIN_MS + Math.floor(u * (hi - CHANGE_BACKOFF_MIN_MS));
}

/** Background membership work a newly adopted configuration calls for on `self`. */
export type BackgroundWork =
  | { readonly kind: 'none' }
  /** Finish the joint phase (sync, finalize) after `delayMs` unless its proposer is alive and still at it. */
  | { readonly kind: 'takeover'; readonly delayMs: number }
  /** Promote a live learner into a free voter seat, now. */
  | { readonly kind: 'promote' };

/**
 * The proposer finishes its own joint phase; if it died or is the one leaving, the first live previous voter by
 * ID takes over after a quarter of `jointTakeoverMs`, the others after all of it (a finalize is a CAS: duplicates
 * are harmless). Only previous voters: they hold the data (a new voter or a new store would gather it all to
 * itself, twice over with a proposer still pushing to it). Outside a joint phase, the first voter by ID promotes
 * a learner while a voter seat is free.
 */
export function backgroundWork(config: MembershipConfig, self: string, jointTakeoverMs: number, maxVoters: number): BackgroundWork {
  if (!isVoter(config, self)) return { kind: 'none' };
  if (isJoint(config)) {
    const takers = livePreviousVoters(config);
    if (!takers.includes(self)) return { kind: 'none' };
    const first = [...takers].sort()[0] === self;
    return { kind: 'takeover', delayMs: first ? Math.round(jointTakeoverMs / 4) : jointTakeoverMs };
  }
  const first = [...voterIds(config)].sort()[0] === self;
  if (first && config.voters.length < maxVoters && config.learners.length > 0) return { kind: 'promote' };
  return { kind: 'none' };
}

/**
 * Looks at a live proposer a takeover waits out at most (one look per jointTakeoverMs after the first): a live
 * proposer may have lost its coordination (it restarted during its joint phase), and two previous voters that each
 * took the other's accept for the proposer's would otherwise wait for each other for good (found by the simulator
 * running this service: seeds 128, 583, 902, 936, 965). A takeover after that only costs a second sync.
 */
export const TAKEOVER_PATIENCE_LOOKS = 3;

/**
 * A takeover waits while the joint phase's proposer (another device) is alive: it is still syncing. `looks`: how
 * often this takeover found it so already (it stops waiting at TAKEOVER_PATIENCE_LOOKS).
 */
export function proposerStillFinishing(proposer: string | undefined, self: string, isAlive: (peer: string) => boolean, looks = 0): boolean {
  return proposer !== undefined && proposer !== self && isAlive(proposer) && looks < TAKEOVER_PATIENCE_LOOKS;
}

/**
 * Whether a finalize (or a joint phase's sync) that failed with `code` did its job anyway: another device
 * finalized the joint epoch `jointEpoch` or changed on (the epoch moved). A lost ballot with the configuration
 * still joint is a failure: the caller, or the takeover schedule, tries again.
 */
export function movedOnPastJoint(code: string | undefined, jointEpoch: number, epochNow: number): boolean {
  return code === 'membership_conflict' && epochNow !== jointEpoch;
}

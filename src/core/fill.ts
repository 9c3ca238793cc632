// Filling a replica that is known incomplete: the decisions of a new device's admission transfer (when it
// starts, when it ends, when it falls back to catch-up rounds) and whether its own anti-entropy rounds wait for a
// data stream. Pure: the driver (src/node/runtime.ts) keeps the state durable and the clocks.
import { type MembershipConfig, isJoint, isVoter, replacedIds, replicaIds } from './membership.js';

/** A voter a joint phase adds (or whose seat it gives to this new store): its data comes by the sync's push. */
export function freshVoter(config: MembershipConfig, self: string): boolean {
  return isJoint(config) && isVoter(config, self) && (!config.previousVoters.includes(self) || replacedIds(config).includes(self));
}

/**
 * Whether adopting `config` admits this device (or gives its seat to this new store) in a cluster that has data:
 * seated now, not before, and another replica exists. The data then arrives by the admitting change's sync.
 */
export function admittedWithData(config: MembershipConfig, self: string, seatedNow: boolean, wasSeated: boolean): boolean {
  return seatedNow && !wasSeated && replicaIds(config).some((m) => m !== self);
}

/**
 * Whether a pending admission transfer is over without its push (see Runtime.checkJoinTransfer): the device is
 * seated, and it is neither a fresh voter of a joint phase (its push is coming) nor a learner that is running
 * (a learner waits for its push; a restart ends that wait: it fills up by rounds from start-up).
 */
export function admissionTransferOver(config: MembershipConfig, self: string, seated: boolean, startingUp: boolean): boolean {
  if (!seated) return false;
  return !freshVoter(config, self) && (isVoter(config, self) || startingUp);
}

export interface HoldInput {
  /** The admission transfer is pending (META_JOIN_TRANSFER). */
  readonly joinPending: boolean;
  /** A data stream delivered records here lately (InboundStreamWatch). */
  readonly inboundActive: boolean;
  readonly config: MembershipConfig;
  readonly self: string;
  readonly nowMs: number;
  /** When the transfer became pending (this run), and when the inbound streams last delivered. */
  readonly joinPendingSinceMs: number;
  readonly inboundChangedAtMs: number;
  readonly transferIdleMs: number;
}

/**
 * Whether this device's own anti-entropy rounds wait ('hold'): a data stream is bringing everything here
 * already, or will. 'stalled': the admission's transfer made no progress for transferIdleMs; the driver ends
 * the pending state and fills by rounds from here. 'run': nothing to wait for.
 */
export function roundsDecision(input: HoldInput): 'hold' | 'run' | 'stalled' {
  if (input.inboundActive && input.joinPending) return 'hold';
  if (!input.joinPending) return 'run';
  if (freshVoter(input.config, input.self)) return 'hold';
  if (input.nowMs - Math.max(input.joinPendingSinceMs, input.inboundChangedAtMs) < input.transferIdleMs) return 'hold';
  return 'stalled';
}

/** Whether data streams delivered records lately: watches the receiving streams' key count over time. */
export class InboundStreamWatch {
  private keysSeen = 0;
  private changedAtMs = -Infinity;

  constructor(private readonly quietMs: number) {}

  /** When the received count last changed (-Infinity: never in this run). */
  get changedAt(): number {
    return this.changedAtMs;
  }

  /** `keys`: records received by the receiving streams so far; true while they changed within quietMs. */
  observe(keys: number, nowMs: number): boolean {
    if (keys !== this.keysSeen) {
      this.keysSeen = keys;
      this.changedAtMs = nowMs;
    }
    return nowMs - this.changedAtMs < this.quietMs;
  }
}

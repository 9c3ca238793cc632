// Single-decree Paxos state for deciding the next membership configuration (one register per epoch, as in
// CASPaxos): the acceptor's durable promise/accept state with its pure transitions (ballots: ballot.ts).
import { assert } from './assert.js';
import { BALLOT_ZERO, type Ballot, ballotCompare } from './ballot.js';
import type { MembershipConfig } from './membership.js';

// Ballots live in ballot.ts, which imports nothing: a module this one imports (membership.ts) names them from
// there, not from here, or the two import each other.
export { BALLOT_ZERO, type Ballot, ballotCompare } from './ballot.js';

export interface AcceptedValue {
  readonly ballot: Ballot;
  readonly config: MembershipConfig;
}

/**
 * What an acceptor remembers about the decision of configuration `slot` (= its committed epoch + 1). Must be
 * durable before a promise or an accept is answered, or a restarted acceptor could break a decided value.
 */
export interface AcceptorState {
  readonly slot: number;
  readonly promised: Ballot;
  readonly accepted: AcceptedValue | undefined;
}

export function emptyAcceptor(committedEpoch: number): AcceptorState {
  return { slot: committedEpoch + 1, promised: BALLOT_ZERO, accepted: undefined };
}

/** The acceptor state to use once `committedEpoch` is committed here (older slots are decided and forgotten). */
export function acceptorFor(state: AcceptorState, committedEpoch: number): AcceptorState {
  return state.slot > committedEpoch ? state : emptyAcceptor(committedEpoch);
}

/**
 * Whether this acceptor accepted a value for the slot after `committedEpoch`. Every value proposed on a joint
 * configuration (its finalize, an abort, a re-targeted replacement) was proposed after its data sync or needs
 * none, so a device finishing that joint phase proposes at once: phase 1 recovers the accepted value, which may
 * already be chosen while the device that learned it lost its store. Syncing first could wait for ever on a
 * previous voter's store that is gone.
 */
export function acceptedNextSlot(state: AcceptorState, committedEpoch: number): boolean {
  return state.slot === committedEpoch + 1 && state.accepted !== undefined && state.accepted.config.epoch === committedEpoch + 1;
}

export type PrepareOutcome =
  | { readonly ok: true; readonly state: AcceptorState; readonly accepted: AcceptedValue | undefined }
  | { readonly ok: false; readonly promised: Ballot };

/** Phase 1b: promise never to accept a lower ballot, reporting what was accepted (strictly higher ballots only). */
export function prepare(state: AcceptorState, ballot: Ballot): PrepareOutcome {
  if (ballotCompare(ballot, state.promised) <= 0) return { ok: false, promised: state.promised };
  return { ok: true, state: { ...state, promised: ballot }, accepted: state.accepted };
}

export type AcceptOutcome = { readonly ok: true; readonly state: AcceptorState } | { readonly ok: false; readonly promised: Ballot };

/** Phase 2b: accept unless a higher ballot was promised. */
export function accept(state: AcceptorState, ballot: Ballot, config: MembershipConfig): AcceptOutcome {
  assert(config.epoch === state.slot, 'an acceptor only accepts a value for its slot');
  if (ballotCompare(ballot, state.promised) < 0) return { ok: false, promised: state.promised };
  return { ok: true, state: { slot: state.slot, promised: ballot, accepted: { ballot, config } } };
}

/** Among promises, the value accepted at the highest ballot (which a proposer must adopt), if any. */
export function highestAccepted(values: Iterable<AcceptedValue | undefined>): AcceptedValue | undefined {
  let best: AcceptedValue | undefined;
  for (const v of values) {
    if (v !== undefined && (best === undefined || ballotCompare(v.ballot, best.ballot) > 0)) best = v;
  }
  return best;
}

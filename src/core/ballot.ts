// Paxos ballots (proposal numbers) and their order. Imports nothing, so any module may name a ballot without
// depending on the acceptor state in paxos.ts.

/** A proposal number: ordered by round, then by proposer ID, so two proposers never share a ballot. */
export interface Ballot {
  readonly round: number;
  readonly proposer: string;
}

export const BALLOT_ZERO: Ballot = { round: 0, proposer: '' };

export function ballotCompare(a: Ballot, b: Ballot): number {
  if (a.round !== b.round) return a.round < b.round ? -1 : 1;
  if (a.proposer === b.proposer) return 0;
  return a.proposer < b.proposer ? -1 : 1;
}

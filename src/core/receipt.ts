// Durability receipts: from what every replica answered to a probe, which members hold the current version of
// a key (the merge of every version seen), and whether a quorum or every replica does.
import { type MembershipConfig, isLearner, isVoter } from './membership.js';
import { majority } from './quorum.js';
import { EMPTY_RECORD, type VersionedRecord, liveSiblings, mergeRecords, recordsEqual } from './record.js';
import type { ProbeReply } from './replica.js';

export interface ReplicaReceipt {
  readonly peer: string;
  readonly role: 'voter' | 'learner' | 'previous-voter';
  readonly state: ProbeReply['state'];
  /** Holds every version of the current state (true), an older or partial one (false), or did not say (null). */
  readonly holdsCurrent: boolean | null;
}

export interface Receipt {
  /** The newest state known: every replied version merged (undefined: no replica has the key). */
  readonly current: VersionedRecord | undefined;
  readonly replicas: readonly ReplicaReceipt[];
  /** Voters (of the current configuration) holding the current state, and how many a quorum needs. */
  readonly votersHolding: number;
  readonly quorum: number;
  readonly atQuorum: boolean;
  /** Every replica (voters and learners) holds it. */
  readonly everywhere: boolean;
}

export function receiptOf(config: MembershipConfig, replies: readonly ProbeReply[]): Receipt {
  let current: VersionedRecord = EMPTY_RECORD;
  for (const r of replies) if (r.record !== undefined) current = mergeRecords(current, r.record);
  const known = current.siblings.length > 0 || Object.keys(current.context).length > 0;
  const replicas = replies.map((r): ReplicaReceipt => {
    const role = isVoter(config, r.peer) ? 'voter' : isLearner(config, r.peer) ? 'learner' : 'previous-voter';
    if (r.state !== 'replied') return { peer: r.peer, role, state: r.state, holdsCurrent: null };
    const held = r.record ?? EMPTY_RECORD;
    return { peer: r.peer, role, state: r.state, holdsCurrent: known && recordsEqual(mergeRecords(held, current), held) };
  });
  const votersHolding = replicas.filter((r) => r.role === 'voter' && r.holdsCurrent === true).length;
  const quorum = majority(config.voters.length);
  return {
    current: known ? current : undefined,
    replicas,
    votersHolding,
    quorum,
    atQuorum: known && votersHolding >= quorum,
    everywhere: known && replicas.every((r) => r.holdsCurrent === true),
  };
}

/** Whether the current state is a deletion (only tombstones). */
export function isDeleted(record: VersionedRecord): boolean {
  return liveSiblings(record).length === 0;
}

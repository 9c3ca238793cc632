// The operations the replica core coordinates (one record per kind, all in one table keyed by operation id),
// and what the sub-machines that run them ask of the core that composes them (ReplicaHost).
import type { Action, LocalView } from './actions.js';
import type { MembershipConfig } from './membership.js';
import type { Message } from './messages.js';
import type { AcceptedValue, Ballot } from './paxos.js';
import type { ConsistencyLevel } from './quorum.js';
import type { VersionedRecord } from './record.js';
import type { Hlc } from './hlc.js';
import type { Dot } from './vv.js';

/** Acknowledgements an operation needs: from voters, and (joint phase, quorum level) from previous voters. */
export interface Need {
  readonly voters: number;
  readonly previous: number;
}

export interface WriteOp {
  readonly kind: 'write';
  readonly key: string;
  readonly record: VersionedRecord;
  /** The write's own dot (its sibling in `record`): what a replica's ack says it holds. */
  readonly dot: Dot;
  readonly level: ConsistencyLevel;
  /** See WriteRequest.accepted. */
  readonly accepted: ConsistencyLevel | undefined;
  /**
   * Seats given to another store while the write was in flight -> the epoch that did it: an ack from an older
   * epoch came from the lost store (sent before the loss, delivered after) and counts for nothing.
   */
  readonly reseatedAt: Map<string, number>;
  readonly acked: Set<string>;
  readonly unreachable: Set<string>;
  readonly sentTo: Set<string>;
  readonly deadlineMs: number;
}

export interface ReadOp {
  readonly kind: 'read';
  readonly key: string;
  readonly level: ConsistencyLevel;
  readonly replies: Map<string, VersionedRecord | undefined>;
  readonly unreachable: Set<string>;
  readonly askedTo: Set<string>;
  readonly deadlineMs: number;
  /** Set once the client has its answer; the op then lingers to repair late repliers until the deadline. */
  merged: VersionedRecord | undefined;
  replied: boolean;
  required: number;
}

/** Asks every replica (voters and learners) for its copy of a key, to tell who holds which version. No repair. */
export interface ProbeOp {
  readonly kind: 'probe';
  readonly key: string;
  readonly replicas: readonly string[];
  readonly replies: Map<string, VersionedRecord | undefined>;
  readonly unavailable: Set<string>;
  readonly unreachable: Set<string>;
  readonly deadlineMs: number;
}

export interface ConfigOp {
  readonly kind: 'config';
  /** The committed configuration the change starts from (epoch E); its voters are the acceptors. */
  readonly base: MembershipConfig;
  /** What the caller wants committed at epoch E+1. */
  readonly proposed: MembershipConfig;
  readonly ballot: Ballot;
  phase: 'prepare' | 'accept';
  /** The value sent in phase 2: a value some acceptor already accepted, else `proposed`. */
  value: MembershipConfig | undefined;
  readonly promises: Map<string, AcceptedValue | undefined>;
  /** Acceptors that accepted, with their signatures (undefined without auth). */
  readonly accepted: Map<string, string | undefined>;
  readonly refused: Set<string>;
  /**
   * An acceptor whose store is known gone (the proposal gives its seat to a new store): it never votes in this
   * slot again (its new store is unseated), so quorums of the others suffice (see configQuorum). Set again for
   * phase 2 from the value sent: the smaller quorum proves a re-seat only (config-proof.ts).
   */
  gone: string | undefined;
  readonly deadlineMs: number;
}

export interface SyncOp {
  readonly kind: 'sync';
  readonly epoch: number;
  phase: 'gather' | 'push';
  readonly gatherFrom: readonly string[];
  readonly gatherNeeded: number;
  /** Previous voters whose whole stream arrived. */
  readonly gathered: Set<string>;
  /** Batch numbers received from each previous voter, and the number of its last batch once seen. */
  readonly gatherSeen: Map<string, Set<number>>;
  readonly gatherLast: Map<string, number>;
  /** Of those, how many streams are durable here (so the push, which reads the store, includes them). */
  gatheredDurable: number;
  readonly gatherFailed: Set<string>;
  readonly pushOrder: readonly string[];
  readonly pushNeeded: number;
  readonly pushing: Set<string>;
  readonly pushed: Set<string>;
  readonly pushFailed: Set<string>;
  deadlineMs: number;
  progressed: boolean;
  keys: number;
}

export type Op = WriteOp | ReadOp | ConfigOp | SyncOp | ProbeOp;

/**
 * The replica core's shared state and entry points, as the sub-machines (coordinators.ts, config-change.ts,
 * streams.ts, serving.ts) see them: the configuration in force, the operation table, the clock, adoption.
 */
export interface ReplicaHost {
  readonly self: string;
  /** Every operation coordinated here, by operation id (shared by all sub-machines). */
  readonly ops: Map<number, Op>;
  /** The configuration in force (it changes only through maybeAdopt). */
  config(): MembershipConfig;
  epoch(): number;
  /** See ReplicaCore.seated. */
  seated(config?: MembershipConfig): boolean;
  /** Throws NotMemberError unless this device is a member holding its seat. */
  assertMember(): void;
  allocateOpId(): number;
  /** Whether `opId` was allocated by this run of this replica. */
  ownsOpId(opId: number): boolean;
  /** Moves the clock up to a remote record's timestamps (see ReplicaCore.observe). */
  observe(record: VersionedRecord): void;
  /** Takes the wall clock and issues the next timestamp for a local write. */
  tickHlc(physicalMs: number): Hlc;
  /** Adopts `config` if newer and proven, re-targeting every operation (see ReplicaCore.maybeAdopt). */
  maybeAdopt(config: MembershipConfig, local: LocalView, nowMs: number, chain?: readonly MembershipConfig[]): Action[];
  /** Sends `msg`, or steps it into this replica at once when `to` is this replica. */
  deliverTo(to: string, msg: Message, actions: Action[], local: LocalView, nowMs: number): void;
  /** Our configuration for a peer at `peerEpoch` (see ReplicaCore.configFor). */
  configFor(peerEpoch: number): { config: MembershipConfig; chain: MembershipConfig[] | undefined };
  /** See Serving.acceptsDataFrom. */
  acceptsDataFrom(from: string, epoch: number): boolean;
}

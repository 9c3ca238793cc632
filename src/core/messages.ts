// Messages exchanged between replica cores: replication, membership decisions and data streams. One-way
// messages correlated by the coordinator's opId; every message carries the sender's membership epoch. The
// wire codec (src/wire) is append-only.
import type { MembershipConfig, SeatClaim } from './membership.js';
import type { AcceptedValue, Ballot } from './paxos.js';
import type { VersionedRecord } from './record.js';
import type { Dot } from './vv.js';

export interface KeyedRecord {
  readonly key: string;
  readonly record: VersionedRecord;
}

export type Message =
  /** Coordinator -> replica: merge `record` into your copy of `key`, acknowledge once it is durable. */
  | {
      readonly type: 'write';
      readonly opId: number;
      readonly epoch: number;
      readonly key: string;
      readonly record: VersionedRecord;
      /**
       * The dot of the write (a sibling of `record`): the replica acknowledges only once it holds that very
       * sibling (src/core/serving.ts onWrite). Undefined from a device of an older version.
       */
      readonly dot?: Dot | undefined;
    }
  /** Replica -> coordinator: the write with this opId is durable here. */
  | { readonly type: 'writeAck'; readonly opId: number; readonly epoch: number }
  /** Coordinator -> replica: send me your copy of `key`. */
  | { readonly type: 'read'; readonly opId: number; readonly epoch: number; readonly key: string }
  /** Replica -> coordinator: my copy of `key` (absent when I have none). */
  | {
      readonly type: 'readReply';
      readonly opId: number;
      readonly epoch: number;
      readonly key: string;
      readonly record: VersionedRecord | undefined;
      /** The replica is catching up (wiped or new) and cannot answer reads yet: count it as unreachable. */
      readonly unavailable?: true;
    }
  /** Coordinator -> stale replica: merge this (read repair). No acknowledgement. */
  | { readonly type: 'repair'; readonly epoch: number; readonly key: string; readonly record: VersionedRecord }
  /** Replica -> coordinator: refused, because my configuration is newer than your epoch. */
  | {
      readonly type: 'stale';
      readonly opId: number;
      readonly epoch: number;
      readonly config: MembershipConfig;
      /** The configurations between the requester's epoch and `config`, with proofs (see `config`). */
      readonly chain?: readonly MembershipConfig[] | undefined;
    }
  /** Proposer -> voters of `config` (its committed configuration, epoch E): phase 1a for slot E+1. */
  | { readonly type: 'configPrepare'; readonly opId: number; readonly epoch: number; readonly ballot: Ballot; readonly config: MembershipConfig }
  /**
   * Acceptor -> proposer: phase 1b. ok with what it accepted for the slot, or refused with the higher ballot
   * it promised (`promised`) or its newer committed configuration (`config`).
   */
  | {
      readonly type: 'configPromise';
      readonly opId: number;
      readonly epoch: number;
      readonly ballot: Ballot;
      readonly ok: boolean;
      readonly accepted: AcceptedValue | undefined;
      readonly promised: Ballot | undefined;
      readonly config: MembershipConfig | undefined;
    }
  /** Proposer -> voters of epoch E: phase 2a, accept `config` (epoch E+1) at `ballot`. */
  | { readonly type: 'configAccept'; readonly opId: number; readonly epoch: number; readonly ballot: Ballot; readonly config: MembershipConfig }
  /** Acceptor -> proposer: phase 2b, accepted (durably) or refused like configPromise. */
  | {
      readonly type: 'configAccepted';
      readonly opId: number;
      readonly epoch: number;
      readonly ballot: Ballot;
      readonly ok: boolean;
      readonly promised: Ballot | undefined;
      readonly config: MembershipConfig | undefined;
      /** When ok: the acceptor's signature of acceptPayload(value, ballot), for the value's proof. */
      readonly signature?: string | undefined;
    }
  /**
   * Announcement of a committed configuration (after commit, or to a peer seen on an older epoch). `chain`: the
   * committed configurations between the receiver's epoch and this one, each with its proof, so a device many
   * epochs behind verifies every step from its own configuration (src/core/config-proof.ts).
   */
  | { readonly type: 'config'; readonly epoch: number; readonly config: MembershipConfig; readonly chain?: readonly MembershipConfig[] | undefined }
  /** Candidate -> member: add me (as a voter, or a learner when the voter set is full). `addrs` are the candidate's dialable multiaddrs. */
  | {
      readonly type: 'joinRequest';
      readonly opId: number;
      readonly epoch: number;
      readonly addrs: readonly string[];
      /** The candidate's store id (MemberInfo.store); undefined from a device of an older version. */
      readonly store?: string | undefined;
      /**
       * The candidate's signed claim on `store` (MemberInfo.claim): a member re-seats a device back with a new
       * store only on it. Undefined from a device of an older version.
       */
      readonly claim?: SeatClaim | undefined;
    }
  /** Member -> candidate: outcome of a join; on success `config` includes the candidate as a voter. */
  | { readonly type: 'joinReply'; readonly opId: number; readonly epoch: number; readonly ok: boolean; readonly error: string; readonly config: MembershipConfig | undefined }
  /**
   * One batch of a full data stream (a sync's gather answer or push), in key order; `opId` names the stream
   * (the requester's or the pusher's); `done` marks the last batch. One batch in flight per stream.
   */
  | {
      readonly type: 'transfer';
      readonly opId: number;
      readonly epoch: number;
      /** Batch number within the stream, from 1: a receiver counts a stream done only with every batch. */
      readonly seq: number;
      readonly records: readonly KeyedRecord[];
      readonly done: boolean;
      /** Keys the sender held when it read this batch: the receiver's progress target (an estimate). */
      readonly total?: number | undefined;
    }
  /**
   * Receiver -> sender: batch `seq` of stream `opId` is durable here; send the next. `resumeAfter` (on the
   * first batch of a push only): an earlier push of the same epoch already made every key up to it durable
   * here, so the sender skips to the keys after it (an interrupted transfer resumes instead of restarting).
   */
  | { readonly type: 'transferAck'; readonly opId: number; readonly epoch: number; readonly seq: number; readonly resumeAfter?: string | undefined }
  /** Sync coordinator -> previous voter: stream me all your data (transfer batches with this opId). */
  | { readonly type: 'transferRequest'; readonly opId: number; readonly epoch: number }
  /** Failure detection: sent every heartbeat interval to every connected peer; `opId` is a sequence number. */
  | {
      readonly type: 'heartbeat';
      readonly opId: number;
      readonly epoch: number;
      /** The sender's store id (MemberInfo.store): a member's peers see when it runs on another store. */
      readonly store?: string | undefined;
    }
  /** Answer to a heartbeat (same sequence number), for the round-trip time. */
  | { readonly type: 'heartbeatAck'; readonly opId: number; readonly epoch: number };

export type MessageType = Message['type'];

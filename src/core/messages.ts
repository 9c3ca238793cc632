// Replication messages exchanged between replica cores. One-way messages correlated by the coordinator's
// opId; every message carries the sender's membership epoch. The wire codec (src/wire) is append-only.
import type { MembershipConfig } from './membership.js';
import type { VersionedRecord } from './record.js';

export interface KeyedRecord {
  readonly key: string;
  readonly record: VersionedRecord;
}

export type Message =
  /** Coordinator -> replica: merge `record` into your copy of `key`, acknowledge once it is durable. */
  | { readonly type: 'write'; readonly opId: number; readonly epoch: number; readonly key: string; readonly record: VersionedRecord }
  /** Replica -> coordinator: the write with this opId is durable here. */
  | { readonly type: 'writeAck'; readonly opId: number; readonly epoch: number }
  /** Coordinator -> replica: send me your copy of `key`. */
  | { readonly type: 'read'; readonly opId: number; readonly epoch: number; readonly key: string }
  /** Replica -> coordinator: my copy of `key` (absent when I have none). */
  | { readonly type: 'readReply'; readonly opId: number; readonly epoch: number; readonly key: string; readonly record: VersionedRecord | undefined }
  /** Coordinator -> stale replica: merge this (read repair). No acknowledgement. */
  | { readonly type: 'repair'; readonly epoch: number; readonly key: string; readonly record: VersionedRecord }
  /** Replica -> coordinator: refused, because my configuration is newer than your epoch. */
  | { readonly type: 'stale'; readonly opId: number; readonly epoch: number; readonly config: MembershipConfig }
  /** Proposer -> current voters: accept the next configuration (epoch = yours + 1). */
  | { readonly type: 'configPropose'; readonly opId: number; readonly epoch: number; readonly config: MembershipConfig }
  /** Voter -> proposer: accepted (durably) or not, with the voter's configuration when refused. */
  | { readonly type: 'configAck'; readonly opId: number; readonly epoch: number; readonly accepted: boolean; readonly config: MembershipConfig | undefined }
  /** Announcement of a committed configuration (after commit, or to a peer seen on an older epoch). */
  | { readonly type: 'config'; readonly epoch: number; readonly config: MembershipConfig }
  /** Candidate -> member: add me as a voter. `addrs` are the candidate's dialable multiaddrs. */
  | { readonly type: 'joinRequest'; readonly opId: number; readonly epoch: number; readonly addrs: readonly string[] }
  /** Member -> candidate: outcome of a join; on success `config` includes the candidate as a voter. */
  | { readonly type: 'joinReply'; readonly opId: number; readonly epoch: number; readonly ok: boolean; readonly error: string; readonly config: MembershipConfig | undefined }
  /** Member -> joiner: one batch of the full data transfer; `done` marks the last batch. */
  | { readonly type: 'transfer'; readonly opId: number; readonly epoch: number; readonly records: readonly KeyedRecord[]; readonly done: boolean }
  /** Joiner -> member: the transfer batch with this opId is durable (each batch has its own opId). */
  | { readonly type: 'transferAck'; readonly opId: number; readonly epoch: number }
  /** Voter admitting a device -> another voter: stream me all your data (transfer batches, then done). */
  | { readonly type: 'transferRequest'; readonly opId: number; readonly epoch: number };

export type MessageType = Message['type'];

// The replica core's contract with its runtime (etcd-io/raft's Ready): what goes in (options, requests, the
// local store's read view) and what comes out (Actions to execute in order, ClientResults to answer with).
import type { ConfigAuth } from './config-proof.js';
import type { Hlc } from './hlc.js';
import type { MembershipConfig } from './membership.js';
import type { KeyedRecord, Message } from './messages.js';
import type { AcceptorState } from './paxos.js';
import type { ConsistencyLevel } from './quorum.js';
import type { VersionedRecord } from './record.js';
import type { Dot, VersionVector } from './vv.js';

/** Read access to this replica's store (including staged writes), passed in so the core does no IO. */
export interface LocalView {
  get(key: string): VersionedRecord | undefined;
  /** Up to `limit` records with key > `after` (or from the start), in key order. */
  scan(after: string | undefined, limit: number): readonly KeyedRecord[];
  /** Keys stored (tombstones included): the progress target a data stream announces. */
  keyCount(): number;
}

export type FailureCode = 'quorum_unavailable' | 'membership_change_failed' | 'membership_conflict' | 'sync_failed' | 'shutting_down' | 'storage_failed';

export type ClientResult =
  | {
      readonly type: 'written';
      readonly opId: number;
      readonly key: string;
      readonly record: VersionedRecord;
      readonly acks: number;
      readonly required: number;
    }
  | {
      readonly type: 'read';
      readonly opId: number;
      readonly key: string;
      /** The merge of the replies (undefined when no replica has the key). */
      readonly record: VersionedRecord | undefined;
      readonly replies: number;
      readonly required: number;
    }
  | { readonly type: 'configCommitted'; readonly opId: number; readonly config: MembershipConfig }
  /** A probe (see probe()) ended: what each replica holds for the key, or why it did not say. */
  | { readonly type: 'probed'; readonly opId: number; readonly key: string; readonly replicas: readonly ProbeReply[] }
  /** A data sync finished: every write acknowledged before `epoch` is on the targets (see sync()). */
  | { readonly type: 'synced'; readonly opId: number; readonly epoch: number; readonly keys: number }
  | {
      readonly type: 'failed';
      readonly opId: number;
      /** membership_conflict: another change won this epoch; re-derive the change from `config` and retry. */
      readonly code: FailureCode;
      readonly message: string;
      readonly acks: number;
      readonly required: number;
      readonly voters: number;
      /**
       * A write that missed its level but met its request's `accepted` level (see WriteRequest.accepted): the
       * voter acknowledgements counted as that level counts them (learners never, previous voters while joint).
       */
      readonly accepted?: { readonly acks: number; readonly required: number };
    };

export type Action =
  /** Store `record` as the new state of `key`; once durable, deliver `then` (to may be this replica). */
  | { readonly type: 'persist'; readonly key: string; readonly record: VersionedRecord; readonly then: Envelope | undefined }
  /** Store the configuration durably and use it; once durable, deliver `then`. */
  | {
      readonly type: 'persistConfig';
      readonly config: MembershipConfig;
      readonly then: Envelope | undefined;
      /**
       * The committed configurations up to and including `config`, with their proofs (at most
       * CONFIG_HISTORY_MAX): kept durably so a restarted device can still prove our configuration to a peer
       * that is many epochs behind (ReplicaCoreOptions.history).
       */
      readonly history?: readonly MembershipConfig[] | undefined;
    }
  /** Store the acceptor state durably; only then deliver `then` (a promise or an accept). */
  | { readonly type: 'persistAcceptor'; readonly state: AcceptorState; readonly then: Envelope }
  /** Once everything persisted before is durable, deliver `then`. */
  | { readonly type: 'flush'; readonly then: Envelope }
  | { readonly type: 'send'; readonly to: string; readonly msg: Message }
  /**
   * Answers the client. `afterFlush`: only once everything persisted before is durable, because the answer shows
   * what this store holds (a read or probe): it must not show a staged write that a crash could still undo.
   */
  | { readonly type: 'reply'; readonly result: ClientResult; readonly afterFlush?: boolean }
  /**
   * Hinted handoff: `peer` missed a write of `key` (unreachable, or silent until the deadline). The runtime keeps
   * a durable hint and hands the key's current record over when the peer is back (src/core/anti-entropy.ts).
   */
  | { readonly type: 'hint'; readonly peer: string; readonly key: string }
  /**
   * A push of `epoch`'s data sync is durable here up to key `after` (store it after the persists before it,
   * in the same order): a later push of that epoch resumes after it (setTransferResume after a restart).
   */
  | { readonly type: 'transferProgress'; readonly epoch: number; readonly after: string }
  /** Every batch of a push from `peer` for `epoch` arrived (durable once the persists before it are). */
  | { readonly type: 'transferComplete'; readonly epoch: number; readonly peer: string };

export interface Envelope {
  readonly to: string;
  readonly msg: Message;
}

export interface ReplicaCoreOptions {
  /** This device's peer ID. */
  readonly self: string;
  /** The committed configuration loaded from storage (epoch 0 when not a member yet). */
  readonly config: MembershipConfig;
  /** The acceptor state loaded from storage (undefined: none yet). */
  readonly acceptor?: AcceptorState | undefined;
  /** Deadline for each client operation. */
  readonly requestTimeoutMs: number;
  /** Deadline for a membership decision (two round trips and two durable writes); default requestTimeoutMs. */
  readonly membershipTimeoutMs?: number;
  /** A data stream (sync) without progress for this long fails; default DEFAULTS.transferIdleMs. */
  readonly transferIdleMs?: number;
  /** Records and bytes per data-stream batch; defaults DEFAULTS.transferBatchRecords and transferBatchBytes. */
  readonly transferBatchRecords?: number;
  readonly transferBatchBytes?: number;
  /** First operation id; the runtime passes a random base so ids from before a restart cannot collide. */
  readonly opIdBase: number;
  /**
   * The clock to continue from: at least every timestamp this device issued before a restart (the runtime
   * keeps it durably), so a clock that comes back behind (a device without a real-time clock booting in 1970)
   * never issues timestamps below its own earlier ones.
   */
  readonly hlc?: Hlc;
  /**
   * The id of this device's store (see MemberInfo.store): this device holds a seat only where the seat's store
   * is this one. Undefined in tests that do not model stores (then only seats without a store match).
   */
  readonly store?: string | undefined;
  /**
   * The configuration was loaded from this store at start-up: a seat of it without a store id (from before
   * store ids) is this store's. A device whose store is new never holds such a seat.
   */
  readonly legacySeat?: boolean;
  /** A remote timestamp further than this ahead of our physical time is not adopted; default DEFAULTS.hlcDriftMaxMs. */
  readonly hlcDriftMaxMs?: number;
  /**
   * Signs this device's Paxos accepts and verifies other devices' (src/node/config-auth.ts: Ed25519 peer keys).
   * With it, a configuration newer than ours is adopted only with proof that the voters of each epoch in
   * between chose it (src/core/config-proof.ts), from whoever brings it. Without it (tests that do not model
   * keys), configurations are adopted from members unproven. A device always runs with it.
   */
  readonly auth?: ConfigAuth | undefined;
  /** The configurations kept with their proofs (the last persistConfig action's `history`); see that action. */
  readonly history?: readonly MembershipConfig[] | undefined;
}

export interface WriteRequest {
  readonly key: string;
  /** New value, or null to delete (tombstone). */
  readonly value: Uint8Array | null;
  /**
   * Causal context from an earlier read; the write supersedes exactly the versions it covers. Undefined for
   * a write without context: it then supersedes what this coordinator's local copy holds (versions written
   * concurrently elsewhere, not yet seen here, stay as siblings), so repeated blind writes do not pile up.
   */
  readonly context: VersionVector | undefined;
  /** Dots `context` covers that the client never saw (versions its last write left concurrent). */
  readonly unseen?: readonly Dot[];
  readonly level: ConsistencyLevel;
  /** A fresh dot for this write, from the runtime's durable counter (never reused). */
  readonly dot: Dot;
  readonly nowMs: number;
  /** Wall-clock milliseconds for the hybrid logical clock. */
  readonly physicalMs: number;
  /** Deadline for the acks (default requestTimeoutMs). */
  readonly timeoutMs?: number;
  /**
   * A lower level at which the write still counts as accepted if `level` is not reached (a client's `w` under
   * `wait=LEVEL`): a failure then says whether it was met, counted by the quorum rules (never by learner acks).
   */
  readonly accepted?: ConsistencyLevel;
}

export interface ReadRequest {
  readonly key: string;
  readonly level: ConsistencyLevel;
  readonly nowMs: number;
}

/** One replica's answer to a probe. */
export interface ProbeReply {
  readonly peer: string;
  /** replied: `record` is what it holds; unavailable: catching up; unreachable: no connection; silent: no answer in time. */
  readonly state: 'replied' | 'unavailable' | 'unreachable' | 'silent';
  readonly record: VersionedRecord | undefined;
}

/** Progress of a data stream, for /status (times on the core's monotonic clock). */
export interface StreamProgress {
  readonly peer: string;
  readonly role: 'sending' | 'receiving';
  readonly epoch: number;
  /** Records sent or received so far. */
  readonly keys: number;
  /** Their estimated encoded size. */
  readonly bytes: number;
  /** Keys the sender held (its latest batch's announcement; undefined from an older sender). */
  readonly total: number | undefined;
  /** Key this stream resumed after (an earlier push of the epoch got that far), if it did. */
  readonly resumedAfter: string | undefined;
  readonly startedMs: number;
  readonly lastMs: number;
  readonly done: boolean;
}

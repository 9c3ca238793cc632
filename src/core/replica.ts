// The replica state machine: coordinates client writes, reads and deletes (any member may coordinate), serves
// replica requests, decides membership changes (single-decree Paxos per epoch, any member may propose) and runs
// the data syncs that make a voter change safe. Pure: inputs are calls, outputs are Actions the runtime executes
// in order (persist, send, reply), like etcd-io/raft's Ready. Time comes in as `nowMs`.
import { assert } from './assert.js';
import { InvalidConsistencyError, MembershipChangeError, NotMemberError, TooManySiblingsError } from './errors.js';
import { type Hlc, HLC_ZERO, hlcAdopt, hlcTick } from './hlc.js';
import {
  type ConfigSignature,
  type MembershipConfig,
  configQuorum,
  configsEqual,
  goneAcceptor,
  isJoint,
  isMember,
  isRemoved,
  isVoter,
  livePreviousVoters,
  quorumIds,
  replacedIds,
  replicaIds,
  seatOf,
  voterIds,
} from './membership.js';
import { CHAIN_SENT_MAX, CONFIG_HISTORY_MAX, type ConfigAuth, acceptPayload, provenChain } from './config-proof.js';
import { compareKeys } from './keys.js';
import type { KeyedRecord, Message } from './messages.js';
import {
  type AcceptedValue,
  type AcceptorState,
  type Ballot,
  acceptorFor,
  accept as acceptorAccept,
  ballotCompare,
  emptyAcceptor,
  highestAccepted,
  prepare as acceptorPrepare,
} from './paxos.js';
import { type ConsistencyLevel, majority, requiredAcks } from './quorum.js';
import { EMPTY_RECORD, SIBLINGS_PER_WRITE_MAX, type VersionedRecord, applyWrite, mergeRecords, recordsEqual } from './record.js';
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
  /** A data stream (sync) without progress for this long fails. */
  readonly transferIdleMs?: number;
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
  /** A remote timestamp further than this ahead of our physical time is not adopted (src/config/defaults.ts). */
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

/** Acknowledgements an operation needs: from voters, and (joint phase, quorum level) from previous voters. */
interface Need {
  readonly voters: number;
  readonly previous: number;
}

interface WriteOp {
  readonly kind: 'write';
  readonly key: string;
  readonly record: VersionedRecord;
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

interface ReadOp {
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

/** One replica's answer to a probe. */
export interface ProbeReply {
  readonly peer: string;
  /** replied: `record` is what it holds; unavailable: catching up; unreachable: no connection; silent: no answer in time. */
  readonly state: 'replied' | 'unavailable' | 'unreachable' | 'silent';
  readonly record: VersionedRecord | undefined;
}

/** Asks every replica (voters and learners) for its copy of a key, to tell who holds which version. No repair. */
interface ProbeOp {
  readonly kind: 'probe';
  readonly key: string;
  readonly replicas: readonly string[];
  readonly replies: Map<string, VersionedRecord | undefined>;
  readonly unavailable: Set<string>;
  readonly unreachable: Set<string>;
  readonly deadlineMs: number;
}

interface ConfigOp {
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

interface SyncOp {
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

type Op = WriteOp | ReadOp | ConfigOp | SyncOp | ProbeOp;

/** An outgoing full-data stream: answering a sync's gather, or pushing to a sync target. */
interface OutStream {
  readonly peer: string;
  readonly opId: number;
  /** The sync op this push belongs to (pushes only). */
  readonly syncOpId: number | undefined;
  after: string | undefined;
  lastBatchDone: boolean;
  deadlineMs: number;
  keys: number;
  /** Not started yet: waiting for our configuration to be durable (see onTransferRequest). */
  waiting: boolean;
  /** Number of the last batch sent (0 before the first). */
  seq: number;
  /** Batches acknowledged; seq - acked.size are in flight (at most STREAM_WINDOW). */
  readonly acked: Set<number>;
  bytes: number;
  total: number | undefined;
  /** The receiver had everything up to this key from an earlier push (pushes only). */
  resumedAfter: string | undefined;
  readonly startedMs: number;
  lastMs: number;
}

/**
 * Batches of one data stream in flight at once: the sender reads and encodes the next batches while the
 * receiver merges and fsyncs one, so a bulk transfer is not one round trip plus one fsync per batch in series.
 * Each batch is acknowledged on its own (merging commutes, so order does not matter); a lost batch or ack
 * stalls the stream until its idle limit and the sync is retried. Measured (npm run bench:sync, 100,000 keys):
 * 3 in flight joined a device in 5.1–7.1 s at ~16k records/s, 6 in 4.8–5.0 s at ~24k (≤ 6 MiB in flight).
 */
const STREAM_WINDOW = 6;

function newOutStream(peer: string, opId: number, syncOpId: number | undefined, deadlineMs: number, waiting: boolean, nowMs: number): OutStream {
  return {
    peer,
    opId,
    syncOpId,
    after: undefined,
    lastBatchDone: false,
    deadlineMs,
    keys: 0,
    waiting,
    seq: 0,
    acked: new Set(),
    bytes: 0,
    total: undefined,
    resumedAfter: undefined,
    startedMs: nowMs,
    lastMs: nowMs,
  };
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

/** An incoming push being received (see onTransfer). */
interface InStream {
  readonly peer: string;
  readonly opId: number;
  readonly epoch: number;
  keys: number;
  bytes: number;
  total: number | undefined;
  resumedAfter: string | undefined;
  readonly startedMs: number;
  lastMs: number;
  /** Highest seq with every batch 1..seq received. */
  contiguous: number;
  /** Last key of each batch received beyond `contiguous` (undefined: an empty batch). */
  readonly pending: Map<number, string | undefined>;
  /** Seq of the batch marked done, once it arrived. */
  lastSeq: number | undefined;
  complete: boolean;
}

/** Batches a receiver holds out of order per push before it drops the stream (the window is STREAM_WINDOW). */
const IN_STREAM_PENDING_MAX = 64;

/** Answered writes whose remaining acknowledgements are still awaited (for hints); beyond it, hint at once. */
export const AWAITING_ACKS_MAX = 20_000;

/** Slots whose proposer is remembered (proposerOf): the current joint phase is all that matters. */
const PROPOSERS_REMEMBERED = 8;

/** Upper bound on concurrently coordinated operations; the runtime refuses more (backpressure). */
export const OPS_IN_FLIGHT_MAX = 100_000;
/** Outgoing data streams served at once; further requests are ignored (the requester retries later). */
export const OUT_STREAMS_MAX = 16;
/** Peers remembered as told about our configuration (forgotten all at once beyond this). */
const TOLD_PEERS_MAX = 1024;
/**
 * A peer still speaking from an older epoch this long after it was told ours is told again: the announcement
 * was lost, or the peer is another store under the same peer ID (an old card put back), which must learn it.
 */
const RETELL_STALE_MS = 1_000;
/**
 * A configuration a non-member brings is checked (its proof verified) at most once per this interval, all
 * non-members together: bounds the CPU a key holder can make us spend on forged proofs (10 checks a second, a
 * few ms); a genuine one from a voter we do not know yet is retold every second (RETELL_STALE_MS).
 */
const STRANGER_CONFIG_CHECK_INTERVAL_MS = 100;
/** Join targets remembered (see admissionFrom): a join loop asks a few members in turn. */
const ADMISSION_PEERS_MAX = 16;
/** Incoming streams remembered for /status. */
const IN_STREAMS_TRACKED_MAX = 16;
const TRANSFER_IDLE_MS_DEFAULT = 10_000;
const TRANSFER_BATCH_RECORDS_DEFAULT = 512;
const TRANSFER_BATCH_BYTES_DEFAULT = 1024 * 1024;
/** Per-sibling overhead assumed when sizing a batch (dot, HLC, framing). */
const SIBLING_OVERHEAD_BYTES = 64;
/** Devices use src/config/defaults.ts's hlcDriftMaxMs; this is for cores built without one (tests). */
const HLC_DRIFT_MAX_MS_DEFAULT = 60_000;

export class ReplicaCore {
  readonly self: string;
  private configCurrent: MembershipConfig;
  private acceptor: AcceptorState;
  private readonly requestTimeoutMs: number;
  private readonly membershipTimeoutMs: number;
  private readonly transferIdleMs: number;
  private readonly transferBatchRecords: number;
  private readonly transferBatchBytes: number;
  private opIdNext: number;
  /** The first operation id of this run: ids from opIdFirst to opIdNext - 1 are this replica's own. */
  private readonly opIdFirst: number;
  private hlcLast: Hlc;
  private readonly hlcDriftMaxMs: number;
  /** The wall clock as last given (setPhysicalMs, or a write's physicalMs); -Infinity: unknown, adopt nothing. */
  private physicalMs = -Infinity;
  /** Highest ballot round seen anywhere, so our next proposal outbids it. */
  private roundSeen = 0;
  /** This device's store id and whether seats without one are ours (see ReplicaCoreOptions). */
  private readonly store: string | undefined;
  private readonly legacySeat: boolean;
  /**
   * Writes already answered whose other replicas have not all acknowledged: each silent one at the deadline
   * gets a hint. In deadline order (every deadline is its start plus the same request timeout).
   */
  private readonly awaitingAcks = new Map<number, { readonly key: string; readonly pending: Set<string>; readonly deadlineMs: number }>();
  /** The proposer whose accept this replica took for each recent slot (see proposerOf()). */
  private readonly proposers = new Map<number, string>();
  /** The newest epoch whose configuration is durable here (a restart cannot fall behind it). */
  private durableEpoch: number;
  /** Peers told our configuration because they spoke from an older epoch: peer -> epoch told (bounded). */
  private readonly toldEpoch = new Map<string, { readonly epoch: number; readonly atMs: number; readonly heard: number }>();
  private readonly ops = new Map<number, Op>();
  private readonly outStreams = new Map<string, OutStream>();
  private readonly inStreams = new Map<string, InStream>();
  /** How far pushes of an epoch are durable here (see the transferProgress action). */
  private transferResume: { epoch: number; after: string } | undefined;
  /** Peers we asked to join, whose announcement of a configuration seating us is adopted at epoch 0 (bounded). */
  private readonly admissionPeers = new Set<string>();
  private readonly auth: ConfigAuth | undefined;
  /** Before this time a configuration from a non-member is not checked (see onConfigAnnounced). */
  private strangerConfigCheckAtMs = -Infinity;
  /** Committed configurations in epoch order, ending with the current one, with their proofs (bounded). */
  private history: MembershipConfig[];

  constructor(options: ReplicaCoreOptions) {
    assert(options.requestTimeoutMs > 0, 'requestTimeoutMs is positive');
    assert(Number.isSafeInteger(options.opIdBase) && options.opIdBase >= 0, 'opIdBase is a safe integer');
    this.self = options.self;
    this.configCurrent = options.config;
    this.acceptor = acceptorFor(options.acceptor ?? emptyAcceptor(options.config.epoch), options.config.epoch);
    this.durableEpoch = options.config.epoch;
    this.roundSeen = this.acceptor.promised.round;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.membershipTimeoutMs = options.membershipTimeoutMs ?? options.requestTimeoutMs;
    this.transferIdleMs = options.transferIdleMs ?? TRANSFER_IDLE_MS_DEFAULT;
    this.transferBatchRecords = options.transferBatchRecords ?? TRANSFER_BATCH_RECORDS_DEFAULT;
    this.transferBatchBytes = options.transferBatchBytes ?? TRANSFER_BATCH_BYTES_DEFAULT;
    assert(this.transferBatchRecords >= 1 && this.transferBatchBytes >= 1, 'transfer batches hold something');
    this.opIdNext = options.opIdBase + 1;
    this.opIdFirst = this.opIdNext;
    this.hlcLast = options.hlc ?? HLC_ZERO;
    this.store = options.store;
    this.legacySeat = options.legacySeat ?? false;
    this.hlcDriftMaxMs = options.hlcDriftMaxMs ?? HLC_DRIFT_MAX_MS_DEFAULT;
    this.auth = options.auth;
    const kept = (options.history ?? []).filter((c) => c.epoch < options.config.epoch && c.clusterId === options.config.clusterId);
    this.history = options.config.epoch === 0 ? [] : [...kept, options.config].slice(-CONFIG_HISTORY_MAX);
  }

  /** The configurations kept with their proofs (see the persistConfig action), oldest first. */
  get configHistory(): readonly MembershipConfig[] {
    return this.history;
  }

  /** The wall-clock time now (ms since the epoch): bounds how far remote timestamps may move our clock. */
  setPhysicalMs(physicalMs: number): void {
    this.physicalMs = physicalMs;
  }

  /** The hybrid logical clock: at least every timestamp issued here (the runtime keeps it durably). */
  get hlc(): Hlc {
    return this.hlcLast;
  }

  /**
   * Whether this device holds its seat in `config` (default: the current one): it is a member there and the
   * seat's store is this device's store. Only a seated device acknowledges writes and data, answers reads,
   * votes in membership decisions, serves data streams or coordinates anything: a device whose storage was
   * wiped (same peer ID, new store) would otherwise answer from an empty store, or vote without the promises
   * it lost. It waits, unseated, for a change that gives the seat to its store (withSeatReplaced).
   */
  seated(config: MembershipConfig = this.configCurrent): boolean {
    if (config.epoch === 0) return false;
    const seat = seatOf(config, this.self);
    if (seat === undefined) return false;
    return seat.store === this.store || (seat.store === undefined && this.legacySeat);
  }

  private rememberProposer(epoch: number, peer: string): void {
    this.proposers.set(epoch, peer);
    if (this.proposers.size > PROPOSERS_REMEMBERED) this.proposers.delete(this.proposers.keys().next().value as number);
  }

  /**
   * The proposer whose value this acceptor last accepted for the configuration of `epoch` (usually the device
   * that committed it and now runs its data sync), or else the first device that announced it to us.
   */
  proposerOf(epoch: number): string | undefined {
    return this.proposers.get(epoch);
  }

  get config(): MembershipConfig {
    return this.configCurrent;
  }

  get epoch(): number {
    return this.configCurrent.epoch;
  }

  get opsInFlight(): number {
    return this.ops.size;
  }

  get acceptorState(): AcceptorState {
    return this.acceptor;
  }

  /** Data streams in progress (and recently finished incoming ones), for /status. */
  streams(): StreamProgress[] {
    const out: StreamProgress[] = [];
    for (const s of this.inStreams.values()) {
      const { peer, epoch, keys, bytes, total, resumedAfter, startedMs, lastMs } = s;
      out.push({ peer, role: 'receiving', epoch, keys, bytes, total, resumedAfter, startedMs, lastMs, done: s.complete });
    }
    for (const s of this.outStreams.values()) {
      const { peer, keys, bytes, total, resumedAfter, startedMs, lastMs } = s;
      out.push({ peer, role: 'sending', epoch: this.epoch, keys, bytes, total, resumedAfter, startedMs, lastMs, done: false });
    }
    return out;
  }

  /** After a restart: pushes of `epoch` were durable here up to `after` (the last transferProgress action). */
  setTransferResume(epoch: number, after: string): void {
    this.transferResume = { epoch, after };
  }

  /** Whether a membership change or a sync is being coordinated here. */
  membershipBusy(): boolean {
    for (const op of this.ops.values()) if (op.kind === 'config' || op.kind === 'sync') return true;
    return false;
  }

  /** The deadline of one operation (undefined once it is finished). */
  deadlineOf(opId: number): number | undefined {
    return this.ops.get(opId)?.deadlineMs;
  }

  /** The earliest operation deadline, so the runtime knows when to call tick(). */
  nextDeadlineMs(): number | undefined {
    let next: number | undefined;
    for (const op of this.ops.values()) {
      if (next === undefined || op.deadlineMs < next) next = op.deadlineMs;
    }
    for (const s of this.outStreams.values()) {
      if (next === undefined || s.deadlineMs < next) next = s.deadlineMs;
    }
    const awaiting = this.awaitingAcks.values().next();
    if (!awaiting.done && (next === undefined || awaiting.value.deadlineMs < next)) next = awaiting.value.deadlineMs;
    return next;
  }

  /** Client write or delete coordinated here. Throws InvalidConsistencyError / NotMemberError / TooManySiblingsError. */
  write(request: WriteRequest, local: LocalView): { opId: number; actions: Action[] } {
    this.assertMember();
    this.need(request.level, 'w');
    this.physicalMs = request.physicalMs;
    this.hlcLast = hlcTick(this.hlcLast, request.physicalMs);
    const previous = local.get(request.key) ?? EMPTY_RECORD;
    // Client contexts are tokens the cluster issued and authenticated (src/node/context-token.ts), so they
    // never cover a dot that was not written.
    const context = request.context ?? previous.context;
    const record = applyWrite(previous, context, request.dot, request.value, this.hlcLast, request.context === undefined ? [] : request.unseen);
    if (record.siblings.length > SIBLINGS_PER_WRITE_MAX) throw new TooManySiblingsError(record.siblings.length, SIBLINGS_PER_WRITE_MAX);
    const opId = this.allocateOpId();
    const op: WriteOp = {
      kind: 'write',
      key: request.key,
      record,
      level: request.level,
      accepted: request.accepted,
      reseatedAt: new Map(),
      acked: new Set(),
      unreachable: new Set(),
      sentTo: new Set([this.self]),
      deadlineMs: request.nowMs + (request.timeoutMs ?? this.requestTimeoutMs),
    };
    this.ops.set(opId, op);
    const epoch = this.epoch;
    const actions: Action[] = [
      { type: 'persist', key: request.key, record, then: { to: this.self, msg: { type: 'writeAck', opId, epoch } } },
    ];
    this.sendWrite(opId, op, actions);
    return { opId, actions };
  }

  /** Client read coordinated here: merges `level` replies from voters, then repairs stale replicas. */
  read(request: ReadRequest, local: LocalView): { opId: number; actions: Action[] } {
    this.assertMember();
    const need = this.need(request.level, 'r');
    const opId = this.allocateOpId();
    const op: ReadOp = {
      kind: 'read',
      key: request.key,
      level: request.level,
      replies: new Map(),
      unreachable: new Set(),
      askedTo: new Set([this.self]),
      deadlineMs: request.nowMs + this.requestTimeoutMs,
      merged: undefined,
      replied: false,
      required: need.voters,
    };
    const actions: Action[] = [];
    if (!quorumIds(this.configCurrent).includes(this.self) && request.level === 'one') {
      // A learner serves r=one from its own full replica, without asking the voters.
      const record = local.get(request.key);
      actions.push({ type: 'reply', result: { type: 'read', opId, key: request.key, record, replies: 1, required: 1 }, afterFlush: true });
      return { opId, actions };
    }
    this.ops.set(opId, op);
    if (quorumIds(this.configCurrent).includes(this.self)) op.replies.set(this.self, local.get(request.key));
    this.sendRead(opId, op, actions);
    this.progressRead(opId, op, local, actions);
    return { opId, actions };
  }

  /**
   * Asks every replica of the current configuration for its copy of `key` (its durability receipt: who holds
   * which version). Observes only: nothing is repaired. Ends when all answered or after `timeoutMs`.
   */
  probe(key: string, nowMs: number, local: LocalView, timeoutMs = this.requestTimeoutMs): { opId: number; actions: Action[] } {
    this.assertMember();
    const opId = this.allocateOpId();
    const replicas = replicaIds(this.configCurrent);
    const op: ProbeOp = { kind: 'probe', key, replicas, replies: new Map(), unavailable: new Set(), unreachable: new Set(), deadlineMs: nowMs + timeoutMs };
    const actions: Action[] = [];
    if (replicas.includes(this.self)) op.replies.set(this.self, local.get(key));
    this.ops.set(opId, op);
    for (const peer of replicas) {
      if (peer !== this.self) actions.push({ type: 'send', to: peer, msg: { type: 'read', opId, epoch: this.epoch, key } });
    }
    this.progressProbe(opId, op, actions, false);
    return { opId, actions };
  }

  private progressProbe(opId: number, op: ProbeOp, actions: Action[], expired: boolean): void {
    const answered = op.replies.size + op.unavailable.size + op.unreachable.size;
    if (!expired && answered < op.replicas.length) return;
    this.ops.delete(opId);
    const replicas = op.replicas.map((peer): ProbeReply => {
      if (op.replies.has(peer)) return { peer, state: 'replied', record: op.replies.get(peer) };
      const state = op.unavailable.has(peer) ? 'unavailable' : op.unreachable.has(peer) ? 'unreachable' : 'silent';
      return { peer, state, record: undefined };
    });
    actions.push({ type: 'reply', result: { type: 'probed', opId, key: op.key, replicas }, afterFlush: true });
  }

  /**
   * Proposes `proposed` as the configuration of the next epoch (current + 1): single-decree Paxos among the
   * current voters. Resolves with configCommitted, or `membership_conflict` when another value won the epoch
   * (the caller re-derives its change from the new configuration and retries). One change at a time here.
   */
  proposeConfig(proposed: MembershipConfig, nowMs: number, local: LocalView): { opId: number; actions: Action[] } {
    this.assertMember();
    const base = this.configCurrent;
    // A proposer's own acceptor records its ballot durably first, so a restart never reuses a ballot.
    if (!isVoter(base, this.self)) throw new MembershipChangeError('only a voter can propose a membership change');
    if (proposed.epoch !== base.epoch + 1 || proposed.clusterId !== base.clusterId) {
      throw new MembershipChangeError(`proposal for epoch ${proposed.epoch} does not follow epoch ${base.epoch}`);
    }
    for (const op of this.ops.values()) {
      if (op.kind === 'config') throw new MembershipChangeError('another membership change is in flight here');
    }
    this.roundSeen += 1;
    const ballot: Ballot = { round: this.roundSeen, proposer: this.self };
    const opId = this.allocateOpId();
    const op: ConfigOp = {
      kind: 'config',
      base,
      proposed,
      ballot,
      phase: 'prepare',
      value: undefined,
      promises: new Map(),
      accepted: new Map(),
      refused: new Set(),
      gone: goneAcceptor(base, proposed),
      deadlineMs: nowMs + this.membershipTimeoutMs,
    };
    this.ops.set(opId, op);
    const actions: Action[] = [];
    const msg: Message = { type: 'configPrepare', opId, epoch: base.epoch, ballot, config: base };
    for (const peer of voterIds(base)) if (peer !== op.gone) this.deliverTo(peer, msg, actions, local, nowMs);
    return { opId, actions };
  }

  /**
   * Starts a data sync (the runtime calls it after committing a joint configuration, or to fill a new learner).
   * Gathers every record from a majority of the quorum set the last epoch used (previous voters while joint,
   * else the voters), then pushes the union to targets: `targets` when given, else enough voters that every
   * record is durable on a majority of the new voters (this replica counting as one if it is a voter).
   */
  sync(nowMs: number, local: LocalView, targets?: readonly string[]): { opId: number; actions: Action[] } {
    this.assertMember();
    const config = this.configCurrent;
    const joint = isJoint(config);
    const source = joint ? config.previousVoters : voterIds(config);
    // Removed voters and replaced seats (their store is gone) are no source; this replica is one only if its
    // seat is not the one being replaced (assertMember: it holds its seat).
    const live = joint ? livePreviousVoters(config) : source.filter((p) => !isRemoved(config, p));
    const gatherFrom = live.filter((p) => p !== this.self);
    // Any n - majority(n) + 1 of the n source voters meet every majority of them, so their union holds every
    // write acknowledged before; and once they adopted this epoch, no majority of them is left on an older one.
    // n counts every source voter, also the gone ones: a write's majority may have included them.
    const gatherNeeded = Math.max(0, source.length - majority(source.length) + 1 - (live.includes(this.self) ? 1 : 0));
    let pushOrder: string[];
    let pushNeeded: number;
    if (targets !== undefined) {
      pushOrder = targets.filter((p) => p !== this.self);
      pushNeeded = pushOrder.length;
    } else {
      const voters = voterIds(config).filter((p) => p !== this.self);
      // New voters, and seats given to a new store, get the data first.
      const fresh = voters.filter((p) => !config.previousVoters.includes(p) || replacedIds(config).includes(p));
      pushOrder = [...fresh, ...voters.filter((p) => !fresh.includes(p))];
      pushNeeded = Math.max(0, majority(config.voters.length) - (isVoter(config, this.self) ? 1 : 0));
    }
    const opId = this.allocateOpId();
    const op: SyncOp = {
      kind: 'sync',
      epoch: config.epoch,
      phase: 'gather',
      gatherFrom,
      gatherNeeded,
      gathered: new Set(),
      gatherSeen: new Map(),
      gatherLast: new Map(),
      gatheredDurable: 0,
      gatherFailed: new Set(),
      pushOrder,
      pushNeeded,
      pushing: new Set(),
      pushed: new Set(),
      pushFailed: new Set(),
      deadlineMs: nowMs + this.transferIdleMs,
      progressed: false,
      keys: 0,
    };
    this.ops.set(opId, op);
    const actions: Action[] = [];
    for (const peer of gatherFrom) {
      // Announce the configuration first: a peer that missed the commit adopts it, then serves the request.
      actions.push({ type: 'send', to: peer, msg: { type: 'config', epoch: config.epoch, config } });
      // Nothing to gather when this replica alone is enough (2 -> 3 voters): a full stream would be wasted.
      if (gatherNeeded > 0) actions.push({ type: 'send', to: peer, msg: { type: 'transferRequest', opId, epoch: config.epoch } });
    }
    this.progressSync(opId, op, local, nowMs, actions);
    return { opId, actions };
  }

  /** A message from another replica (or this one's own acknowledgement after a durable write). */
  step(from: string, msg: Message, local: LocalView, nowMs: number): Action[] {
    // Membership is the authority for every message: only a member of our configuration is heard (and
    // answered). Anyone else holding the cluster key gets the join protocol (handled by the runtime) and
    // nothing here: no data, no acknowledgement, no configuration. A configuration is the one exception: it is
    // taken from anyone, but only with proof that the voters chose it (see maybeAdopt).
    if (from !== this.self && !this.hears(from, msg)) return this.tellRemoved(from, msg, nowMs);
    const actions = this.dispatch(from, msg, local, nowMs);
    if (from !== this.self && this.fromMember(from)) this.tellIfStale(from, msg.epoch, nowMs, actions);
    return actions;
  }

  /**
   * A device our configuration removed, speaking from an older epoch (it was down when its removal was
   * announced), is told the configuration that removed it, with its proof chain: it held the membership, so that
   * tells it nothing new, and until it knows it keeps serving its stale copy to its local clients (seed 516684:
   * a purged delete's value read back there) instead of showing role `removed`. Nothing else is answered.
   */
  private tellRemoved(from: string, msg: Message, nowMs: number): Action[] {
    if (from === this.self || !isRemoved(this.configCurrent, from)) return [];
    const actions: Action[] = [];
    this.tellIfStale(from, msg.epoch, nowMs, actions);
    return actions;
  }

  /**
   * Whether `peer` speaks for a seat of our configuration: a voter, a learner, or (joint phase) a previous
   * voter; never a removed device. A device of a newer configuration that we have not adopted yet is not
   * heard until we have: it (or anyone) brings us that configuration with its proof first.
   */
  fromMember(peer: string): boolean {
    const config = this.configCurrent;
    if (config.epoch === 0 || isRemoved(config, peer)) return false;
    return isMember(config, peer) || config.previousVoters.includes(peer);
  }

  private hears(from: string, msg: Message): boolean {
    if (msg.type === 'config') return true;
    // Not a member of anything yet (waiting to join, or a wiped device): we hold nothing we would serve, so a
    // read is answered "unavailable" (which says nothing) and everything else is dropped.
    if (this.epoch === 0) return msg.type === 'read';
    return this.fromMember(from);
  }

  private dispatch(from: string, msg: Message, local: LocalView, nowMs: number): Action[] {
    switch (msg.type) {
      case 'write':
        return this.onWrite(from, msg, local);
      case 'writeAck':
        return this.onWriteAck(from, msg.opId, msg.epoch);
      case 'read':
        return this.onRead(from, msg, local);
      case 'readReply':
        return msg.unavailable === true ? this.onReadUnavailable(from, msg.opId, local) : this.onReadReply(from, msg.opId, msg.record, local);
      case 'repair':
        return this.onRepair(from, msg, local);
      case 'stale':
        return this.onStale(from, msg.opId, msg.config, msg.chain ?? [], local, nowMs);
      case 'config':
        if (from === this.self) return this.onConfigDurable(msg.epoch, local, nowMs);
        return this.onConfigAnnounced(from, msg.config, msg.chain ?? [], local, nowMs);
      case 'configPrepare':
        return this.onPrepare(from, msg, local, nowMs);
      case 'configPromise':
        return this.onPromise(from, msg, local, nowMs);
      case 'configAccept':
        return this.onAccept(from, msg, local, nowMs);
      case 'configAccepted':
        return this.onAccepted(from, msg, local, nowMs);
      case 'transferRequest':
        return this.onTransferRequest(from, msg, local, nowMs);
      case 'transfer':
        return this.onTransfer(from, msg, local, nowMs);
      case 'transferAck':
        return this.onTransferAck(from, msg, local, nowMs);
      case 'joinRequest':
      case 'joinReply':
      case 'heartbeat':
      case 'heartbeatAck':
        assert(false, `${msg.type} is handled by the runtime, not the replica core`);
    }
  }

  /**
   * A peer's epoch seen outside the core's messages (its heartbeats): a peer behind us (it missed a commit
   * while down, and an idle cluster sends it nothing else) is told the current configuration.
   */
  peerEpoch(from: string, epoch: number, nowMs: number): Action[] {
    const actions: Action[] = [];
    // Only a member is told our configuration (it is none of a non-member's business), and a removed device
    // its removal (tellRemoved).
    if (from !== this.self && (this.fromMember(from) || isRemoved(this.configCurrent, from))) this.tellIfStale(from, epoch, nowMs, actions);
    return actions;
  }

  /** The send of `msg` to `to` failed (no connection): count it against the operation at once. */
  sendFailed(to: string, msg: Message, local: LocalView, nowMs: number): Action[] {
    if (!('opId' in msg)) return [];
    const actions: Action[] = [];
    if (msg.type === 'transfer' || msg.type === 'transferAck') {
      const stream = this.outStreams.get(streamKey(to, msg.opId));
      if (msg.type === 'transfer' && stream !== undefined) this.dropStream(stream, local, nowMs, actions);
      return actions;
    }
    const op = this.ops.get(msg.opId);
    if (op === undefined) {
      const w = msg.type === 'write' ? this.awaitingAcks.get(msg.opId) : undefined;
      if (w === undefined || !w.pending.delete(to)) return [];
      if (w.pending.size === 0) this.awaitingAcks.delete(msg.opId);
      return [{ type: 'hint', peer: to, key: w.key }];
    }
    if (op.kind === 'write' && msg.type === 'write') {
      op.unreachable.add(to);
      this.progressWrite(msg.opId, op, actions);
    } else if (op.kind === 'read' && msg.type === 'read') {
      op.unreachable.add(to);
      this.progressRead(msg.opId, op, local, actions);
      if (op.replied && this.readSettled(op)) this.ops.delete(msg.opId);
    } else if (op.kind === 'config' && (msg.type === 'configPrepare' || msg.type === 'configAccept')) {
      op.refused.add(to);
      this.progressConfig(msg.opId, op, local, nowMs, actions);
    } else if (op.kind === 'sync' && msg.type === 'transferRequest') {
      op.gatherFailed.add(to);
      this.progressSync(msg.opId, op, local, nowMs, actions);
    } else if (op.kind === 'probe' && msg.type === 'read') {
      op.unreachable.add(to);
      this.progressProbe(msg.opId, op, actions, false);
    }
    return actions;
  }

  /** Fails operations whose deadline has passed; drops idle data streams; hints replicas silent on a write. */
  tick(nowMs: number, local: LocalView): Action[] {
    const actions: Action[] = [];
    for (const [opId, op] of this.ops) {
      if (op.deadlineMs > nowMs) continue;
      // A push in flight has its own idle deadline: a silent target is dropped there and the sync falls back
      // to another voter (below), instead of failing as a whole first.
      if (op.kind === 'sync' && (op.progressed || (op.phase === 'push' && op.pushing.size > 0))) {
        op.progressed = false;
        op.deadlineMs = nowMs + this.transferIdleMs;
        continue;
      }
      if (op.kind === 'probe') {
        this.progressProbe(opId, op, actions, true);
        continue;
      }
      this.ops.delete(opId);
      if (op.kind === 'read' && op.replied) continue;
      if (op.kind === 'write') this.hintMissing(op, actions);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
    }
    for (const [opId, w] of this.awaitingAcks) {
      if (w.deadlineMs > nowMs) break;
      this.awaitingAcks.delete(opId);
      for (const peer of w.pending) actions.push({ type: 'hint', peer, key: w.key });
    }
    for (const stream of [...this.outStreams.values()]) {
      if (stream.deadlineMs <= nowMs) this.dropStream(stream, local, nowMs, actions);
    }
    return actions;
  }

  /**
   * Adopts a committed configuration learned outside the core's own messages: the join reply of the member
   * `from` that we asked to join. Before we are a member of anything, only a configuration that names us is
   * taken (see admissionFrom).
   */
  adoptConfig(config: MembershipConfig, local: LocalView, nowMs: number, from?: string): Action[] {
    if (this.epoch === 0) {
      if (from !== undefined) this.admissionFrom(from);
      return isMember(config, this.self) ? this.maybeAdopt(config, local, nowMs) : [];
    }
    return this.maybeAdopt(config, local, nowMs);
  }

  /**
   * We asked `peer` to join (the runtime calls this before sending the request). Until we are a member, a
   * configuration announced by such a peer that seats us is adopted: a new voter (or a re-seated store) must
   * take its admission's joint configuration before the join reply, which comes only after the data sync that
   * pushes to it. Trust on first use: a device that is not a member yet trusts the member it asked (the
   * operator's --join address, or a key holder found over mDNS); see docs/security.md.
   */
  admissionFrom(peer: string): void {
    this.admissionPeers.delete(peer);
    this.admissionPeers.add(peer);
    while (this.admissionPeers.size > ADMISSION_PEERS_MAX) this.admissionPeers.delete(this.admissionPeers.values().next().value as string);
  }

  /** A configuration announced by `from`: adopted when it is newer and proven (or, before we are a member, an admission). */
  private onConfigAnnounced(from: string, config: MembershipConfig, chain: readonly MembershipConfig[], local: LocalView, nowMs: number): Action[] {
    if (this.epoch === 0) {
      // Not a member of anything yet: only the member we asked to join is trusted, and only with a
      // configuration that names us (a wiped device learns its old seat's configuration, then its new seat's).
      if (!this.admissionPeers.has(from) || !isMember(config, this.self)) return [];
    } else if (!this.fromMember(from)) {
      // Unproven configurations (no auth: tests only) are taken from members only. With proofs, anyone may
      // bring one: a member of a configuration we have not adopted yet is not a member to us until we have.
      if (this.auth === undefined || config.epoch <= this.epoch) return [];
      // Checking a proof costs signature verifications (~0.3 ms each): a non-member gets one check per
      // STRANGER_CONFIG_CHECK_INTERVAL_MS, all non-members together, so a key holder cannot spend our CPU.
      // Members (most of whom outlive any configuration we may be behind) are not limited.
      if (nowMs < this.strangerConfigCheckAtMs) return [];
      this.strangerConfigCheckAtMs = nowMs + STRANGER_CONFIG_CHECK_INTERVAL_MS;
    }
    // Who tells us about a configuration is normally who committed it and is now syncing its data (a member's
    // word only: a stranger naming itself would hold off the takeover of a joint phase).
    if ((this.epoch === 0 || this.fromMember(from)) && !this.proposers.has(config.epoch)) this.rememberProposer(config.epoch, from);
    return this.maybeAdopt(config, local, nowMs, chain);
  }

  // ---------------------------------------------------------------- replica side

  private onWrite(from: string, msg: Extract<Message, { type: 'write' }>, local: LocalView): Action[] {
    const refusal = this.refuse(from, msg.opId, msg.epoch);
    if (refusal !== undefined) return refusal;
    // An ack says "this seat's store holds it": a device without its seat stores and acks nothing.
    if (!this.seated()) return [];
    this.observe(msg.record);
    const merged = mergeRecords(local.get(msg.key) ?? EMPTY_RECORD, msg.record);
    const ack: Message = { type: 'writeAck', opId: msg.opId, epoch: this.epoch };
    return [{ type: 'persist', key: msg.key, record: merged, then: { to: from, msg: ack } }];
  }

  private onRead(from: string, msg: Extract<Message, { type: 'read' }>, local: LocalView): Action[] {
    // From a newer epoch: we may not hold that epoch's seat (an old store under a seat given to another
    // store). Answer nothing for it; our reply's older epoch makes the reader tell us the configuration.
    const behind = msg.epoch > this.epoch && !isRemoved(this.configCurrent, from);
    const refusal = behind ? undefined : this.refuse(from, msg.opId, msg.epoch);
    if (refusal !== undefined) return refusal;
    if (behind || !this.seated()) {
      // A device whose store is not its seat's (wiped, re-flashed) could hide an acknowledged write.
      const unavailable: Message = { type: 'readReply', opId: msg.opId, epoch: this.epoch, key: msg.key, record: undefined, unavailable: true };
      return [{ type: 'send', to: from, msg: unavailable }];
    }
    const reply: Message = { type: 'readReply', opId: msg.opId, epoch: this.epoch, key: msg.key, record: local.get(msg.key) };
    // What we hold may include writes still staged: answer once they are durable, or a crash could undo what
    // the reader was shown (and a quorum read would count a copy we then no longer have).
    return [{ type: 'flush', then: { to: from, msg: reply } }];
  }

  private onRepair(from: string, msg: Extract<Message, { type: 'repair' }>, local: LocalView): Action[] {
    if (!this.acceptsDataFrom(from, msg.epoch) || !this.seated()) return [];
    this.observe(msg.record);
    const current = local.get(msg.key) ?? EMPTY_RECORD;
    const merged = mergeRecords(current, msg.record);
    if (recordsEqual(merged, current)) return [];
    return [{ type: 'persist', key: msg.key, record: merged, then: undefined }];
  }

  /** Refuses a request from an older epoch (with our configuration) or from a non-member; else undefined. */
  private refuse(from: string, opId: number, epoch: number): Action[] | undefined {
    if (this.epoch > 0 && epoch < this.epoch) {
      const { config, chain } = this.configFor(epoch);
      return [{ type: 'send', to: from, msg: { type: 'stale', opId, epoch: this.epoch, config, ...(chain === undefined ? {} : { chain }) } }];
    }
    if (!this.acceptsDataFrom(from, epoch)) return [];
    return undefined;
  }

  /**
   * Data (writes, repairs, pushes) is taken only from a member speaking from our own epoch. From an older one it
   * could be an old store under a re-seated peer ID bringing back what was deleted since (the sender is told
   * our configuration); from a newer one our seat may be another store's by then (we wait until we adopted it:
   * the sender tells us, see tellIfStale).
   */
  private acceptsDataFrom(from: string, epoch: number): boolean {
    if (from === this.self) return true;
    if (this.epoch === 0 || epoch !== this.epoch || isRemoved(this.configCurrent, from)) return false;
    return isMember(this.configCurrent, from) || this.configCurrent.previousVoters.includes(from);
  }

  // ---------------------------------------------------------------- acceptor side (membership decisions)

  private onPrepare(from: string, msg: Extract<Message, { type: 'configPrepare' }>, local: LocalView, nowMs: number): Action[] {
    const actions: Action[] = [];
    const refuse = (promised: Ballot | undefined, config: MembershipConfig | undefined): void => {
      const reply: Message = { type: 'configPromise', opId: msg.opId, epoch: this.epoch, ballot: msg.ballot, ok: false, accepted: undefined, promised, config };
      this.deliverTo(from, reply, actions, local, nowMs);
    };
    if (this.epoch > msg.epoch) {
      refuse(undefined, this.configCurrent);
      return actions;
    }
    // The proposer's base is committed: catch up to it before voting on its successor.
    if (this.epoch < msg.epoch) actions.push(...this.maybeAdopt(msg.config, local, nowMs));
    if (this.epoch !== msg.epoch || !isVoter(this.configCurrent, this.self) || !isVoter(this.configCurrent, from)) return actions;
    // A voter seat held by another store: this device lost the promises its seat made. It never votes.
    if (!this.seated()) {
      refuse(undefined, undefined);
      return actions;
    }
    this.noteRound(msg.ballot);
    const out = acceptorPrepare(this.acceptor, msg.ballot);
    if (!out.ok) {
      refuse(out.promised, undefined);
      return actions;
    }
    this.acceptor = out.state;
    const reply: Message = { type: 'configPromise', opId: msg.opId, epoch: this.epoch, ballot: msg.ballot, ok: true, accepted: out.accepted, promised: undefined, config: undefined };
    actions.push({ type: 'persistAcceptor', state: out.state, then: { to: from, msg: reply } });
    return actions;
  }

  private onAccept(from: string, msg: Extract<Message, { type: 'configAccept' }>, local: LocalView, nowMs: number): Action[] {
    const actions: Action[] = [];
    const refuse = (promised: Ballot | undefined, config: MembershipConfig | undefined): void => {
      const reply: Message = { type: 'configAccepted', opId: msg.opId, epoch: this.epoch, ballot: msg.ballot, ok: false, promised, config };
      this.deliverTo(from, reply, actions, local, nowMs);
    };
    if (this.epoch > msg.epoch) {
      refuse(undefined, this.configCurrent);
      return actions;
    }
    const valid = msg.config.epoch === msg.epoch + 1 && msg.config.clusterId === this.configCurrent.clusterId;
    if (this.epoch < msg.epoch || !valid || !this.seated() || !isVoter(this.configCurrent, this.self) || !isVoter(this.configCurrent, from)) {
      refuse(undefined, undefined);
      return actions;
    }
    this.noteRound(msg.ballot);
    const out = acceptorAccept(this.acceptor, msg.ballot, msg.config);
    if (!out.ok) {
      refuse(out.promised, undefined);
      return actions;
    }
    this.acceptor = out.state;
    this.rememberProposer(msg.config.epoch, from);
    // The signature is the proof, for any device, that this acceptor accepted this value at this ballot.
    const signature = this.auth?.sign(acceptPayload(msg.config, msg.ballot));
    const reply: Message = { type: 'configAccepted', opId: msg.opId, epoch: this.epoch, ballot: msg.ballot, ok: true, promised: undefined, config: undefined, signature };
    actions.push({ type: 'persistAcceptor', state: out.state, then: { to: from, msg: reply } });
    return actions;
  }

  // ---------------------------------------------------------------- proposer side

  private onPromise(from: string, msg: Extract<Message, { type: 'configPromise' }>, local: LocalView, nowMs: number): Action[] {
    const op = this.ops.get(msg.opId);
    if (op === undefined || op.kind !== 'config' || op.phase !== 'prepare' || ballotCompare(op.ballot, msg.ballot) !== 0) return [];
    if (!isVoter(op.base, from) || op.promises.has(from) || op.refused.has(from)) return [];
    const actions: Action[] = [];
    if (msg.ok) {
      if (msg.accepted !== undefined && msg.accepted.config.epoch !== op.base.epoch + 1) return [];
      op.promises.set(from, msg.accepted);
    } else {
      this.noteRefusal(op, from, msg.promised, msg.config, local, nowMs, actions);
      if (!this.ops.has(msg.opId)) return actions;
    }
    this.progressConfig(msg.opId, op, local, nowMs, actions);
    return actions;
  }

  private onAccepted(from: string, msg: Extract<Message, { type: 'configAccepted' }>, local: LocalView, nowMs: number): Action[] {
    const op = this.ops.get(msg.opId);
    if (op === undefined || op.kind !== 'config' || op.phase !== 'accept' || ballotCompare(op.ballot, msg.ballot) !== 0) return [];
    if (!isVoter(op.base, from) || op.accepted.has(from) || op.refused.has(from)) return [];
    const actions: Action[] = [];
    if (msg.ok) {
      // Its signature goes into the decided value's proof: an accept without a valid one is not counted (a
      // proof short of a quorum would be refused by every device that checks it).
      if (this.auth !== undefined && op.value !== undefined) {
        const signature = msg.signature;
        if (signature === undefined || !this.auth.verify(from, acceptPayload(op.value, op.ballot), signature)) return [];
      }
      op.accepted.set(from, msg.signature);
    } else {
      this.noteRefusal(op, from, msg.promised, msg.config, local, nowMs, actions);
      if (!this.ops.has(msg.opId)) return actions;
    }
    this.progressConfig(msg.opId, op, local, nowMs, actions);
    return actions;
  }

  private noteRefusal(
    op: ConfigOp,
    from: string,
    promised: Ballot | undefined,
    config: MembershipConfig | undefined,
    local: LocalView,
    nowMs: number,
    actions: Action[],
  ): void {
    op.refused.add(from);
    if (promised !== undefined) this.noteRound(promised);
    // A newer committed configuration fails this proposal (through maybeAdopt) as a conflict.
    if (config !== undefined && config.epoch > this.epoch) actions.push(...this.maybeAdopt(config, local, nowMs));
  }

  private progressConfig(opId: number, op: ConfigOp, local: LocalView, nowMs: number, actions: Action[]): void {
    const { acceptors, needed } = configQuorum(op.base, op.gone);
    if (acceptors - op.refused.size < needed) {
      this.ops.delete(opId);
      const conflict = op.refused.size > 0;
      actions.push({ type: 'reply', result: this.failure(opId, op, conflict ? 'membership_conflict' : undefined) });
      return;
    }
    if (op.phase === 'prepare' && op.promises.size >= needed) {
      // Paxos: if any acceptor in this majority accepted a value, the highest-ballot one may already be chosen.
      op.value = highestAccepted(op.promises.values())?.config ?? op.proposed;
      // The quorum phase 2 needs is the one the value's proof is checked with: a recovered value that is no
      // re-seat needs a majority of all the voters even when our own proposal was one (else its proof falls
      // short, every device refuses it, and the slot stays decided-but-unlearnable for good).
      op.gone = goneAcceptor(op.base, op.value);
      op.phase = 'accept';
      const msg: Message = { type: 'configAccept', opId, epoch: op.base.epoch, ballot: op.ballot, config: op.value };
      for (const peer of voterIds(op.base)) if (peer !== op.gone) this.deliverTo(peer, msg, actions, local, nowMs);
      return;
    }
    if (op.phase === 'accept' && op.accepted.size >= needed && op.value !== undefined) {
      const value = this.withProof(op.value, op);
      this.ops.delete(opId);
      actions.push(...this.maybeAdopt(value, local, nowMs));
      // Tell every device of both configurations (and a removed one, so it knows), not only the acceptors.
      const told = new Set([...replicaIds(op.base), ...replicaIds(value), ...value.removed.filter((p) => !op.base.removed.includes(p))]);
      told.delete(this.self);
      for (const peer of told) actions.push({ type: 'send', to: peer, msg: { type: 'config', epoch: value.epoch, config: value } });
      if (configsEqual(value, op.proposed)) {
        actions.push({ type: 'reply', result: { type: 'configCommitted', opId, config: value } });
      } else {
        actions.push({ type: 'reply', result: this.failure(opId, op, 'membership_conflict') });
      }
    }
  }

  /** The decided value with the accept signatures collected for it: its proof. */
  private withProof(value: MembershipConfig, op: ConfigOp): MembershipConfig {
    if (this.auth === undefined) return value;
    const signatures: ConfigSignature[] = [];
    for (const [peerId, signature] of op.accepted) if (signature !== undefined) signatures.push({ peerId, signature });
    return { ...value, proof: { ballot: op.ballot, signatures } };
  }

  private noteRound(ballot: Ballot): void {
    if (ballot.round > this.roundSeen) this.roundSeen = ballot.round;
  }

  // ---------------------------------------------------------------- data streams (sync)

  private onTransferRequest(from: string, msg: Extract<Message, { type: 'transferRequest' }>, local: LocalView, nowMs: number): Action[] {
    if (this.epoch > msg.epoch) {
      const { config, chain } = this.configFor(msg.epoch);
      return [{ type: 'send', to: from, msg: { type: 'stale', opId: msg.opId, epoch: this.epoch, config, ...(chain === undefined ? {} : { chain }) } }];
    }
    // A request from an epoch we have not adopted yet is dropped; the coordinator announced it and retries.
    // Only a seated replica whose seat is not being replaced has the data a gather counts on.
    if (this.epoch !== msg.epoch || !isMember(this.configCurrent, from) || !this.seated() || replacedIds(this.configCurrent).includes(this.self)) return [];
    const key = streamKey(from, msg.opId);
    if (this.outStreams.has(key) || this.outStreams.size >= OUT_STREAMS_MAX) return [];
    const stream = newOutStream(from, msg.opId, undefined, nowMs + this.transferIdleMs, this.durableEpoch < this.epoch, nowMs);
    this.outStreams.set(key, stream);
    const actions: Action[] = [];
    // Our snapshot must come after we stopped accepting older-epoch writes for good: if the configuration we
    // adopted were not durable yet, a crash could take us back to the older epoch, acking writes the
    // requester's gather already counted us for. So the first batch waits for that durability.
    if (!stream.waiting) this.fillWindow(stream, local, nowMs, actions);
    return actions;
  }

  /** Our persisted configuration of `epoch` is durable: start data streams that waited for it. */
  private onConfigDurable(epoch: number, local: LocalView, nowMs: number): Action[] {
    if (epoch > this.durableEpoch) this.durableEpoch = epoch;
    const actions: Action[] = [];
    for (const stream of this.outStreams.values()) {
      if (stream.waiting && this.durableEpoch >= this.epoch) {
        stream.waiting = false;
        this.fillWindow(stream, local, nowMs, actions);
      }
    }
    return actions;
  }

  private onTransfer(from: string, msg: Extract<Message, { type: 'transfer' }>, local: LocalView, nowMs: number): Action[] {
    // Acks of a push count this seat as holding the data: only the seat's own store takes it.
    if (!this.acceptsDataFrom(from, msg.epoch) || !this.seated()) return [];
    const actions: Action[] = [];
    for (const { key, record } of msg.records) {
      this.observe(record);
      const current = local.get(key) ?? EMPTY_RECORD;
      const merged = mergeRecords(current, record);
      if (!recordsEqual(merged, current)) actions.push({ type: 'persist', key, record: merged, then: undefined });
    }
    const op = this.ops.get(msg.opId);
    if (op !== undefined && op.kind === 'sync' && op.gatherFrom.includes(from)) {
      actions.push({ type: 'flush', then: { to: from, msg: { type: 'transferAck', opId: msg.opId, epoch: this.epoch, seq: msg.seq } } });
      // Every batch of a gather stream must arrive (in any order: merging commutes); a repeat is merged
      // (harmless) but not counted. The stream counts once its last batch and every one before it are in.
      let seen = op.gatherSeen.get(from);
      if (seen === undefined) {
        seen = new Set();
        op.gatherSeen.set(from, seen);
      }
      if (seen.has(msg.seq)) return actions;
      seen.add(msg.seq);
      if (msg.done) op.gatherLast.set(from, msg.seq);
      op.progressed = true;
      op.keys += msg.records.length;
      const last = op.gatherLast.get(from);
      if (last !== undefined && seen.size === last && !op.gathered.has(from)) {
        op.gathered.add(from);
        // Our store shows the merged records once the runtime ran the persists above: count the stream
        // when they are durable (a transferAck from ourselves), then push from the store.
        actions.push({ type: 'flush', then: { to: this.self, msg: { type: 'transferAck', opId: msg.opId, epoch: this.epoch, seq: msg.seq } } });
      }
      return actions;
    }
    if (msg.opId >= this.opIdFirst && msg.opId < this.opIdNext) {
      // A late gather answer for a sync of ours that has ended: one source's data, not a push of everything.
      // Merged (above) and acknowledged, but never a resume point: a later push of the epoch would skip the
      // keys that only other sources held (a write acknowledged by them would be lost here).
      actions.push({ type: 'flush', then: { to: from, msg: { type: 'transferAck', opId: msg.opId, epoch: this.epoch, seq: msg.seq } } });
      return actions;
    }
    // A push (a sync's data for a new voter, a learner or a failover target). Where an earlier push of this
    // epoch got to durably, the first ack tells the sender to skip ahead: an interrupted transfer resumes.
    const resume = this.transferResume?.epoch === msg.epoch ? this.transferResume.after : undefined;
    const lastKey = msg.records[msg.records.length - 1]?.key;
    const skipTo = msg.seq === 1 && !msg.done && resume !== undefined && (lastKey === undefined || compareKeys(resume, lastKey) > 0) ? resume : undefined;
    this.trackInStream(from, msg, lastKey, skipTo, nowMs, actions);
    actions.push({ type: 'flush', then: { to: from, msg: { type: 'transferAck', opId: msg.opId, epoch: this.epoch, seq: msg.seq, ...(skipTo === undefined ? {} : { resumeAfter: skipTo }) } } });
    return actions;
  }

  /** Counts a push batch; emits transferProgress when the batches in a row from the first reach further. */
  private trackInStream(
    from: string,
    msg: Extract<Message, { type: 'transfer' }>,
    lastKey: string | undefined,
    skipTo: string | undefined,
    nowMs: number,
    actions: Action[],
  ): void {
    const trackKey = streamKey(from, msg.opId);
    let stream = this.inStreams.get(trackKey);
    if (stream === undefined) {
      stream = {
        peer: from,
        opId: msg.opId,
        epoch: msg.epoch,
        keys: 0,
        bytes: 0,
        total: undefined,
        resumedAfter: undefined,
        startedMs: nowMs,
        lastMs: nowMs,
        contiguous: 0,
        pending: new Map(),
        lastSeq: undefined,
        complete: false,
      };
      this.inStreams.set(trackKey, stream);
      while (this.inStreams.size > IN_STREAMS_TRACKED_MAX) this.inStreams.delete(this.inStreams.keys().next().value as string);
    }
    if (stream.complete || msg.seq <= stream.contiguous || stream.pending.has(msg.seq)) return; // a repeat
    if (stream.pending.size >= IN_STREAM_PENDING_MAX) return; // beyond any window a sender keeps: not counted
    if (skipTo !== undefined) stream.resumedAfter = skipTo;
    stream.keys += msg.records.length;
    for (const r of msg.records) stream.bytes += recordSizeEstimate(r);
    if (msg.total !== undefined) stream.total = msg.total;
    stream.lastMs = nowMs;
    if (msg.done) stream.lastSeq = msg.seq;
    stream.pending.set(msg.seq, lastKey);
    let reached: string | undefined;
    while (stream.pending.has(stream.contiguous + 1)) {
      stream.contiguous += 1;
      reached = stream.pending.get(stream.contiguous) ?? reached;
      stream.pending.delete(stream.contiguous);
    }
    if (reached !== undefined) {
      const current = this.transferResume?.epoch === stream.epoch ? this.transferResume.after : undefined;
      if (current === undefined || compareKeys(reached, current) > 0) {
        this.transferResume = { epoch: stream.epoch, after: reached };
        actions.push({ type: 'transferProgress', epoch: stream.epoch, after: reached });
      }
    }
    if (stream.lastSeq !== undefined && stream.contiguous >= stream.lastSeq) {
      stream.complete = true;
      actions.push({ type: 'transferComplete', epoch: stream.epoch, peer: stream.peer });
    }
  }

  private onTransferAck(from: string, msg: Extract<Message, { type: 'transferAck' }>, local: LocalView, nowMs: number): Action[] {
    const { opId, seq } = msg;
    if (from === this.self) {
      const op = this.ops.get(opId);
      if (op === undefined || op.kind !== 'sync') return [];
      op.gatheredDurable += 1;
      const actions: Action[] = [];
      this.progressSync(opId, op, local, nowMs, actions);
      return actions;
    }
    const stream = this.outStreams.get(streamKey(from, opId));
    // An acknowledgement of a batch in flight moves the stream on (a duplicate or an unknown one does not).
    if (stream === undefined || seq < 1 || seq > stream.seq || stream.acked.has(seq)) return [];
    stream.acked.add(seq);
    stream.deadlineMs = nowMs + this.transferIdleMs;
    const resumeAfter = msg.resumeAfter;
    if (resumeAfter !== undefined && seq === 1 && stream.syncOpId !== undefined && stream.resumedAfter === undefined && !stream.lastBatchDone) {
      // The receiver holds every key up to resumeAfter from an earlier push of this epoch: skip them (the
      // batches already in flight are merged as no-ops there).
      if (stream.after === undefined || compareKeys(resumeAfter, stream.after) > 0) {
        stream.after = resumeAfter;
        stream.resumedAfter = resumeAfter;
      }
    }
    const actions: Action[] = [];
    const owner = stream.syncOpId === undefined ? undefined : this.ops.get(stream.syncOpId);
    if (owner !== undefined && owner.kind === 'sync') owner.progressed = true;
    if (!stream.lastBatchDone || stream.acked.size < stream.seq) {
      this.fillWindow(stream, local, nowMs, actions);
      return actions;
    }
    this.outStreams.delete(streamKey(from, opId));
    const op = stream.syncOpId === undefined ? undefined : this.ops.get(stream.syncOpId);
    if (op !== undefined && op.kind === 'sync' && stream.syncOpId !== undefined) {
      op.pushing.delete(from);
      op.pushed.add(from);
      op.progressed = true;
      this.progressSync(stream.syncOpId, op, local, nowMs, actions);
    }
    return actions;
  }

  /**
   * Sends batches until STREAM_WINDOW are in flight or the last one is out. A push sends its first batch
   * alone: the receiver's answer may move the stream ahead (resumeAfter), which batches in flight would waste.
   */
  private fillWindow(stream: OutStream, local: LocalView, nowMs: number, actions: Action[]): void {
    const window = stream.syncOpId !== undefined && stream.acked.size === 0 ? 1 : STREAM_WINDOW;
    while (!stream.lastBatchDone && stream.seq - stream.acked.size < window) this.sendBatch(stream, local, nowMs, actions);
  }

  private sendBatch(stream: OutStream, local: LocalView, nowMs: number, actions: Action[]): void {
    const entries = local.scan(stream.after, this.transferBatchRecords);
    const records: KeyedRecord[] = [];
    let bytes = 0;
    for (const entry of entries) {
      const size = recordSizeEstimate(entry);
      if (records.length > 0 && bytes + size > this.transferBatchBytes) break;
      records.push({ key: entry.key, record: entry.record });
      bytes += size;
    }
    const done = records.length === entries.length && entries.length < this.transferBatchRecords;
    stream.after = records[records.length - 1]?.key ?? stream.after;
    stream.lastBatchDone = done;
    stream.deadlineMs = nowMs + this.transferIdleMs;
    stream.keys += records.length;
    stream.bytes += bytes;
    stream.total = local.keyCount();
    stream.lastMs = nowMs;
    stream.seq += 1;
    const msg: Message = { type: 'transfer', opId: stream.opId, epoch: this.epoch, seq: stream.seq, records, done, total: stream.total };
    // The batch is read from the store, staged writes included: sent once they are durable, so a receiver
    // (counting this stream toward a sync) never gets a record that a crash here could still undo.
    actions.push({ type: 'flush', then: { to: stream.peer, msg } });
  }

  private dropStream(stream: OutStream, local: LocalView, nowMs: number, actions: Action[]): void {
    this.outStreams.delete(streamKey(stream.peer, stream.opId));
    if (stream.syncOpId === undefined) return;
    const op = this.ops.get(stream.syncOpId);
    if (op === undefined || op.kind !== 'sync') return;
    op.pushing.delete(stream.peer);
    op.pushFailed.add(stream.peer);
    this.progressSync(stream.syncOpId, op, local, nowMs, actions);
  }

  private progressSync(opId: number, op: SyncOp, local: LocalView, nowMs: number, actions: Action[]): void {
    if (op.phase === 'gather') {
      if (op.gatheredDurable >= op.gatherNeeded) {
        op.phase = 'push';
      } else {
        if (op.gatherFrom.length - op.gatherFailed.size < op.gatherNeeded) this.failSync(opId, op, 'gather', actions);
        return;
      }
    }
    if (op.pushed.size >= op.pushNeeded) {
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: { type: 'synced', opId, epoch: op.epoch, keys: op.keys } });
      return;
    }
    for (const peer of op.pushOrder) {
      if (op.pushed.size + op.pushing.size >= op.pushNeeded) break;
      if (op.pushing.has(peer) || op.pushed.has(peer) || op.pushFailed.has(peer)) continue;
      const key = streamKey(peer, opId);
      if (this.outStreams.has(key)) continue;
      const stream = newOutStream(peer, opId, opId, 0, false, nowMs);
      this.outStreams.set(key, stream);
      op.pushing.add(peer);
      this.fillWindow(stream, local, nowMs, actions);
    }
    if (op.pushed.size + op.pushing.size < op.pushNeeded) this.failSync(opId, op, 'push', actions);
  }

  private failSync(opId: number, op: SyncOp, phase: 'gather' | 'push', actions: Action[]): void {
    this.ops.delete(opId);
    for (const peer of op.pushing) this.outStreams.delete(streamKey(peer, opId));
    const done = phase === 'gather' ? op.gathered.size : op.pushed.size;
    const needed = phase === 'gather' ? op.gatherNeeded : op.pushNeeded;
    actions.push({
      type: 'reply',
      result: {
        type: 'failed',
        opId,
        code: 'sync_failed',
        message: `data sync for epoch ${op.epoch}: ${phase} reached ${done} of the ${needed} devices needed`,
        acks: done,
        required: needed,
        voters: this.configCurrent.voters.length,
      },
    });
  }

  // ---------------------------------------------------------------- coordinator side (reads and writes)

  /** Acks needed for `level` under the current configuration; throws InvalidConsistencyError if impossible. */
  private need(level: ConsistencyLevel, name: 'w' | 'r' = 'w'): Need {
    const config = this.configCurrent;
    const voters = requiredAcks(level, config.voters.length, name);
    // Every level that promises a majority (quorum, all, or a number that big) also needs the previous voters'
    // majority while joint: a joint phase may be abandoned back to them (withJointAborted).
    return { voters, previous: voters >= majority(config.voters.length) ? previousNeeded(config) : 0 };
  }

  /** Counts `answered` against `need`: met, or impossible given who is unreachable. */
  private count(answered: (p: string) => boolean, unreachable: Set<string>, need: Need): { met: boolean; possible: boolean; voters: number } {
    const config = this.configCurrent;
    const voters = voterIds(config);
    const previous = livePreviousVoters(config);
    const got = voters.filter(answered).length;
    const gotPrevious = previous.filter(answered).length;
    const canV = voters.filter((p) => answered(p) || !unreachable.has(p)).length;
    const canP = previous.filter((p) => answered(p) || !unreachable.has(p)).length;
    return {
      met: got >= need.voters && gotPrevious >= need.previous,
      possible: canV >= need.voters && canP >= need.previous,
      voters: got,
    };
  }

  private sendWrite(opId: number, op: WriteOp, actions: Action[]): void {
    for (const peer of replicaIds(this.configCurrent)) {
      if (op.sentTo.has(peer)) continue;
      op.sentTo.add(peer);
      actions.push({ type: 'send', to: peer, msg: { type: 'write', opId, epoch: this.epoch, key: op.key, record: op.record } });
    }
  }

  private sendRead(opId: number, op: ReadOp, actions: Action[]): void {
    for (const peer of quorumIds(this.configCurrent)) {
      if (op.askedTo.has(peer)) continue;
      op.askedTo.add(peer);
      actions.push({ type: 'send', to: peer, msg: { type: 'read', opId, epoch: this.epoch, key: op.key } });
    }
  }

  private onWriteAck(from: string, opId: number, epoch: number): Action[] {
    const op = this.ops.get(opId);
    if (op === undefined) {
      const w = this.awaitingAcks.get(opId);
      if (w !== undefined) {
        w.pending.delete(from);
        if (w.pending.size === 0) this.awaitingAcks.delete(opId);
      }
      return [];
    }
    if (op.kind !== 'write') return [];
    if (epoch < (op.reseatedAt.get(from) ?? 0)) return []; // from a store this seat no longer names
    op.acked.add(from);
    const actions: Action[] = [];
    this.progressWrite(opId, op, actions);
    return actions;
  }

  private progressWrite(opId: number, op: WriteOp, actions: Action[]): void {
    let need: Need;
    try {
      need = this.need(op.level);
    } catch (error) {
      if (!(error instanceof InvalidConsistencyError)) throw error;
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
      return;
    }
    const tally = this.count((p) => op.acked.has(p), op.unreachable, need);
    if (tally.met) {
      this.ops.delete(opId);
      this.awaitRemainingAcks(opId, op, actions);
      actions.push({
        type: 'reply',
        result: { type: 'written', opId, key: op.key, record: op.record, acks: tally.voters, required: need.voters },
      });
      return;
    }
    // Fail fast, but only once our own durable write is in, so the reply's ack count is the truth.
    const localPending = quorumIds(this.configCurrent).includes(this.self) && !op.acked.has(this.self);
    if (!tally.possible && !localPending) {
      // The level cannot be met any more, but the write may still be accepted at its own lower level (a
      // client's w under wait=LEVEL): wait for that until it is met or impossible too (the deadline still holds).
      if (op.accepted !== undefined && !this.acceptedSettled(op)) return;
      this.ops.delete(opId);
      this.hintMissing(op, actions);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
    }
  }

  /** A finished write: replicas known unreachable get a hint now, silent ones at the deadline unless they ack. */
  private awaitRemainingAcks(opId: number, op: WriteOp, actions: Action[]): void {
    const pending = new Set<string>();
    for (const peer of op.sentTo) {
      if (peer === this.self || op.acked.has(peer)) continue;
      if (op.unreachable.has(peer) || this.awaitingAcks.size >= AWAITING_ACKS_MAX) actions.push({ type: 'hint', peer, key: op.key });
      else pending.add(peer);
    }
    if (pending.size > 0) this.awaitingAcks.set(opId, { key: op.key, pending, deadlineMs: op.deadlineMs });
  }

  /** A failed write may still have been stored somewhere: every replica that did not ack gets a hint. */
  private hintMissing(op: WriteOp, actions: Action[]): void {
    for (const peer of op.sentTo) if (peer !== this.self && !op.acked.has(peer)) actions.push({ type: 'hint', peer, key: op.key });
  }

  /** A replica that is catching up cannot answer: count it as unreachable for this read. */
  private onReadUnavailable(from: string, opId: number, local: LocalView): Action[] {
    const op = this.ops.get(opId);
    if (op?.kind === 'probe') return this.onProbeReply(opId, op, from, undefined, true);
    if (op === undefined || op.kind !== 'read' || op.replies.has(from)) return [];
    const actions: Action[] = [];
    op.unreachable.add(from);
    this.progressRead(opId, op, local, actions);
    if (op.replied && this.readSettled(op)) this.ops.delete(opId);
    return actions;
  }

  private onProbeReply(opId: number, op: ProbeOp, from: string, record: VersionedRecord | undefined, unavailable: boolean): Action[] {
    if (!op.replicas.includes(from) || op.replies.has(from) || op.unavailable.has(from)) return [];
    if (unavailable) op.unavailable.add(from);
    else op.replies.set(from, record);
    op.unreachable.delete(from);
    const actions: Action[] = [];
    this.progressProbe(opId, op, actions, false);
    return actions;
  }

  private onReadReply(from: string, opId: number, record: VersionedRecord | undefined, local: LocalView): Action[] {
    const op = this.ops.get(opId);
    if (op?.kind === 'probe') {
      if (record !== undefined) this.observe(record);
      return this.onProbeReply(opId, op, from, record, false);
    }
    if (op === undefined || op.kind !== 'read' || !quorumIds(this.configCurrent).includes(from)) return [];
    if (record !== undefined) this.observe(record);
    op.replies.set(from, record);
    const actions: Action[] = [];
    if (op.replied && op.merged !== undefined) {
      // A late reply: repair it if it is behind what the client was told, and learn from it.
      this.repairReplica(op.key, from, record, mergeRecords(op.merged, record ?? EMPTY_RECORD), local, actions);
    } else {
      this.progressRead(opId, op, local, actions);
    }
    if (this.readSettled(op)) this.ops.delete(opId);
    return actions;
  }

  private progressRead(opId: number, op: ReadOp, local: LocalView, actions: Action[]): void {
    if (op.replied) return;
    let need: Need;
    try {
      need = this.need(op.level, 'r');
    } catch (error) {
      if (!(error instanceof InvalidConsistencyError)) throw error;
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
      return;
    }
    op.required = need.voters;
    const tally = this.count((p) => op.replies.has(p), op.unreachable, need);
    if (tally.met) {
      let merged: VersionedRecord | undefined;
      for (const record of op.replies.values()) {
        if (record !== undefined) merged = merged === undefined ? record : mergeRecords(merged, record);
      }
      op.replied = true;
      op.merged = merged ?? EMPTY_RECORD;
      // Our own copy was read from the store, staged writes included (the others answered once durable): the
      // client sees the answer once everything staged here so far is durable.
      actions.push({
        type: 'reply',
        result: { type: 'read', opId, key: op.key, record: merged, replies: op.replies.size, required: need.voters },
        afterFlush: true,
      });
      if (merged !== undefined) {
        for (const [peer, record] of op.replies) this.repairReplica(op.key, peer, record, merged, local, actions);
      }
      if (this.readSettled(op)) this.ops.delete(opId);
      return;
    }
    if (!tally.possible) {
      this.ops.delete(opId);
      actions.push({ type: 'reply', result: this.failure(opId, op) });
    }
  }

  /** Every quorum member has answered or is known unreachable: nothing more to repair, forget the read. */
  private readSettled(op: ReadOp): boolean {
    return quorumIds(this.configCurrent).every((p) => op.replies.has(p) || op.unreachable.has(p));
  }

  /** Read repair: bring `peer` (or this replica) up to `merged` when its reply was missing something. */
  private repairReplica(
    key: string,
    peer: string,
    reply: VersionedRecord | undefined,
    merged: VersionedRecord,
    local: LocalView,
    actions: Action[],
  ): void {
    if (merged.siblings.length === 0 && Object.keys(merged.context).length === 0) return;
    if (peer === this.self) {
      const current = local.get(key) ?? EMPTY_RECORD;
      const next = mergeRecords(current, merged);
      if (!recordsEqual(next, current)) actions.push({ type: 'persist', key, record: next, then: undefined });
      return;
    }
    if (reply !== undefined && recordsEqual(mergeRecords(reply, merged), reply)) return;
    actions.push({ type: 'send', to: peer, msg: { type: 'repair', epoch: this.epoch, key, record: merged } });
  }

  /** `from` refused our request with its newer configuration: adopt it and ask `from` again. */
  private onStale(from: string, opId: number, config: MembershipConfig, chain: readonly MembershipConfig[], local: LocalView, nowMs: number): Action[] {
    const op = this.ops.get(opId);
    if (op?.kind === 'write') op.sentTo.delete(from);
    if (op?.kind === 'read') op.askedTo.delete(from);
    // maybeAdopt re-targets every operation (resending to `from` too); it fails config ops and syncs.
    const actions = this.maybeAdopt(config, local, nowMs, chain);
    if (actions.length === 0 && op !== undefined && this.ops.has(opId) && config.epoch <= this.epoch) {
      // We had already moved to that configuration: just ask again under it.
      if (op.kind === 'write') this.sendWrite(opId, op, actions);
      else if (op.kind === 'read' && !op.replied) this.sendRead(opId, op, actions);
    }
    return actions;
  }

  // ---------------------------------------------------------------- configuration adoption

  /**
   * Adopts `config` if it is newer than ours and proven: every epoch from ours to it (`chain` brings the ones in
   * between) was chosen by the previous epoch's voters (src/core/config-proof.ts). When only a prefix of the
   * chain is proven, the newest proven configuration is adopted. Before we are a member of anything there is
   * nothing to verify against: the callers admit only the join target's word for it (trust on first use).
   */
  private maybeAdopt(config: MembershipConfig, local: LocalView, nowMs: number, chain: readonly MembershipConfig[] = []): Action[] {
    if (config.epoch <= this.epoch) return [];
    if (this.epoch > 0 && config.clusterId !== this.configCurrent.clusterId) return [];
    const before = this.configCurrent;
    let target = config;
    if (this.epoch === 0) {
      this.history = [config];
    } else if (this.auth === undefined) {
      this.history = [...this.history, config].slice(-CONFIG_HISTORY_MAX);
    } else {
      const proven = provenChain(this.configCurrent, [...chain, config], this.auth);
      const last = proven[proven.length - 1];
      if (last === undefined) return [];
      target = last;
      this.history = [...this.history, ...proven].slice(-CONFIG_HISTORY_MAX);
    }
    this.configCurrent = target;
    this.acceptor = acceptorFor(this.acceptor, target.epoch);
    // Once durable, we hear about it ourselves (onConfigDurable).
    const durable: Envelope = { to: this.self, msg: { type: 'config', epoch: target.epoch, config: target } };
    const actions: Action[] = [{ type: 'persistConfig', config: target, then: durable, history: this.history }];
    this.retargetAll(target, before, local, nowMs, actions);
    return actions;
  }

  /** The kept configurations a peer at `peerEpoch` needs before ours, oldest first (at most CHAIN_SENT_MAX). */
  private chainFor(peerEpoch: number): MembershipConfig[] | undefined {
    if (this.auth === undefined || peerEpoch <= 0 || peerEpoch >= this.epoch - 1) return undefined;
    const chain = this.history.filter((c) => c.epoch > peerEpoch && c.epoch < this.epoch).slice(0, CHAIN_SENT_MAX);
    return chain.length === 0 ? undefined : chain;
  }

  /** Our configuration for a peer at `peerEpoch`: the current one, or as far as one message may take it. */
  private configFor(peerEpoch: number): { config: MembershipConfig; chain: MembershipConfig[] | undefined } {
    const chain = this.chainFor(peerEpoch);
    if (chain === undefined || chain.length < CHAIN_SENT_MAX) return { config: this.configCurrent, chain };
    // Too far behind for one message: the chain's last step is the configuration told; the rest follows at
    // the next tell (RETELL_STALE_MS).
    return { config: chain[chain.length - 1] as MembershipConfig, chain: chain.slice(0, -1) };
  }

  /** A peer spoke from an older epoch: tell it our configuration (again if it still does RETELL_STALE_MS later). */
  private tellIfStale(from: string, epoch: number, nowMs: number, actions: Action[]): void {
    if (epoch === 0 || this.epoch === 0 || epoch >= this.epoch) return;
    const told = this.toldEpoch.get(from);
    // An epoch below the one it spoke from when told is another store under that peer ID: tell it at once.
    if (told !== undefined && told.epoch >= this.epoch && epoch >= told.heard && nowMs - told.atMs < RETELL_STALE_MS) return;
    if (this.toldEpoch.size >= TOLD_PEERS_MAX) this.toldEpoch.clear();
    this.toldEpoch.set(from, { epoch: this.epoch, atMs: nowMs, heard: epoch });
    const sending = actions.some((a) => a.type === 'send' && a.to === from && 'config' in a.msg && a.msg.config?.epoch === this.epoch);
    if (sending) return;
    const { config, chain } = this.configFor(epoch);
    actions.push({ type: 'send', to: from, msg: { type: 'config', epoch: this.epoch, config, ...(chain === undefined ? {} : { chain }) } });
  }

  /** Our configuration moved on: re-count operations under the new one and reach its new members. */
  private retargetAll(config: MembershipConfig, before: MembershipConfig, local: LocalView, nowMs: number, actions: Action[]): void {
    // Seats given to another store since `before`: what their old store acknowledged is gone with it.
    const reseated = replicaIds(config).filter((p) => p !== this.self && storeChanged(before, config, p));
    for (const [opId, op] of [...this.ops]) {
      if (!this.ops.has(opId)) continue;
      switch (op.kind) {
        case 'write':
          if (!this.seated(config) && !config.previousVoters.includes(this.self)) {
            this.ops.delete(opId);
            actions.push({ type: 'reply', result: this.failure(opId, op) });
            break;
          }
          // An ack says "this seat's store holds it": one from a store the seat no longer names counts for
          // nothing (it would count a lost store as the new one). The new store gets the write instead.
          for (const p of reseated) {
            op.acked.delete(p);
            op.sentTo.delete(p);
            op.unreachable.delete(p);
            op.reseatedAt.set(p, config.epoch);
          }
          this.sendWrite(opId, op, actions);
          this.progressWrite(opId, op, actions);
          break;
        case 'read':
          if (op.replied) break;
          // Replies are snapshots: one taken before the new configuration's sync says nothing about what the
          // sync brought. Start the collection over under the new configuration.
          op.replies.clear();
          op.unreachable.clear();
          op.askedTo.clear();
          op.askedTo.add(this.self);
          if (quorumIds(config).includes(this.self) && this.seated(config)) op.replies.set(this.self, local.get(op.key));
          this.sendRead(opId, op, actions);
          this.progressRead(opId, op, local, actions);
          break;
        case 'config':
          if (config.epoch > op.base.epoch) {
            this.ops.delete(opId);
            const won = op.value !== undefined && configsEqual(config, op.proposed);
            if (won && config.epoch === op.base.epoch + 1) {
              actions.push({ type: 'reply', result: { type: 'configCommitted', opId, config } });
            } else {
              actions.push({ type: 'reply', result: this.failure(opId, op, 'membership_conflict') });
            }
          }
          break;
        case 'sync':
          if (config.epoch > op.epoch) {
            this.ops.delete(opId);
            for (const peer of op.pushing) this.outStreams.delete(streamKey(peer, opId));
            actions.push({ type: 'reply', result: this.failure(opId, op, 'membership_conflict') });
          }
          break;
        case 'probe':
          break; // it reports on the replicas it asked; a new device shows up in the next probe
      }
    }
    // Streams serving an older epoch's gather are moot: the requester moved on too.
    for (const stream of [...this.outStreams.values()]) {
      if (stream.syncOpId === undefined && !isMember(config, stream.peer)) this.dropStream(stream, local, nowMs, actions);
    }
  }

  // ---------------------------------------------------------------- helpers

  /** Sends `msg` to `to`, or hands it straight to our own acceptor/proposer when `to` is this replica. */
  private deliverTo(to: string, msg: Message, actions: Action[], local: LocalView, nowMs: number): void {
    if (to === this.self) actions.push(...this.step(this.self, msg, local, nowMs));
    else actions.push({ type: 'send', to, msg });
  }

  private failure(opId: number, op: Exclude<Op, ProbeOp>, code?: FailureCode): ClientResult {
    const voters = this.configCurrent.voters.length;
    if (op.kind === 'config') {
      const conflict = code === 'membership_conflict';
      return {
        type: 'failed',
        opId,
        code: conflict ? 'membership_conflict' : 'membership_change_failed',
        message: conflict
          ? `another membership change won epoch ${op.base.epoch + 1}; retry from epoch ${this.epoch}`
          : `membership change to epoch ${op.proposed.epoch} was not accepted by a majority of the ${op.base.voters.length} voters in time`,
        acks: op.phase === 'prepare' ? op.promises.size : op.accepted.size,
        required: majority(op.base.voters.length),
        voters: op.base.voters.length,
      };
    }
    if (op.kind === 'sync') {
      return {
        type: 'failed',
        opId,
        code: code ?? 'sync_failed',
        message: code === 'membership_conflict' ? `the configuration moved past epoch ${op.epoch} during its sync` : `data sync for epoch ${op.epoch} made no progress in time`,
        acks: op.gathered.size + op.pushed.size,
        required: op.gatherNeeded + op.pushNeeded,
        voters,
      };
    }
    const acks = op.kind === 'write' ? op.acked.size : op.replies.size;
    const what = op.kind === 'write' ? 'acknowledged the write' : 'answered the read';
    let required = 0;
    try {
      const need = this.need(op.level);
      required = need.voters;
    } catch (error) {
      if (!(error instanceof InvalidConsistencyError)) throw error;
    }
    const joint = isJoint(this.configCurrent) ? ` and a majority of the ${this.configCurrent.previousVoters.length} previous voters` : '';
    return {
      type: 'failed',
      opId,
      code: 'quorum_unavailable',
      message: `only ${acks} of the ${required} required replicas${joint} ${what} (${voters} voters)`,
      acks,
      required,
      voters,
      ...(op.kind === 'write' ? this.acceptedAt(op) : {}),
    };
  }

  /** Whether a write's `accepted` level is met or can no longer be (no need to wait for it). */
  private acceptedSettled(op: WriteOp): boolean {
    if (op.accepted === undefined) return true;
    let need: Need;
    try {
      need = this.need(op.accepted);
    } catch (error) {
      if (!(error instanceof InvalidConsistencyError)) throw error;
      return true;
    }
    const tally = this.count((p) => op.acked.has(p), op.unreachable, need);
    return tally.met || !tally.possible;
  }

  /**
   * Whether a write that missed its level met its `accepted` level, counted like any write at that level: acks
   * of voters (and the previous voters' majority while joint). A learner's ack is not one: a quorum read never
   * asks a learner, so a write held by one voter and a learner is not on a read quorum.
   */
  private acceptedAt(op: WriteOp): { accepted?: { acks: number; required: number } } {
    if (op.accepted === undefined) return {};
    let need: Need;
    try {
      need = this.need(op.accepted);
    } catch (error) {
      if (!(error instanceof InvalidConsistencyError)) throw error;
      return {};
    }
    const tally = this.count((p) => op.acked.has(p), op.unreachable, need);
    return tally.met ? { accepted: { acks: tally.voters, required: need.voters } } : {};
  }

  /** Moves our clock up to a remote record's timestamps, except those too far ahead (see hlcAdopt). */
  private observe(record: VersionedRecord): void {
    for (const s of record.siblings) this.hlcLast = hlcAdopt(this.hlcLast, s.hlc, this.physicalMs, this.hlcDriftMaxMs);
  }

  private allocateOpId(): number {
    assert(this.ops.size < OPS_IN_FLIGHT_MAX, 'the runtime bounds operations in flight');
    const opId = this.opIdNext;
    this.opIdNext += 1;
    return opId;
  }

  private assertMember(): void {
    if (this.epoch === 0 || !isMember(this.configCurrent, this.self)) throw new NotMemberError();
    if (!this.seated()) {
      throw new NotMemberError('this device\'s storage is new (wiped or replaced): it serves nothing until the cluster gives its seat to the new store');
    }
  }
}

/**
 * Acks a quorum operation needs from the previous voters during a joint phase: a majority of them, counted
 * over all of them, but never more than are left (removing one of two voters): then every majority of the
 * previous voters includes all the ones left, so the stale readers that majority protects see the write.
 */
export function previousNeeded(config: MembershipConfig): number {
  if (!isJoint(config)) return 0;
  const left = livePreviousVoters(config).length;
  return Math.min(majority(config.previousVoters.length), left);
}

export { configQuorum } from './membership.js';

/** Whether `peer` holds a seat in both configurations, each named with another store. */
function storeChanged(before: MembershipConfig, after: MembershipConfig, peer: string): boolean {
  const a = seatOf(before, peer);
  const b = seatOf(after, peer);
  return a !== undefined && b !== undefined && a.store !== b.store;
}

function streamKey(peer: string, opId: number): string {
  return `${peer}\n${opId}`;
}

function recordSizeEstimate(entry: KeyedRecord): number {
  let bytes = entry.key.length + 16;
  for (const s of entry.record.siblings) bytes += (s.value?.length ?? 0) + SIBLING_OVERHEAD_BYTES;
  return bytes + Object.keys(entry.record.context).length * 32;
}

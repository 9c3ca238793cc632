// The runtime that drives one device: feeds client requests, peer messages and time into the pure replica
// core, and executes the actions it returns against storage (persist, then acknowledge) and the network.
import { DEFAULTS } from '../config/defaults.js';
import { QuorumUnavailableError, QuorumdError } from '../core/errors.js';
import type { Hlc } from '../core/hlc.js';
import type { MembershipConfig } from '../core/membership.js';
import { isMember, isVoter } from '../core/membership.js';
import { InboundStreamWatch, admissionTransferOver, admittedWithData, roundsDecision } from '../core/fill.js';
import type { Message } from '../core/messages.js';
import { type ConsistencyLevel, strongerLevel } from '../core/quorum.js';
import type { ClientContext, VersionedRecord } from '../core/record.js';
import { AntiEntropy, type SyncAction, type SyncLocal, type SyncMessage } from '../core/anti-entropy.js';
import { MerkleDigest } from '../core/digest.js';
import { EMPTY_RECORD, contextAfterWrite, recordsEqual } from '../core/record.js';
import type { AcceptorState } from '../core/paxos.js';
import type { ConfigAuth } from '../core/config-proof.js';
import { configProblem } from '../core/membership.js';
import { type Action, type ClientResult, type Envelope, type LocalView, OPS_IN_FLIGHT_MAX, type ProbeReply, ReplicaCore } from '../core/replica.js';
import type { StoragePort } from '../storage/port.js';
import type { DotAllocator } from './dots.js';
import { HintBook, type HintBookOptions } from './hints.js';
import { ChangeFeed } from './changes.js';
import { type MemoryPort, REAL_CLOCKS, REAL_RANDOM, REAL_TIMERS, type TimerHandle, type TimerPort, realMemory, sleepOn } from './driver-ports.js';
import { guardMessage, guardSyncMessage } from './record-guard.js';

export const META_MEMBERSHIP = 'membership';
/** The committed configurations kept with their proofs, oldest first, JSON (ReplicaCoreOptions.history). */
export const META_CONFIG_HISTORY = 'configHistory';
/** The Paxos acceptor state for the next epoch's decision (src/core/paxos.ts), JSON. */
export const META_ACCEPTOR = 'acceptor';
/** How far data-sync pushes of an epoch are durable here, JSON {epoch, after}: a later push resumes after it. */
export const META_TRANSFER_RESUME = 'transferResume';
/**
 * 'pending' from the moment a new device is admitted until a complete push of the cluster's data reached it;
 * 'done' after (or once catch-up rounds took over). Absent: not a joined device (founder, older store).
 */
export const META_JOIN_TRANSFER = 'joinTransfer';
/**
 * The hybrid logical clock, JSON {wallMs, logical}: staged before the record of every write coordinated here
 * (same commit or an earlier one), so a record durable here never carries a timestamp above the clock durable
 * here, and a restart continues from it whatever the wall clock says. Not a scan of the records for their
 * highest timestamp: stored records include remote ones this clock refused to follow (far ahead), and own
 * versions since superseded or purged. Left open: a write whose local commit a crash lost may already be on
 * peers with a later timestamp; only the last-writer-wins order among concurrent siblings could notice.
 */
export const META_HLC = 'hlc';

/** What the runtime needs from the network (ReplicaTransport in production, fakes in tests). */
export interface MessageTransport {
  /** Queues `msg` for `to`; false when there is no connection (nothing queued). */
  send(to: string, msg: Message): boolean;
  isConnected(peerId: string): boolean;
}

/** What the runtime needs to send anti-entropy messages (SyncTransport in production). */
export interface SyncSender {
  send(to: string, msg: SyncMessage): boolean;
}

/** Anti-entropy settings (src/config/defaults.ts documents each). */
export interface AntiEntropySettings {
  readonly intervalMs: number;
  readonly bytesPerSec: number;
  readonly requestTimeoutMs: number;
  readonly tombstoneGraceMs: number;
  /** Encoded size of a sync message (the wire codec's), for the byte budget. */
  readonly sizeOf?: (msg: SyncMessage) => number;
}

export interface RuntimeLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface RuntimeOptions {
  readonly self: string;
  readonly store: StoragePort;
  readonly dots: DotAllocator;
  readonly config: MembershipConfig;
  readonly acceptor: AcceptorState | undefined;
  readonly requestTimeoutMs: number;
  readonly transferIdleMs: number;
  readonly transferBatchRecords: number;
  readonly transferBatchBytes: number;
  readonly opsInFlightMax: number;
  readonly opIdBase: number;
  /** This store's id (see MemberInfo.store) and whether seats without one are this store's (legacy). */
  readonly storeId: string;
  readonly legacySeat: boolean;
  readonly antiEntropy: AntiEntropySettings;
  readonly hints: HintBookOptions;
  readonly log: RuntimeLogger;
  /** Uniform random numbers in [0, 1) for gossip jitter and peer choice (injectable for tests). */
  readonly random?: () => number;
  /** Wall clock (ms since the epoch) and monotonic clock, injectable for tests. */
  readonly wallClockMs?: () => number;
  readonly monotonicMs?: () => number;
  /** Timers of the tick, anti-entropy and drain waits (REAL_TIMERS by default; virtual time in the simulator). */
  readonly timers?: TimerPort;
  /** Anti-entropy's timers (default: `timers`); the simulator bounds them to each phase of its run. */
  readonly syncTimers?: TimerPort;
  /** While a data stream fills this device, catch-up rounds wait this long before looking again (default 250 ms). */
  readonly catchUpDeferMs?: number;
  /** A data stream without a new batch for this long no longer holds catch-up rounds back (default 1 s). */
  readonly inboundStreamQuietMs?: number;
  /** Deadline of a membership operation's round (ReplicaCoreOptions.membershipTimeoutMs; default requestTimeoutMs). */
  readonly membershipTimeoutMs?: number;
  /** Gives memory back after bulk work (the V8 collector by default). */
  readonly memory?: MemoryPort;
  /** See DEFAULTS.hlcDriftMaxMs (the default). */
  readonly hlcDriftMaxMs?: number;
  /** Signs this device's Paxos accepts and verifies configuration proofs (src/node/config-auth.ts). */
  readonly auth?: ConfigAuth | undefined;
}

export interface WriteOutcome {
  readonly record: VersionedRecord;
  /** What the client has now seen: what its write superseded plus its dot (the token to hand back). */
  readonly context: ClientContext;
  readonly acks: number;
  readonly required: number;
  /** True when the key had no live version here before this write. */
  readonly created: boolean;
  /** False when a write with `wait` was accepted at its level but the wait level was not reached in time. */
  readonly complete: boolean;
}

/** Wait for more acks than the write's level needs, up to a deadline (a durability receipt's first step). */
export interface WriteWait {
  readonly level: ConsistencyLevel;
  readonly timeoutMs?: number | undefined;
}

export interface ReadOutcome {
  readonly record: VersionedRecord | undefined;
  readonly replies: number;
  readonly required: number;
}

/** Too many operations in flight on this device; the client should back off and retry. */
export class OverloadedError extends QuorumdError {
  constructor(limit: number) {
    super('overloaded', `more than ${limit} operations in flight; retry later`);
  }
}

type Pending = (result: ClientResult) => void;

/** A full collection at most this often, and only once the heap in use grew by this much since the last. */
const GC_INTERVAL_MIN_MS = 10_000;
const GC_HEAP_GROWTH_BYTES = 32 * 1024 * 1024;

/** Keys handed over per push (hinted handoff); the push is also cut at 512 KiB of records. */
const HANDOVER_KEYS_PER_PUSH = 1_024;

/** While a membership sync streams data in, catch-up rounds wait this long before looking again. */
const CATCH_UP_DEFER_MS = 250;
/** A data stream without a new batch for this long no longer holds catch-up rounds back. */
const INBOUND_STREAM_QUIET_MS = 1_000;

/** Records read per scan step while building the digest at start-up. */
const DIGEST_SCAN_BATCH = 1024;

/** The digest of everything in `store` (one scan; at start-up, before any write); `each` sees every entry. */
export function buildDigest(store: StoragePort, each?: (key: string, record: VersionedRecord) => void): MerkleDigest {
  const digest = new MerkleDigest();
  let after: string | undefined;
  for (;;) {
    const entries = store.scan(after, DIGEST_SCAN_BATCH);
    for (const entry of entries) {
      digest.update(entry.key, undefined, entry.record);
      each?.(entry.key, entry.record);
    }
    if (entries.length < DIGEST_SCAN_BATCH) return digest;
    after = entries[entries.length - 1]?.key;
  }
}

/** Peer messages that can start or extend a data stream (and so add a deadline to the core). */
const STREAM_MESSAGES: ReadonlySet<Message['type']> = new Set(['transferRequest', 'transfer', 'transferAck', 'config', 'configPromise', 'configAccepted', 'stale']);

export class Runtime {
  readonly self: string;
  /** This device's store id (MemberInfo.store). */
  readonly storeId: string;
  readonly core: ReplicaCore;
  private readonly store: StoragePort;
  private readonly dots: DotAllocator;
  private readonly log: RuntimeLogger;
  private readonly opsInFlightMax: number;
  private readonly wallClockMs: () => number;
  private readonly monotonicMs: () => number;
  private transport: MessageTransport | undefined;
  private readonly pending = new Map<number, Pending>();
  private readonly timers: TimerPort;
  private tickTimer: TimerHandle | undefined;
  /** The core deadline (monotonic ms) `tickTimer` is set for. */
  private tickDueMs = Infinity;
  private readonly configListeners: Array<(config: MembershipConfig) => void> = [];
  /** The anti-entropy digest of this replica's records (src/core/digest.ts), updated on every persist. */
  readonly digest: MerkleDigest;
  /** Anti-entropy rounds and tombstone purging (src/core/anti-entropy.ts). */
  readonly ae: AntiEntropy;
  private readonly syncLocal: SyncLocal;
  /** What the replica core reads of the store. */
  private readonly local: LocalView;
  /** This device was admitted and has not received the cluster's data yet (META_JOIN_TRANSFER). */
  private joinPending: boolean;
  private joinPendingSinceMs: number;
  private readonly transferIdleMs: number;
  /** Whether the last configuration seen gave this device its seat (to notice an admission). */
  private wasSeated: boolean;
  /** Every record stored here, for /watch (src/node/changes.ts). */
  readonly changes = new ChangeFeed();
  /** Hinted handoff: keys each peer missed, handed over when it is back (src/node/hints.ts). */
  readonly hints: HintBook;
  private syncSender: SyncSender | undefined;
  private isAlive: (peer: string) => boolean = () => false;
  private readonly random: () => number;
  private aeTimer: TimerHandle | undefined;
  private aeDueMs = Infinity;
  /** The hint book's mark (HintBook.mark) when each peer's handover in flight read its records. */
  private readonly handoverMark = new Map<string, number>();
  /** Gives memory back after bulk work (src/node/memory.ts). */
  private readonly collector: MemoryPort;
  /** Records received by data streams so far, and when that last changed (see inboundStreamActive). */
  private readonly inbound: InboundStreamWatch;
  private readonly syncTimers: TimerPort;
  private readonly catchUpDeferMs: number;
  private fatalError: unknown;
  private stopped = false;

  constructor(options: RuntimeOptions) {
    this.self = options.self;
    this.storeId = options.storeId;
    this.store = options.store;
    this.dots = options.dots;
    this.log = options.log;
    this.opsInFlightMax = options.opsInFlightMax;
    this.wallClockMs = options.wallClockMs ?? REAL_CLOCKS.wallMs;
    this.monotonicMs = options.monotonicMs ?? REAL_CLOCKS.monotonicMs;
    this.random = options.random ?? REAL_RANDOM;
    this.timers = options.timers ?? REAL_TIMERS;
    this.syncTimers = options.syncTimers ?? this.timers;
    this.catchUpDeferMs = options.catchUpDeferMs ?? CATCH_UP_DEFER_MS;
    this.inbound = new InboundStreamWatch(options.inboundStreamQuietMs ?? INBOUND_STREAM_QUIET_MS);
    this.collector = options.memory ?? realMemory(GC_INTERVAL_MIN_MS, this.monotonicMs);
    this.ae = new AntiEntropy({ self: options.self, ...options.antiEntropy });
    const startMs = this.monotonicMs();
    this.digest = buildDigest(options.store, (key, record) => this.ae.noteStored(key, record, startMs));
    this.hints = new HintBook(options.store, options.hints, this.wallClockMs);
    const store = options.store;
    const digest = this.digest;
    this.syncLocal = { get: (key) => store.get(key), digest };
    this.local = { get: (key) => store.get(key), scan: (after, limit) => store.scan(after, limit), keyCount: () => store.stats().totalKeys };
    this.joinPending = store.getMeta(META_JOIN_TRANSFER) === 'pending';
    this.joinPendingSinceMs = this.monotonicMs();
    this.transferIdleMs = options.transferIdleMs;
    this.wasSeated = false;
    this.collector.request(); // the start-up scan decoded every record
    this.core = new ReplicaCore({
      self: options.self,
      config: options.config,
      acceptor: options.acceptor,
      requestTimeoutMs: options.requestTimeoutMs,
      ...(options.membershipTimeoutMs === undefined ? {} : { membershipTimeoutMs: options.membershipTimeoutMs }),
      transferIdleMs: options.transferIdleMs,
      transferBatchRecords: options.transferBatchRecords,
      transferBatchBytes: options.transferBatchBytes,
      opIdBase: options.opIdBase,
      store: options.storeId,
      legacySeat: options.legacySeat,
      hlc: parseHlc(store.getMeta(META_HLC)),
      hlcDriftMaxMs: options.hlcDriftMaxMs ?? DEFAULTS.hlcDriftMaxMs,
      auth: options.auth,
      history: parseConfigHistory(store.getMeta(META_CONFIG_HISTORY)),
    });
    this.wasSeated = this.core.seated();
    const resume = parseTransferResume(store.getMeta(META_TRANSFER_RESUME));
    if (resume !== undefined) this.core.setTransferResume(resume.epoch, resume.after);
  }

  /** Admitted and still waiting for (or receiving) the cluster's data: see checkJoinTransfer(). */
  get joinTransferPending(): boolean {
    return this.joinPending;
  }

  /**
   * A new device gets the cluster's data from the push of the data sync that admits it. If the change ended
   * without a complete push reaching it (it restarted or lost its link meanwhile and the sync went to
   * another voter), it fills up by anti-entropy rounds instead, which fetch only what it still lacks. That is
   * safe while it serves reads: the sync put every record on a majority of the new voters without it, so it is
   * only a replica that missed writes, which every quorum read tolerates.
   * Learners wait for their push (a restart ends it: they fill up by rounds from start-up; so does a push that
   * makes no progress for transferIdleMs: see holdRounds).
   */
  private checkJoinTransfer(config: MembershipConfig, startingUp: boolean): void {
    if (!this.joinPending || !admissionTransferOver(config, this.self, this.core.seated(config), startingUp)) return;
    this.log.warn({ epoch: config.epoch }, 'the data transfer of this device\'s admission did not complete: fetching the rest by anti-entropy rounds');
    this.setJoinPending(false);
  }

  private setJoinPending(pending: boolean): void {
    this.joinPending = pending;
    if (pending) this.joinPendingSinceMs = this.monotonicMs();
    this.store.setMeta(META_JOIN_TRANSFER, pending ? 'pending' : 'done').catch((error: unknown) => this.fail(error));
  }

  /** At start-up: an admission whose data transfer a restart interrupted. */
  resumeJoinTransfer(): void {
    this.checkJoinTransfer(this.core.config, true);
  }

  attachTransport(transport: MessageTransport): void {
    this.transport = transport;
  }

  /** Starts anti-entropy: rounds go through `sender` to members `isAlive` says are up. */
  attachSync(sender: SyncSender, isAlive: (peer: string) => boolean): void {
    this.syncSender = sender;
    this.isAlive = isAlive;
    this.scheduleAe();
  }

  /** An anti-entropy message from a connected peer. */
  receiveSync(from: string, msg: SyncMessage): void {
    if (this.stopped) return;
    if ((msg.type === 'digestReply' || msg.type === 'segmentsReply') && this.holdRounds()) {
      // A membership sync is streaming everything here: finish with a fresh round once it is done.
      this.ae.abortRound(this.monotonicMs());
      this.ae.wake(this.monotonicMs() + this.catchUpDeferMs);
      this.scheduleAe();
      return;
    }
    if ((msg.type === 'digest' || msg.type === 'segments') && this.filling()) {
      // A replica still catching up (or still receiving its admission's data) may lack acknowledged writes: a
      // round with it must not count as a full sync for anyone (another device catching up would take it as
      // proof it has everything), and peers would push it what its data stream is bringing anyway.
      this.sendSync(from, { type: 'refused', session: msg.session, reason: 'catching up' });
      return;
    }
    const guarded = guardSyncMessage(msg, this.dots.writer, this.dots.current);
    this.executeSync(this.ae.step(from, guarded, this.monotonicMs(), this.aeConfig(), this.syncLocal));
    this.scheduleAe();
  }

  /** Hands over the keys `peer` missed (hinted handoff), a batch at a time, if it is up. */
  handOver(peer: string): void {
    if (this.stopped || this.syncSender === undefined || !this.isAlive(peer)) return;
    const keys = this.hints.take(peer, HANDOVER_KEYS_PER_PUSH);
    if (keys.length === 0) return;
    const actions = this.ae.handOver(peer, keys, this.monotonicMs(), this.aeConfig(), this.syncLocal);
    // Records are read now: hints renewed after this moment (a new miss) must survive the confirmation.
    if (actions.length > 0) this.handoverMark.set(peer, this.hints.mark());
    this.executeSync(actions);
  }

  /** Hands over hints to every live peer that has some; drops the hints of peers no longer members. */
  private handOverAll(): void {
    this.hints.expire();
    const config = this.core.config;
    for (const peer of this.hints.peers()) {
      if (config.epoch > 0 && !isMember(config, peer)) void this.hints.dropPeer(peer).catch((error: unknown) => this.fail(error));
      else this.handOver(peer);
    }
  }

  /** Starts an anti-entropy round with `peer` now if none is running (e.g. it just came back). */
  syncWith(peer: string): void {
    if (this.stopped || this.syncSender === undefined) return;
    this.executeSync(this.ae.startRound(peer, this.monotonicMs(), this.aeConfig(), this.syncLocal));
    this.scheduleAe();
  }

  get config(): MembershipConfig {
    return this.core.config;
  }

  /**
   * The configuration anti-entropy works with: none (no members) while this device holds no seat, so it neither
   * starts nor answers rounds, hands nothing over and merges nothing a peer pushes (see ReplicaCore.seated).
   */
  private aeConfig(): MembershipConfig {
    const config = this.core.config;
    return this.core.seated(config) ? config : { ...config, voters: [], learners: [], previousVoters: [], replaced: [] };
  }

  get opsInFlight(): number {
    return this.pending.size;
  }

  onConfigChange(listener: (config: MembershipConfig) => void): void {
    this.configListeners.push(listener);
  }

  /** Coordinates a client write (value) or delete (null). Rejects with typed errors. */
  async write(key: string, value: Uint8Array | null, context: ClientContext | undefined, level: ConsistencyLevel, wait?: WriteWait): Promise<WriteOutcome> {
    this.checkAccepting();
    const dot = await this.dots.next();
    this.checkAccepting();
    const before = this.store.get(key);
    const created = before === undefined || before.siblings.every((s) => s.value === null);
    const seen = contextAfterWrite(before ?? EMPTY_RECORD, context, dot);
    // `wait` only adds to `w`: the write is never answered before it is acknowledged at w (w=all&wait=one is w=all).
    const waitLevel = wait === undefined ? level : strongerLevel(level, wait.level, this.core.config.voters.length);
    const { opId, actions } = this.core.write(
      { key, value, context: context?.vv, unseen: context?.unseen, level: waitLevel, accepted: wait === undefined ? undefined : level, dot, nowMs: this.monotonicMs(), physicalMs: this.wallClockMs(), timeoutMs: wait?.timeoutMs },
      this.local,
    );
    // Staged before the record (same commit or an earlier one): whenever a timestamp issued here is durable
    // in a record, a clock at least as late is durable too. Coalesced per commit, so it costs no extra fsync.
    this.store.setMeta(META_HLC, JSON.stringify(this.core.hlc)).catch((error: unknown) => this.fail(error));
    const result = await this.await(opId, actions);
    if (result.type === 'written') return { record: result.record, context: seen, acks: result.acks, required: result.required, created, complete: true };
    const local = this.store.get(key);
    if (wait !== undefined && result.type === 'failed' && result.code === 'quorum_unavailable' && local !== undefined) {
      // Not at the wait level in time, but at the write's own (counted by the core's quorum rules: voters only,
      // and the previous voters' majority while joint): accepted (the rest arrives by hints and gossip).
      if (result.accepted !== undefined) {
        return { record: local, context: seen, acks: result.accepted.acks, required: result.required, created, complete: false };
      }
    }
    throw this.toError(result);
  }

  /** Asks every replica what it holds for `key` (see ReplicaCore.probe): the durability receipt. */
  async probe(key: string, timeoutMs?: number): Promise<readonly ProbeReply[]> {
    this.checkAccepting();
    const { opId, actions } = this.core.probe(key, this.monotonicMs(), this.local, timeoutMs);
    const result = await this.await(opId, actions);
    if (result.type === 'probed') return result.replicas;
    throw this.toError(result);
  }

  /** Coordinates a client read at level `level`, with read repair. */
  async read(key: string, level: ConsistencyLevel): Promise<ReadOutcome> {
    this.checkAccepting();
    const { opId, actions } = this.core.read({ key, level, nowMs: this.monotonicMs() }, this.local);
    const result = await this.await(opId, actions);
    if (result.type === 'read') return { record: result.record, replies: result.replies, required: result.required };
    throw this.toError(result);
  }

  /**
   * Proposes `next` as the next epoch's configuration and resolves once committed. Rejects with a
   * QuorumdError; code `membership_conflict` means another change won that epoch (re-derive and retry).
   */
  async changeConfig(next: MembershipConfig): Promise<MembershipConfig> {
    this.checkAccepting();
    const { opId, actions } = this.core.proposeConfig(next, this.monotonicMs(), this.local);
    const result = await this.await(opId, actions);
    if (result.type === 'configCommitted') return result.config;
    throw this.toError(result);
  }

  /** Runs a data sync (see ReplicaCore.sync); resolves with the number of records gathered. */
  async sync(targets?: readonly string[]): Promise<number> {
    this.checkAccepting();
    const { opId, actions } = this.core.sync(this.monotonicMs(), this.local, targets);
    const result = await this.await(opId, actions);
    if (result.type === 'synced') return result.keys;
    throw this.toError(result);
  }

  /** Adopts a configuration learned outside the core's own messages (a join reply). */
  /** Adopts the configuration of a join reply from `from` (the member we asked; see ReplicaCore.adoptConfig). */
  adoptConfig(config: MembershipConfig, from?: string): void {
    this.execute(this.core.adoptConfig(config, this.local, this.monotonicMs(), from));
  }

  /** We ask `peer` to join: its announcement of our admission is adopted (ReplicaCore.admissionFrom). */
  askingToJoin(peer: string): void {
    this.core.admissionFrom(peer);
  }

  /** A replication message from a connected peer (`from` is the authenticated peer ID). */
  receive(from: string, msg: Message): void {
    if (this.stopped) return;
    this.core.setPhysicalMs(this.wallClockMs()); // bounds how far the records it carries may move our clock
    this.execute(this.core.step(from, guardMessage(msg, this.dots.writer, this.dots.current), this.local, this.monotonicMs()));
    // Only data streams and syncs get new deadlines from peer messages; client operations arm their own.
    if (this.tickTimer === undefined || STREAM_MESSAGES.has(msg.type)) this.scheduleTick();
  }

  /** A connected peer's epoch from its heartbeat: tells it our configuration if it is behind. */
  notePeerEpoch(from: string, epoch: number): void {
    if (this.stopped) return;
    this.execute(this.core.peerEpoch(from, epoch, this.monotonicMs()));
  }

  /** Stops driving the core; client operations still pending fail with `shutting_down` (indeterminate). */
  stop(): void {
    this.stopped = true;
    if (this.tickTimer !== undefined) this.timers.clear(this.tickTimer);
    this.tickTimer = undefined;
    if (this.aeTimer !== undefined) this.syncTimers.clear(this.aeTimer);
    this.aeTimer = undefined;
    this.collector.stop();
    for (const [opId, resolve] of this.pending) {
      resolve({ type: 'failed', opId, code: 'shutting_down', message: 'the daemon is shutting down', acks: 0, required: 0, voters: 0 });
    }
    this.pending.clear();
  }

  /** Waits until every client operation has completed (or the timeout passed). */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = this.monotonicMs() + timeoutMs;
    while (this.pending.size > 0 && this.monotonicMs() < deadline) {
      await sleepOn(this.timers, 10, true);
    }
  }

  // ---------------------------------------------------------------- action execution

  private await(opId: number, actions: Action[]): Promise<ClientResult> {
    const promise = new Promise<ClientResult>((resolve) => this.pending.set(opId, resolve));
    try {
      this.execute(actions);
    } catch (error) {
      this.pending.delete(opId); // or it counts as in flight for ever (503 overloaded once opsInFlightMax leaked)
      throw error;
    } finally {
      this.scheduleTick(this.core.deadlineOf(opId)); // the core ends its side of the operation by the deadline
    }
    return promise;
  }

  private execute(actions: readonly Action[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'persist': {
          const then = action.then;
          // Every record write passes here: keep the anti-entropy digest in step (before = the staged state).
          this.digest.update(action.key, this.store.get(action.key), action.record);
          this.ae.noteStored(action.key, action.record, this.monotonicMs());
          this.changes.record(action.key, action.record, this.wallClockMs());
          this.store.put(action.key, action.record).then(
            () => {
              if (then !== undefined) this.deliver(then);
            },
            (error: unknown) => this.fail(error),
          );
          break;
        }
        case 'persistAcceptor': {
          const then = action.then;
          this.store.setMeta(META_ACCEPTOR, JSON.stringify(action.state)).then(
            () => this.deliver(then),
            (error: unknown) => this.fail(error),
          );
          break;
        }
        case 'flush': {
          const then = action.then;
          this.store.flush().then(
            () => this.deliver(then),
            (error: unknown) => this.fail(error),
          );
          break;
        }
        case 'persistConfig': {
          const then = action.then;
          // Staged before the configuration: durable with it or before it.
          if (action.history !== undefined) {
            this.store.setMeta(META_CONFIG_HISTORY, JSON.stringify(action.history)).catch((error: unknown) => this.fail(error));
          }
          this.store.setMeta(META_MEMBERSHIP, JSON.stringify(action.config)).then(
            () => {
              if (then !== undefined) this.deliver(then);
            },
            (error: unknown) => this.fail(error),
          );
          this.log.info(
            {
              epoch: action.config.epoch,
              voters: action.config.voters.length,
              voterIds: action.config.voters.map((m) => m.peerId),
              learnerIds: action.config.learners.map((m) => m.peerId),
              previousVoters: action.config.previousVoters,
              removed: action.config.removed,
            },
            'membership configuration adopted',
          );
          const seated = this.core.seated(action.config);
          if (admittedWithData(action.config, this.self, seated, this.wasSeated)) {
            // Admitted (or its seat given to this new store) in a cluster that has data: it arrives by the
            // admitting change's data sync.
            this.setJoinPending(true);
          }
          this.wasSeated = seated;
          this.checkJoinTransfer(action.config, false);
          for (const listener of this.configListeners) listener(action.config);
          break;
        }
        case 'send':
          this.deliver(action);
          break;
        case 'hint':
          this.hints.add(action.peer, action.key)?.catch((error: unknown) => this.fail(error));
          break;
        case 'transferProgress':
          // Staged after the records it covers: durable with them, never before.
          this.store.setMeta(META_TRANSFER_RESUME, JSON.stringify({ epoch: action.epoch, after: action.after })).catch((error: unknown) => this.fail(error));
          break;
        case 'transferComplete':
          if (this.joinPending) {
            this.log.info({ from: action.peer, epoch: action.epoch, keys: this.digest.size }, 'received the cluster\'s data');
            this.setJoinPending(false);
          }
          break;
        case 'reply': {
          const { result } = action;
          const resolve = this.pending.get(result.opId);
          this.pending.delete(result.opId);
          if (resolve === undefined) break;
          if (action.afterFlush !== true) {
            resolve(result);
            break;
          }
          // It shows what this store holds: answered once everything staged before it is durable.
          this.store.flush().then(
            () => resolve(result),
            (error: unknown) => {
              if (!this.stopped) this.fail(error);
              resolve({ type: 'failed', opId: result.opId, code: 'storage_failed', message: `local storage failed: ${String(error)}`, acks: 0, required: 0, voters: 0 });
            },
          );
          break;
        }
      }
    }
  }

  private executeSync(actions: readonly SyncAction[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'persist':
          // Anti-entropy already counted this write in its own state (noteStored).
          this.digest.update(action.key, this.store.get(action.key), action.record);
          this.changes.record(action.key, action.record, this.wallClockMs());
          this.store.put(action.key, action.record).catch((error: unknown) => this.fail(error));
          break;
        case 'purge': {
          const current = this.store.get(action.key);
          if (current === undefined || !recordsEqual(current, action.record)) {
            // The core decides purges on the store it reads: this would be a bug, not a peer's doing. Keep the data.
            this.log.error({ key: action.key }, 'purge skipped: the stored version is not the one decided on');
            break;
          }
          this.digest.update(action.key, current, undefined);
          this.store.remove(action.key).catch((error: unknown) => this.fail(error));
          break;
        }
        case 'send':
          this.sendSync(action.to, action.msg);
          break;
        case 'sendDurable': {
          const { to, msg } = action;
          this.store.flush().then(
            () => this.sendSync(to, msg),
            (error: unknown) => this.fail(error),
          );
          break;
        }
        case 'hintsDelivered': {
          const peer = action.peer;
          const mark = this.handoverMark.get(peer) ?? -1;
          this.handoverMark.delete(peer);
          this.hints.delivered(peer, action.keys, mark).then(
            () => this.handOver(peer), // the next batch, if any
            (error: unknown) => this.fail(error),
          );
          break;
        }
      }
    }
  }

  /** Catching up, or a new device waiting for its admission's data: its replica is known incomplete. */
  private filling(): boolean {
    return this.joinPending;
  }

  /**
   * Whether this device's own anti-entropy rounds wait: a data stream is bringing everything here already, or
   * will (a new voter's admission pushes the data after gathering it), and rounds would fetch it twice. A new
   * device whose transfer stalls (a learner's push that failed) leaves the receiving state after
   * transferIdleMs without data: it then answers rounds and fetches by rounds.
   */
  private holdRounds(): boolean {
    const config = this.core.config;
    const decision = roundsDecision({
      joinPending: this.joinPending,
      inboundActive: this.inboundStreamActive(),
      config,
      self: this.self,
      nowMs: this.monotonicMs(),
      joinPendingSinceMs: this.joinPendingSinceMs,
      inboundChangedAtMs: this.inbound.changedAt,
      transferIdleMs: this.transferIdleMs,
    });
    if (decision !== 'stalled') return decision === 'hold';
    // The admission's transfer stalled: no longer "receiving" (which refuses every round, for good otherwise);
    // ordinary rounds fill this device from here.
    this.log.warn({ epoch: config.epoch }, 'the data transfer of this device\'s admission stalled: filling it by anti-entropy rounds');
    this.setJoinPending(false);
    return false;
  }

  /** Whether a data stream (a membership sync) delivered records here within the last second. */
  private inboundStreamActive(): boolean {
    let keys = 0;
    for (const s of this.core.streams()) if (s.role === 'receiving') keys += s.keys;
    return this.inbound.observe(keys, this.monotonicMs());
  }

  private sendSync(to: string, msg: SyncMessage): void {
    if (this.stopped) return;
    const sent = this.syncSender?.send(to, msg) ?? false;
    if (!sent) this.ae.sendFailed(to, msg, this.monotonicMs());
  }

  /** Arms the anti-entropy timer for its next deadline (rounds, paced requests, timeouts, purges). */
  private scheduleAe(): void {
    if (this.stopped || this.syncSender === undefined) return;
    const next = this.ae.nextDeadlineMs() ?? this.monotonicMs() + 1_000;
    if (this.aeTimer !== undefined) {
      if (next >= this.aeDueMs) return;
      this.syncTimers.clear(this.aeTimer);
    }
    this.aeDueMs = next;
    this.aeTimer = this.syncTimers.set(() => {
      this.aeTimer = undefined;
      this.aeDueMs = Infinity;
      if (this.stopped) return;
      if (!this.ae.stats.running && this.holdRounds()) {
        this.ae.wake(this.monotonicMs() + this.catchUpDeferMs); // and fetch the rest as soon as the stream ends
        // A membership sync is streaming everything here already: catch-up rounds would fetch it twice.
        this.aeDueMs = this.monotonicMs() + this.catchUpDeferMs;
        this.aeTimer = this.syncTimers.set(() => {
          this.aeTimer = undefined;
          this.aeDueMs = Infinity;
          this.scheduleAe();
        }, this.catchUpDeferMs);
        return;
      }
      this.executeSync(this.ae.tick(this.monotonicMs(), this.random(), this.aeConfig(), this.isAlive, this.syncLocal));
      this.handOverAll();
      this.collector.check(GC_HEAP_GROWTH_BYTES);
      this.scheduleAe();
    }, Math.max(0, Math.ceil(next - this.monotonicMs())));
  }

  private deliver(envelope: Envelope): void {
    if (this.stopped) return;
    if (envelope.to === this.self) {
      this.execute(this.core.step(this.self, envelope.msg, this.local, this.monotonicMs()));
      return;
    }
    const sent = this.transport?.send(envelope.to, envelope.msg) ?? false;
    if (!sent) this.execute(this.core.sendFailed(envelope.to, envelope.msg, this.local, this.monotonicMs()));
  }

  /**
   * Arms the tick timer for the core's earliest deadline. `hintMs`, when given, is the only deadline that can
   * have appeared since the timer was armed (a new operation's): a cheap check instead of scanning every
   * operation, which matters with thousands in flight.
   */
  private scheduleTick(hintMs?: number): void {
    if (this.stopped) return;
    if (this.tickTimer !== undefined && hintMs !== undefined && hintMs >= this.tickDueMs) return;
    const next = this.core.nextDeadlineMs();
    if (next === undefined) return;
    // A timer already set for a later deadline (e.g. a data stream's 10 s idle limit) must not delay an
    // operation's earlier one (a 3 s request timeout): re-arm for the earlier.
    if (this.tickTimer !== undefined) {
      if (next >= this.tickDueMs) return;
      this.timers.clear(this.tickTimer);
    }
    const delayMs = Math.max(0, Math.ceil(next - this.monotonicMs()));
    this.tickDueMs = next;
    this.tickTimer = this.timers.set(() => {
      this.tickTimer = undefined;
      this.tickDueMs = Infinity;
      this.execute(this.core.tick(this.monotonicMs(), this.local));
      this.scheduleTick();
    }, delayMs);
  }

  private checkAccepting(): void {
    if (this.fatalError !== undefined) {
      throw new QuorumdError('storage_failed', `local storage failed: ${String(this.fatalError)}`);
    }
    if (this.stopped) throw new QuorumdError('shutting_down', 'the daemon is shutting down');
    if (this.pending.size >= this.opsInFlightMax || this.core.opsInFlight >= OPS_IN_FLIGHT_MAX) {
      throw new OverloadedError(this.opsInFlightMax);
    }
  }

  private toError(result: ClientResult): Error {
    if (result.type !== 'failed') return new Error(`unexpected result ${result.type}`);
    if (result.code === 'quorum_unavailable') return new QuorumUnavailableError(result.acks, result.required, result.voters);
    return new QuorumdError(result.code, result.message);
  }

  /** A durable write failed: nothing more can be acknowledged safely. Fail loudly, refuse new work. */
  private fail(error: unknown): void {
    if (this.fatalError !== undefined) return;
    this.fatalError = error;
    this.log.error({ err: error }, 'storage write failed; refusing further requests');
  }

  /** The storage failure that made this runtime refuse requests, if any. */
  get storageFailure(): unknown {
    return this.fatalError;
  }

  /** Whether this device counts in quorums right now. */
  isVoter(): boolean {
    return isVoter(this.core.config, this.self);
  }
}

/** The stored clock (META_HLC); undefined if absent or unreadable (the clock then starts from the wall clock). */
function parseHlc(text: string | undefined): Hlc | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { wallMs, logical } = parsed as { wallMs?: unknown; logical?: unknown };
    const safe = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
    return safe(wallMs) && safe(logical) ? { wallMs, logical } : undefined;
  } catch {
    return undefined;
  }
}

function parseTransferResume(text: string | undefined): { epoch: number; after: string } | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { epoch, after } = parsed as { epoch?: unknown; after?: unknown };
    return typeof epoch === 'number' && Number.isSafeInteger(epoch) && typeof after === 'string' ? { epoch, after } : undefined;
  } catch {
    return undefined; // an unreadable resume point only costs a full transfer
  }
}

/**
 * The kept configurations (META_CONFIG_HISTORY); anything unreadable is dropped, not fatal: the history only
 * helps peers that are behind, and the current configuration is stored on its own.
 */
function parseConfigHistory(text: string | undefined): MembershipConfig[] {
  if (text === undefined) return [];
  try {
    const parsed = JSON.parse(text) as unknown;
    if (!Array.isArray(parsed)) return [];
    return (parsed as MembershipConfig[]).filter((c) => typeof c === 'object' && c !== null && Array.isArray(c.previousVoters) && configProblem(c) === undefined);
  } catch {
    return [];
  }
}

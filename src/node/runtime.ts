// The runtime that drives one device: feeds client requests, peer messages and time into the pure replica
// core, and executes the actions it returns against storage (persist, then acknowledge) and the network.
import { DEFAULTS } from '../config/defaults.js';
import { QuorumUnavailableError, QuorumdError } from '../core/errors.js';
import { unreachable } from '../core/assert.js';
import { type MembershipConfig, isVoter } from '../core/membership.js';
import type { Message } from '../core/messages.js';
import { type ConsistencyLevel, strongerLevel } from '../core/quorum.js';
import type { ClientContext, VersionedRecord } from '../core/record.js';
import { AntiEntropy, type SyncMessage } from '../core/anti-entropy.js';
import type { MerkleDigest } from '../core/digest.js';
import { EMPTY_RECORD, contextAfterWrite } from '../core/record.js';
import type { AcceptorState } from '../core/paxos.js';
import type { ConfigAuth } from '../core/config-proof.js';
import { type Action, type ClientResult, type Envelope, type LocalView, OPS_IN_FLIGHT_MAX, type ProbeReply, ReplicaCore } from '../core/replica.js';
import type { StoragePort } from '../storage/port.js';
import type { DotAllocator } from './dots.js';
import { HintBook, type HintBookOptions } from './hints.js';
import { ChangeFeed } from './changes.js';
import { JoinTransfer } from './driver-fill.js';
import {
  META_ACCEPTOR,
  META_CONFIG_HISTORY,
  META_HLC,
  META_MEMBERSHIP,
  META_TRANSFER_RESUME,
  buildDigest,
  parseConfigHistory,
  parseHlc,
  parseTransferResume,
} from './driver-meta.js';
import { type MemoryPort, REAL_CLOCKS, REAL_RANDOM, REAL_TIMERS, type TimerHandle, type TimerPort, realMemory, sleepOn } from './driver-ports.js';
import { SyncDriver } from './driver-sync.js';
import { guardMessage } from './record-guard.js';

// The meta values and the start-up scan moved to driver-meta.ts; importable from here as before.
export { META_ACCEPTOR, META_CONFIG_HISTORY, META_HLC, META_JOIN_TRANSFER, META_MEMBERSHIP, META_TRANSFER_RESUME, buildDigest } from './driver-meta.js';

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

/** A full collection at most this often (see driver-sync.ts for the heap growth that asks for one). */
const GC_INTERVAL_MIN_MS = 10_000;

/** While a membership sync streams data in, catch-up rounds wait this long before looking again. */
const CATCH_UP_DEFER_MS = 250;
/** A data stream without a new batch for this long no longer holds catch-up rounds back. */
const INBOUND_STREAM_QUIET_MS = 1_000;

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
  /** The anti-entropy side (driver-sync.ts) and the admission's data transfer (driver-fill.ts). */
  private readonly syncSide: SyncDriver;
  private readonly fill: JoinTransfer;
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
  /** What the replica core reads of the store. */
  private readonly local: LocalView;
  /** Every record stored here, for /watch (src/node/changes.ts). */
  readonly changes = new ChangeFeed();
  /** Hinted handoff: keys each peer missed, handed over when it is back (src/node/hints.ts). */
  readonly hints: HintBook;
  private readonly random: () => number;
  /** Gives memory back after bulk work (src/node/memory.ts). */
  private readonly collector: MemoryPort;
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
    this.collector = options.memory ?? realMemory(GC_INTERVAL_MIN_MS, this.monotonicMs);
    this.ae = new AntiEntropy({ self: options.self, ...options.antiEntropy });
    const startMs = this.monotonicMs();
    this.digest = buildDigest(options.store, (key, record) => this.ae.noteStored(key, record, startMs));
    this.hints = new HintBook(options.store, options.hints, this.wallClockMs);
    const store = options.store;
    this.local = { get: (key) => store.get(key), scan: (after, limit) => store.scan(after, limit), keyCount: () => store.stats().totalKeys };
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
    const host = {
      self: this.self,
      core: this.core,
      store,
      dots: this.dots,
      digest: this.digest,
      ae: this.ae,
      hints: this.hints,
      changes: this.changes,
      collector: this.collector,
      log: this.log,
      wallClockMs: this.wallClockMs,
      monotonicMs: this.monotonicMs,
      random: this.random,
      fail: (error: unknown) => this.fail(error),
      stopped: () => this.stopped,
    };
    this.fill = new JoinTransfer(host, options.transferIdleMs, options.inboundStreamQuietMs ?? INBOUND_STREAM_QUIET_MS);
    this.syncSide = new SyncDriver({ ...host, fill: this.fill }, options.syncTimers ?? this.timers, options.catchUpDeferMs ?? CATCH_UP_DEFER_MS);
    const resume = parseTransferResume(store.getMeta(META_TRANSFER_RESUME));
    if (resume !== undefined) this.core.setTransferResume(resume.epoch, resume.after);
  }

  /** Admitted and still waiting for (or receiving) the cluster's data: see JoinTransfer.check(). */
  get joinTransferPending(): boolean {
    return this.fill.isPending;
  }

  /** At start-up: an admission whose data transfer a restart interrupted. */
  resumeJoinTransfer(): void {
    this.fill.check(this.core.config, true);
  }

  attachTransport(transport: MessageTransport): void {
    this.transport = transport;
  }

  /** Starts anti-entropy: rounds go through `sender` to members `isAlive` says are up. */
  attachSync(sender: SyncSender, isAlive: (peer: string) => boolean): void {
    this.syncSide.attach(sender, isAlive);
  }

  /** An anti-entropy message from a connected peer. */
  receiveSync(from: string, msg: SyncMessage): void {
    this.syncSide.receive(from, msg);
  }

  /** Hands over the keys `peer` missed (hinted handoff), a batch at a time, if it is up. */
  handOver(peer: string): void {
    this.syncSide.handOver(peer);
  }

  /** Starts an anti-entropy round with `peer` now if none is running (e.g. it just came back). */
  syncWith(peer: string): void {
    this.syncSide.syncWith(peer);
  }

  get config(): MembershipConfig {
    return this.core.config;
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
    this.syncSide.stop();
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
          this.fill.configAdopted(action.config);
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
          this.fill.completed(action.peer, action.epoch, this.digest.size);
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
        default:
          unreachable(action);
      }
    }
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

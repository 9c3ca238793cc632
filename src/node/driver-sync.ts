// The device driver's anti-entropy side: runs the anti-entropy core (src/core/anti-entropy.ts) on its timer,
// answers peers' rounds, hands over hints (src/node/hints.ts), and executes the actions: persists and purges
// against the store, sends through the sync transport. Rounds wait while a data stream fills this device
// (src/node/driver-fill.ts).
import type { AntiEntropy, SyncAction, SyncLocal, SyncMessage } from '../core/anti-entropy.js';
import { unreachable } from '../core/assert.js';
import type { MerkleDigest } from '../core/digest.js';
import { type MembershipConfig, isMember } from '../core/membership.js';
import { recordsEqual } from '../core/record.js';
import type { ReplicaCore } from '../core/replica.js';
import type { StoragePort } from '../storage/port.js';
import type { ChangeFeed } from './changes.js';
import type { DotAllocator } from './dots.js';
import type { JoinTransfer } from './driver-fill.js';
import type { MemoryPort, TimerHandle, TimerPort } from './driver-ports.js';
import type { HintBook } from './hints.js';
import { guardSyncMessage } from './record-guard.js';
import type { RuntimeLogger, SyncSender } from './runtime.js';

/** Keys handed over per push (hinted handoff); the push is also cut at 512 KiB of records. */
const HANDOVER_KEYS_PER_PUSH = 1_024;
/** A full collection only once the heap in use grew by this much since the last (see MemoryPort.check). */
const GC_HEAP_GROWTH_BYTES = 32 * 1024 * 1024;

/** What the anti-entropy side shares with the rest of the driver (Runtime). */
export interface SyncHost {
  readonly self: string;
  readonly core: ReplicaCore;
  readonly store: StoragePort;
  readonly dots: DotAllocator;
  readonly digest: MerkleDigest;
  readonly ae: AntiEntropy;
  readonly hints: HintBook;
  readonly changes: ChangeFeed;
  readonly fill: JoinTransfer;
  readonly collector: MemoryPort;
  readonly log: RuntimeLogger;
  readonly wallClockMs: () => number;
  readonly monotonicMs: () => number;
  readonly random: () => number;
  readonly fail: (error: unknown) => void;
  readonly stopped: () => boolean;
}

export class SyncDriver {
  private syncSender: SyncSender | undefined;
  private isAlive: (peer: string) => boolean = () => false;
  private aeTimer: TimerHandle | undefined;
  private aeDueMs = Infinity;
  /** The hint book's mark (HintBook.mark) when each peer's handover in flight read its records. */
  private readonly handoverMark = new Map<string, number>();
  private readonly syncLocal: SyncLocal;

  constructor(
    private readonly host: SyncHost,
    private readonly syncTimers: TimerPort,
    /** While a data stream fills this device, rounds wait this long before looking again. */
    private readonly catchUpDeferMs: number,
  ) {
    this.syncLocal = { get: (key) => host.store.get(key), digest: host.digest };
  }

  /** Starts anti-entropy: rounds go through `sender` to members `isAlive` says are up. */
  attach(sender: SyncSender, isAlive: (peer: string) => boolean): void {
    this.syncSender = sender;
    this.isAlive = isAlive;
    this.scheduleAe();
  }

  /** An anti-entropy message from a connected peer. */
  receive(from: string, msg: SyncMessage): void {
    if (this.host.stopped()) return;
    if ((msg.type === 'digestReply' || msg.type === 'segmentsReply') && this.host.fill.holdRounds()) {
      // A membership sync is streaming everything here: finish with a fresh round once it is done.
      this.host.ae.abortRound(this.host.monotonicMs());
      this.host.ae.wake(this.host.monotonicMs() + this.catchUpDeferMs);
      this.scheduleAe();
      return;
    }
    if ((msg.type === 'digest' || msg.type === 'segments') && this.host.fill.isPending) {
      // A replica still catching up (or still receiving its admission's data) may lack acknowledged writes: a
      // round with it must not count as a full sync for anyone (another device catching up would take it as
      // proof it has everything), and peers would push it what its data stream is bringing anyway.
      this.sendSync(from, { type: 'refused', session: msg.session, reason: 'catching up' });
      return;
    }
    const guarded = guardSyncMessage(msg, this.host.dots.writer, this.host.dots.current);
    this.executeSync(this.host.ae.step(from, guarded, this.host.monotonicMs(), this.aeConfig(), this.syncLocal));
    this.scheduleAe();
  }

  /** Hands over the keys `peer` missed (hinted handoff), a batch at a time, if it is up. */
  handOver(peer: string): void {
    if (this.host.stopped() || this.syncSender === undefined || !this.isAlive(peer)) return;
    const keys = this.host.hints.take(peer, HANDOVER_KEYS_PER_PUSH);
    if (keys.length === 0) return;
    const actions = this.host.ae.handOver(peer, keys, this.host.monotonicMs(), this.aeConfig(), this.syncLocal);
    // Records are read now: hints renewed after this moment (a new miss) must survive the confirmation.
    if (actions.length > 0) this.handoverMark.set(peer, this.host.hints.mark());
    this.executeSync(actions);
  }

  /** Hands over hints to every live peer that has some; drops the hints of peers no longer members. */
  private handOverAll(): void {
    this.host.hints.expire();
    const config = this.host.core.config;
    for (const peer of this.host.hints.peers()) {
      if (config.epoch > 0 && !isMember(config, peer)) void this.host.hints.dropPeer(peer).catch((error: unknown) => this.host.fail(error));
      else this.handOver(peer);
    }
  }

  /** Starts an anti-entropy round with `peer` now if none is running (e.g. it just came back). */
  syncWith(peer: string): void {
    if (this.host.stopped() || this.syncSender === undefined) return;
    this.executeSync(this.host.ae.startRound(peer, this.host.monotonicMs(), this.aeConfig(), this.syncLocal));
    this.scheduleAe();
  }

  /**
   * The configuration anti-entropy works with: none (no members) while this device holds no seat, so it neither
   * starts nor answers rounds, hands nothing over and merges nothing a peer pushes (see ReplicaCore.seated).
   */
  private aeConfig(): MembershipConfig {
    const config = this.host.core.config;
    return this.host.core.seated(config) ? config : { ...config, voters: [], learners: [], previousVoters: [], replaced: [] };
  }

  private executeSync(actions: readonly SyncAction[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'persist':
          // Anti-entropy already counted this write in its own state (noteStored).
          this.host.digest.update(action.key, this.host.store.get(action.key), action.record);
          this.host.changes.record(action.key, action.record, this.host.wallClockMs());
          this.host.store.put(action.key, action.record).catch((error: unknown) => this.host.fail(error));
          break;
        case 'purge': {
          const current = this.host.store.get(action.key);
          if (current === undefined || !recordsEqual(current, action.record)) {
            // The core decides purges on the store it reads: this would be a bug, not a peer's doing. Keep the data.
            this.host.log.error({ key: action.key }, 'purge skipped: the stored version is not the one decided on');
            break;
          }
          this.host.digest.update(action.key, current, undefined);
          this.host.store.remove(action.key).catch((error: unknown) => this.host.fail(error));
          break;
        }
        case 'send':
          this.sendSync(action.to, action.msg);
          break;
        case 'sendDurable': {
          const { to, msg } = action;
          this.host.store.flush().then(
            () => this.sendSync(to, msg),
            (error: unknown) => this.host.fail(error),
          );
          break;
        }
        case 'hintsDelivered': {
          const peer = action.peer;
          const mark = this.handoverMark.get(peer) ?? -1;
          this.handoverMark.delete(peer);
          this.host.hints.delivered(peer, action.keys, mark).then(
            () => this.handOver(peer), // the next batch, if any
            (error: unknown) => this.host.fail(error),
          );
          break;
        }
        default:
          unreachable(action);
      }
    }
  }

  private sendSync(to: string, msg: SyncMessage): void {
    if (this.host.stopped()) return;
    const sent = this.syncSender?.send(to, msg) ?? false;
    if (!sent) this.host.ae.sendFailed(to, msg, this.host.monotonicMs());
  }

  /** Arms the anti-entropy timer for its next deadline (rounds, paced requests, timeouts, purges). */
  private scheduleAe(): void {
    if (this.host.stopped() || this.syncSender === undefined) return;
    const next = this.host.ae.nextDeadlineMs() ?? this.host.monotonicMs() + 1_000;
    if (this.aeTimer !== undefined) {
      if (next >= this.aeDueMs) return;
      this.syncTimers.clear(this.aeTimer);
    }
    this.aeDueMs = next;
    this.aeTimer = this.syncTimers.set(() => {
      this.aeTimer = undefined;
      this.aeDueMs = Infinity;
      if (this.host.stopped()) return;
      if (!this.host.ae.stats.running && this.host.fill.holdRounds()) {
        this.host.ae.wake(this.host.monotonicMs() + this.catchUpDeferMs); // and fetch the rest as soon as the stream ends
        // A membership sync is streaming everything here already: catch-up rounds would fetch it twice.
        this.aeDueMs = this.host.monotonicMs() + this.catchUpDeferMs;
        this.aeTimer = this.syncTimers.set(() => {
          this.aeTimer = undefined;
          this.aeDueMs = Infinity;
          this.scheduleAe();
        }, this.catchUpDeferMs);
        return;
      }
      this.executeSync(this.host.ae.tick(this.host.monotonicMs(), this.host.random(), this.aeConfig(), this.isAlive, this.syncLocal));
      this.handOverAll();
      this.host.collector.check(GC_HEAP_GROWTH_BYTES);
      this.scheduleAe();
    }, Math.max(0, Math.ceil(next - this.host.monotonicMs())));
  }

  /** Stops the anti-entropy timer. */
  stop(): void {
    if (this.aeTimer !== undefined) this.syncTimers.clear(this.aeTimer);
    this.aeTimer = undefined;
  }
}

// The device driver's part in filling a new device: the admission's data transfer (pending from the admission
// until a complete push arrived, durable as META_JOIN_TRANSFER) and whether anti-entropy rounds wait for a data
// stream. The decisions are src/core/fill.ts's; this keeps their state, its durability and the log.
import { InboundStreamWatch, admissionTransferOver, admittedWithData, roundsDecision } from '../core/fill.js';
import type { MembershipConfig } from '../core/membership.js';
import type { ReplicaCore } from '../core/replica.js';
import type { StoragePort } from '../storage/port.js';
import { META_JOIN_TRANSFER } from './driver-meta.js';
import type { RuntimeLogger } from './runtime.js';

export interface JoinTransferHost {
  readonly self: string;
  readonly core: ReplicaCore;
  readonly store: StoragePort;
  readonly log: RuntimeLogger;
  readonly monotonicMs: () => number;
  readonly fail: (error: unknown) => void;
}

export class JoinTransfer {
  /** This device was admitted and has not received the cluster's data yet (META_JOIN_TRANSFER). */
  private pending: boolean;
  private pendingSinceMs: number;
  /** Whether the last configuration seen gave this device its seat (to notice an admission). */
  private wasSeated: boolean;
  /** Records received by data streams so far, and when that last changed (see inboundStreamActive). */
  private readonly inbound: InboundStreamWatch;

  constructor(
    private readonly host: JoinTransferHost,
    private readonly transferIdleMs: number,
    inboundQuietMs: number,
  ) {
    this.pending = host.store.getMeta(META_JOIN_TRANSFER) === 'pending';
    this.pendingSinceMs = host.monotonicMs();
    this.wasSeated = host.core.seated();
    this.inbound = new InboundStreamWatch(inboundQuietMs);
  }

  /** Admitted and still waiting for (or receiving) the cluster's data: see check(). */
  get isPending(): boolean {
    return this.pending;
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
  check(config: MembershipConfig, startingUp: boolean): void {
    if (!this.pending || !admissionTransferOver(config, this.host.self, this.host.core.seated(config), startingUp)) return;
    this.host.log.warn({ epoch: config.epoch }, 'the data transfer of this device\'s admission did not complete: fetching the rest by anti-entropy rounds');
    this.set(false);
  }

  /** A configuration was adopted (persistConfig). */
  configAdopted(config: MembershipConfig): void {
    const seated = this.host.core.seated(config);
    if (admittedWithData(config, this.host.self, seated, this.wasSeated)) {
      // Admitted (or its seat given to this new store) in a cluster that has data: it arrives by the
      // admitting change's data sync.
      this.set(true);
    }
    this.wasSeated = seated;
    this.check(config, false);
  }

  /** A data stream's push to this device completed (transferComplete). */
  completed(peer: string, epoch: number, keys: number): void {
    if (!this.pending) return;
    this.host.log.info({ from: peer, epoch, keys }, 'received the cluster\'s data');
    this.set(false);
  }

  /**
   * Whether this device's own anti-entropy rounds wait: a data stream is bringing everything here already, or
   * will (a new voter's admission pushes the data after gathering it), and rounds would fetch it twice. A new
   * device whose transfer stalls (a learner's push that failed) leaves the receiving state after
   * transferIdleMs without data: it then answers rounds and fetches by rounds.
   */
  holdRounds(): boolean {
    const config = this.host.core.config;
    const decision = roundsDecision({
      joinPending: this.pending,
      inboundActive: this.inboundStreamActive(),
      config,
      self: this.host.self,
      nowMs: this.host.monotonicMs(),
      joinPendingSinceMs: this.pendingSinceMs,
      inboundChangedAtMs: this.inbound.changedAt,
      transferIdleMs: this.transferIdleMs,
    });
    if (decision !== 'stalled') return decision === 'hold';
    // The admission's transfer stalled: no longer "receiving" (which refuses every round, for good otherwise);
    // ordinary rounds fill this device from here.
    this.host.log.warn({ epoch: config.epoch }, 'the data transfer of this device\'s admission stalled: filling it by anti-entropy rounds');
    this.set(false);
    return false;
  }

  /** Whether a data stream (a membership sync) delivered records here within the quiet time. */
  private inboundStreamActive(): boolean {
    let keys = 0;
    for (const s of this.host.core.streams()) if (s.role === 'receiving') keys += s.keys;
    return this.inbound.observe(keys, this.host.monotonicMs());
  }

  private set(pending: boolean): void {
    this.pending = pending;
    if (pending) this.pendingSinceMs = this.host.monotonicMs();
    this.host.store.setMeta(META_JOIN_TRANSFER, pending ? 'pending' : 'done').catch((error: unknown) => this.host.fail(error));
  }
}

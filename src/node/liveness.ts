// Liveness of the peers: heartbeats out and in (with a sampled round trip), the phi-accrual failure detector,
// hanging up on connections whose peer went silent, and the IO of the auto-remove policy (src/core/auto-remove.ts).
import { DEFAULTS } from '../config/defaults.js';
import { autoRemoveStep } from '../core/auto-remove.js';
import { FAILURE_DETECTOR_DEFAULTS, FailureDetector, type PeerHealth, type PeerReport } from '../core/failure-detector.js';
import type { MembershipConfig } from '../core/membership.js';
import type { Message } from '../core/messages.js';
import type { ReplicaTransport } from '../net/transport.js';
import type { Logger } from './log.js';

/** Heartbeats acknowledged (for the round-trip time): one in this many, i.e. one every 2 s per peer. */
const RTT_SAMPLE_EVERY = 4;

export interface LivenessOptions {
  readonly self: string;
  readonly transport: Pick<ReplicaTransport, 'send' | 'isConnected' | 'connectedPeers' | 'hangUp'>;
  /** The current configuration and this device's store (heartbeats carry both). */
  readonly local: { readonly config: MembershipConfig; readonly storeId: string };
  readonly log: Logger;
  /** Propose the removal of a voter down this long (0: never). */
  readonly autoRemoveAfterMs: number;
  /** Proposes removing `peer` (the membership change). */
  readonly remove: (peer: string) => Promise<unknown>;
}

export class Liveness {
  private readonly opts: LivenessOptions;
  private readonly detector = new FailureDetector({ ...FAILURE_DETECTOR_DEFAULTS, heartbeatIntervalMs: DEFAULTS.heartbeatIntervalMs });
  private heartbeatSeq = 0;
  /** Heartbeats sent recently, by sequence number: send time, for the round-trip time. */
  private readonly heartbeatsSent = new Map<number, number>();
  /** When each peer's current connection opened (monotonic ms). */
  private readonly connectedAt = new Map<string, number>();
  /** Since when each voter has been down or disconnected (monotonic ms), for autoRemoveAfterMs. */
  private downSince = new Map<string, number>();

  constructor(options: LivenessOptions) {
    this.opts = options;
  }

  /** A new connection: a fresh start for the failure detector, and a first heartbeat at once. */
  connected(peer: string): void {
    // A new connection is a fresh start for the failure detector: a peer that was down (a restarted process)
    // counts as alive until its first heartbeat is due, instead of being hung up on at once as still down.
    this.detector.forget(peer);
    this.connectedAt.set(peer, performance.now());
    // A first heartbeat at once, so the peer's detector knows us within a round trip, not half an interval.
    this.heartbeatSeq += 1;
    this.heartbeatsSent.set(this.heartbeatSeq, performance.now());
    this.opts.transport.send(peer, { type: 'heartbeat', opId: this.heartbeatSeq, epoch: this.opts.local.config.epoch, store: this.opts.local.storeId });
  }

  disconnected(peer: string): void {
    this.connectedAt.delete(peer);
  }

  /** A heartbeat from `from`: it is alive; one in RTT_SAMPLE_EVERY is acknowledged. */
  heartbeat(from: string, msg: Extract<Message, { type: 'heartbeat' }>): void {
    this.detector.heartbeat(from, performance.now());
    // Liveness needs only the heartbeats; acks measure the round trip, which one in RTT_SAMPLE_EVERY does
    // (each message costs a Noise frame and a yamux window update at idle: this saves a third of them).
    if (msg.opId % RTT_SAMPLE_EVERY === 0) this.opts.transport.send(from, { type: 'heartbeatAck', opId: msg.opId, epoch: this.opts.local.config.epoch });
  }

  heartbeatAck(from: string, msg: Extract<Message, { type: 'heartbeatAck' }>): void {
    const sentAt = this.heartbeatsSent.get(msg.opId);
    if (sentAt !== undefined) this.detector.rtt(from, performance.now() - sentAt);
  }

  isAlive(peer: string): boolean {
    return this.healthOf(peer, performance.now()) === 'alive';
  }

  /**
   * A peer's health: down when not connected; a fresh connection (handshake done, no heartbeat yet) counts
   * as alive for up to the detector's down limit; otherwise what the phi-accrual detector says.
   */
  healthOf(peer: string, now: number): PeerHealth {
    if (peer === this.opts.self) return 'alive';
    if (!this.opts.transport.isConnected(peer)) return 'down';
    const report = this.detector.report(peer, now);
    if (report.lastSeenMs === undefined) {
      const since = this.connectedAt.get(peer);
      return since !== undefined && now - since < FAILURE_DETECTOR_DEFAULTS.downAfterMs ? 'alive' : 'down';
    }
    return report.state;
  }

  /** The failure detector's figures for `peer` (last heartbeat, round trip, phi). */
  report(peer: string, now: number): PeerReport {
    return this.detector.report(peer, now);
  }

  /** Sends a heartbeat to every connected peer; hangs up on members the detector holds down. */
  tick(): void {
    const now = performance.now();
    this.heartbeatSeq += 1;
    const seq = this.heartbeatSeq;
    this.heartbeatsSent.set(seq, now);
    for (const [s, at] of this.heartbeatsSent) {
      if (now - at > FAILURE_DETECTOR_DEFAULTS.downAfterMs * 2) this.heartbeatsSent.delete(s);
      else break;
    }
    const { transport, local } = this.opts;
    const epoch = local.config.epoch;
    this.maybeAutoRemove(now);
    for (const peer of transport.connectedPeers()) {
      transport.send(peer, { type: 'heartbeat', opId: seq, epoch, store: local.storeId });
      // A connection whose peer went silent (cut link) would queue writes forever: drop it, so sends fail
      // fast and the reconnect loop (or the next mDNS answer) builds a fresh one once the link is back.
      if (this.healthOf(peer, now) === 'down') {
        this.opts.log.info({ peer }, 'peer is down: closing its connection');
        this.detector.forget(peer);
        void transport.hangUp(peer).catch(() => undefined);
      }
    }
  }

  /** autoRemoveAfterMs: the first alive voter (by ID) proposes removing a voter that has been down that long. */
  private maybeAutoRemove(now: number): void {
    const { log } = this.opts;
    const step = autoRemoveStep({
      self: this.opts.self,
      voters: this.opts.local.config.voters.map((m) => m.peerId),
      alive: (peer) => this.healthOf(peer, now) === 'alive',
      downSince: this.downSince,
      nowMs: now,
      afterMs: this.opts.autoRemoveAfterMs,
    });
    this.downSince = step.downSince;
    for (const { peer, downMs } of step.remove) {
      log.warn({ peer, downMs: Math.round(downMs) }, 'voter down longer than autoRemoveAfterMs: proposing its removal');
      this.opts.remove(peer).catch((error: unknown) => log.warn({ peer, err: String(error) }, 'automatic removal failed'));
    }
  }
}

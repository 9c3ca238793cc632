// What this device reports about itself, read on demand: the /status view, the readiness reasons of /readyz,
// and the figures /metrics exports (types in src/node/status-view.ts).
import type { Hash64 } from '../core/digest.js';
import type { PeerHealth } from '../core/failure-detector.js';
import { type MemberInfo, type MembershipConfig, isJoint, isMember, isRemoved, isVoter, livePreviousVoters } from '../core/membership.js';
import { majority } from '../core/quorum.js';
import { type StreamProgress, previousNeeded as previousNeededOf } from '../core/replica.js';
import type { ReplicaTransport, SyncTransport } from '../net/transport.js';
import type { StoragePort } from '../storage/port.js';
import type { AdmissionState } from './admission.js';
import { databaseBytes } from './data-dir.js';
import type { JoinState } from './join.js';
import type { Liveness } from './liveness.js';
import type { MembershipService } from './membership.js';
import type { Peers } from './peers.js';
import type { Runtime } from './runtime.js';
import type {
  AdmissionView,
  AntiEntropyView,
  CatchUpView,
  MemberSyncView,
  MemberView,
  NodeMetrics,
  QuorumView,
  Role,
  StatusView,
  StreamView,
} from './status-view.js';
import { VERSION } from './version.js';

export type * from './status-view.js';

export interface StatusSources {
  readonly self: string;
  readonly dataDir: string;
  /** Wall-clock start time (ms since the epoch). */
  readonly startedAtMs: number;
  readonly store: Pick<StoragePort, 'stats'>;
  readonly runtime: Pick<Runtime, 'config' | 'core' | 'storeId' | 'digest' | 'ae' | 'hints' | 'opsInFlight' | 'joinTransferPending' | 'storageFailure'>;
  readonly membership: Pick<MembershipService, 'pending' | 'admissionState' | 'counters'>;
  readonly transport: Pick<ReplicaTransport, 'isConnected' | 'stats'>;
  readonly syncTransport: Pick<SyncTransport, 'stats'>;
  readonly liveness: Pick<Liveness, 'healthOf' | 'isAlive' | 'report'>;
  readonly peers: Pick<Peers, 'lastSeen' | 'addrsOf'>;
  readonly join: { readonly state: JoinState; readonly error: string };
  readonly stopping: () => boolean;
  readonly listenAddrs: () => string[];
  readonly httpUrl: () => string;
}

export class StatusReporter {
  private readonly src: StatusSources;

  constructor(sources: StatusSources) {
    this.src = sources;
  }

  /** Why this device is not ready to serve (empty: ready): for /readyz. */
  readiness(): string[] {
    const { runtime, self } = this.src;
    const reasons: string[] = [];
    const config = runtime.config;
    if (this.src.stopping()) reasons.push('shutting down');
    if (!runtime.core.seated(config)) reasons.push(`not a member of a cluster (${this.role(config)})`);
    if (runtime.storageFailure !== undefined) reasons.push(`storage failed: ${String(runtime.storageFailure)}`);
    const q = this.quorumView(config, performance.now());
    if (isMember(config, self) && !q.writable) {
      reasons.push(`quorum not reachable: ${q.reachable} of ${q.voters} voters alive, ${q.needed} needed${q.joint === undefined ? '' : ` (and ${q.joint.needed} of the ${q.joint.previousVoters} previous voters, ${q.joint.reachable} alive)`}`);
    }
    return reasons;
  }

  /** The figures /metrics exports, read at scrape time. */
  metricsSnapshot(): NodeMetrics {
    const { runtime, self, liveness } = this.src;
    const config = runtime.config;
    const now = performance.now();
    const stats = this.src.store.stats();
    const ae = runtime.ae;
    const tombstones = ae.tombstoneView(config);
    const hints = runtime.hints.stats();
    const members = [
      ...config.voters.map((m) => ({ role: 'voter' as const, state: m.peerId === self ? 'alive' : liveness.healthOf(m.peerId, now) })),
      ...config.learners.map((m) => ({ role: 'learner' as const, state: m.peerId === self ? 'alive' : liveness.healthOf(m.peerId, now) })),
    ];
    return {
      epoch: config.epoch,
      writable: this.quorumView(config, now).writable,
      catchingUp: runtime.joinTransferPending,
      members,
      keysLive: stats.liveKeys,
      keysStored: stats.totalKeys,
      storeBytes: databaseBytes(this.src.dataDir),
      opsInFlight: runtime.opsInFlight,
      antiEntropy: { ...ae.stats, converged: isMember(config, self) && ae.converged(config, (peer) => liveness.isAlive(peer)) },
      tombstonesWaiting: tombstones.waiting,
      tombstonesPurged: tombstones.purged,
      hints,
    };
  }

  /** Voters reachable from here against what a quorum needs (also in a joint phase's previous voters). */
  private quorumView(config: MembershipConfig, now: number): Omit<QuorumView, 'joint'> & { readonly joint: QuorumView['joint'] } {
    const alive = (peer: string): boolean => peer === this.src.self || this.src.liveness.healthOf(peer, now) === 'alive';
    const voters = config.voters.length;
    const reachable = config.voters.filter((m) => alive(m.peerId)).length;
    const needed = voters > 0 ? majority(voters) : 0;
    const previous = livePreviousVoters(config);
    const previousReachable = previous.filter(alive).length;
    const previousNeeded = previousNeededOf(config);
    const writable = voters > 0 && reachable >= needed && previousReachable >= previousNeeded;
    const joint = isJoint(config) ? { previousVoters: previous.length, reachable: previousReachable, needed: previousNeeded } : undefined;
    return { voters, reachable, needed, writable, joint };
  }

  status(): StatusView {
    const { runtime, self, liveness, transport, membership } = this.src;
    const config = runtime.config;
    const stats = this.src.store.stats();
    const now = performance.now();
    const health = (peer: string): { state: PeerHealth; lastSeen: string | null; rttMs: number | null; phi: number } => {
      if (peer === self) return { state: 'alive', lastSeen: new Date().toISOString(), rttMs: 0, phi: 0 };
      const report = liveness.report(peer, now);
      const state = liveness.healthOf(peer, now);
      const lastSeen = report.lastSeenMs === undefined ? this.src.peers.lastSeen(peer) : Date.now() - (now - report.lastSeenMs);
      return {
        state,
        lastSeen: lastSeen === undefined ? null : new Date(lastSeen).toISOString(),
        rttMs: report.rttMs === undefined ? null : Math.round(report.rttMs * 100) / 100,
        phi: Math.round(report.phi * 100) / 100,
      };
    };
    const syncViews = new Map(runtime.ae.peerViews(config).map((v) => [v.peerId, v]));
    const syncOf = (peer: string): MemberSyncView | undefined => {
      const v = syncViews.get(peer);
      if (v === undefined) return undefined;
      return {
        lastRoundAgoMs: v.lastRoundMs === undefined ? null : Math.round(now - v.lastRoundMs),
        lastRoundDurationMs: v.lastRoundDurationMs === undefined ? null : Math.round(v.lastRoundDurationMs * 10) / 10,
        lastRepair:
          v.lastRepair === undefined
            ? null
            : { agoMs: Math.round(now - v.lastRepair.atMs), keys: v.lastRepair.keys, durationMs: Math.round(v.lastRepair.durationMs * 10) / 10, bytes: v.lastRepair.bytes },
        matched: v.matched ?? null,
        keysDiffering: v.keysDiffering,
        rounds: v.rounds,
        failedRounds: v.failedRounds,
        bytes: v.bytes,
        recordsReceived: v.recordsReceived,
        recordsSent: v.recordsSent,
      };
    };
    const member = (m: MemberInfo): MemberView => ({
      peerId: m.peerId,
      // The store holding the seat (a device whose storage was replaced gets its seat back under a new one).
      store: m.store ?? null,
      self: m.peerId === self,
      connected: m.peerId === self || transport.isConnected(m.peerId),
      ...health(m.peerId),
      sync: syncOf(m.peerId),
      addrs: this.src.peers.addrsOf(m.peerId) ?? m.addrs,
    });
    const { joint, ...quorum } = this.quorumView(config, now);
    return {
      version: VERSION,
      peerId: self,
      storeId: runtime.storeId,
      clusterId: config.clusterId || null,
      epoch: config.epoch,
      role: this.role(config),
      joinError: this.src.join.error || undefined,
      voters: config.voters.map(member),
      learners: config.learners.map(member),
      removed: config.removed,
      pending: membership.pending,
      admission: admissionView(membership.admissionState()),
      quorum: { ...quorum, ...(joint === undefined ? {} : { joint }) },
      listen: this.src.listenAddrs(),
      http: this.src.httpUrl(),
      keys: stats.liveKeys,
      storedKeys: stats.totalKeys,
      tombstones: stats.totalKeys - stats.liveKeys,
      storage: { bytes: databaseBytes(this.src.dataDir), commits: stats.commits, recordsCommitted: stats.recordsCommitted },
      network: transport.stats,
      opsInFlight: runtime.opsInFlight,
      transfers: runtime.core.streams().map((stream) => streamStatus(stream, performance.now())),
      // The anti-entropy digest root: two replicas with the same root hold the same records.
      digest: { root: hashHex(runtime.digest.root()), keys: runtime.digest.size },
      antiEntropy: this.antiEntropyStatus(config),
      catchUp: this.catchUpStatus(config),
      membershipChanges: membership.counters,
      uptimeMs: Date.now() - this.src.startedAtMs,
      process: processMemory(),
    };
  }

  /** Progress of a new (or re-seated) device receiving its admission's data (null when not waiting for it). */
  private catchUpStatus(config: MembershipConfig): CatchUpView | null {
    return this.src.runtime.joinTransferPending ? this.joinTransferStatus(config) : null;
  }

  /** A new device receiving the cluster's data from the data sync of its admission. */
  private joinTransferStatus(config: MembershipConfig): CatchUpView {
    const { runtime } = this.src;
    const keysHeld = runtime.digest.size;
    const receiving = runtime.core
      .streams()
      .filter((s) => s.role === 'receiving' && s.epoch <= config.epoch)
      .sort((x, y) => y.lastMs - x.lastMs)[0];
    if (receiving === undefined) return { state: 'waiting-for-data', keysHeld, totalKeys: null, percent: null };
    const nowMs = performance.now();
    const { total } = receiving;
    // Keys held (not received): a resumed transfer starts from what the device kept.
    const percent = total === undefined || total === 0 ? null : Math.min(100, Math.round((keysHeld / total) * 1000) / 10);
    const { peer, records, bytes, recordsPerSec, bytesPerSec, elapsedMs, lastBatchAgoMs, resumedAfter } = streamStatus(receiving, nowMs);
    return { state: 'receiving', from: peer, keysHeld, totalKeys: total ?? null, percent, records, bytes, recordsPerSec, bytesPerSec, elapsedMs, lastBatchAgoMs, resumedAfter };
  }

  private antiEntropyStatus(config: MembershipConfig): AntiEntropyView {
    const { runtime, self, liveness } = this.src;
    const ae = runtime.ae;
    const stats = ae.stats;
    const tombstones = ae.tombstoneView(config);
    const wire = this.src.syncTransport.stats;
    return {
      // Digests were equal with every live member at the last round with each.
      converged: isMember(config, self) && ae.converged(config, (peer) => liveness.isAlive(peer)),
      running: stats.running,
      rounds: stats.rounds,
      matchedRounds: stats.matchedRounds,
      failedRounds: stats.failedRounds,
      keysRepaired: stats.keysRepaired,
      bytes: stats.bytes,
      wire: { bytesSent: wire.bytesSent, bytesReceived: wire.bytesReceived, messagesSent: wire.messagesSent, messagesReceived: wire.messagesReceived },
      tombstones: { waiting: tombstones.waiting, blockedBy: tombstones.blockedBy ?? null, purged: tombstones.purged },
      hints: { ...runtime.hints.stats(), pushes: ae.handoverStats.pushes, bytes: ae.handoverStats.bytes },
    };
  }

  role(config: MembershipConfig): Role {
    const { runtime, self } = this.src;
    if (isRemoved(config, self)) return 'removed';
    const joinState = this.src.join.state;
    if (joinState === 'stale-store') return 'stale-store';
    // A new voter of a joint configuration counts in quorums only together with the previous voters until
    // the change's data sync is done and finalized.
    // A member whose store is not its seat's (wiped, re-flashed) waits for the seat to be given to its store.
    if (isMember(config, self) && !runtime.core.seated(config)) return 'replacing';
    if (isVoter(config, self)) {
      const fresh = !config.previousVoters.includes(self) || (config.replaced ?? []).includes(self);
      return isJoint(config) && fresh ? 'catching-up' : 'voter';
    }
    if (isMember(config, self)) return 'learner';
    return joinState;
  }
}

/** Whether new devices join here without approval, and why (/status, POST /cluster/admit). */
export function admissionView(state: AdmissionState | null): AdmissionView | null {
  if (state === null) return null;
  return { open: state.open, reason: state.reason, until: state.untilMs === null ? null : new Date(state.untilMs).toISOString() };
}

/** Memory of this process (bytes): resident set, V8 heap used and reserved, memory outside the heap. */
function processMemory(): StatusView['process'] {
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external };
}

function hashHex(hash: Hash64): string {
  return `${hash.hi.toString(16).padStart(8, '0')}${hash.lo.toString(16).padStart(8, '0')}`;
}

/** A data stream's progress as /status shows it: figures and rates instead of clock readings. */
function streamStatus(stream: StreamProgress, nowMs: number): StreamView {
  const activeMs = Math.max(1, (stream.done ? stream.lastMs : nowMs) - stream.startedMs);
  return {
    peer: stream.peer,
    role: stream.role,
    epoch: stream.epoch,
    records: stream.keys,
    bytes: stream.bytes,
    total: stream.total ?? null,
    recordsPerSec: Math.round((stream.keys * 1000) / activeMs),
    bytesPerSec: Math.round((stream.bytes * 1000) / activeMs),
    elapsedMs: Math.round(activeMs),
    lastBatchAgoMs: Math.round(nowMs - stream.lastMs),
    resumedAfter: stream.resumedAfter ?? null,
    done: stream.done,
  };
}

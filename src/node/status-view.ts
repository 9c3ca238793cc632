// The typed views of what this device reports: StatusView (GET /status, which the CLI reads too), its parts,
// and NodeMetrics (what /metrics exports). Types only; src/node/status.ts fills them in.
import type { PeerHealth } from '../core/failure-detector.js';
import type { TransportStats } from '../net/transport.js';
import type { AdmissionReason } from './admission.js';
import type { HintStats } from './hints.js';
import type { JoinState } from './join.js';
import type { PendingCandidate } from './membership.js';

/** This device's role as /status shows it. */
export type Role = 'removed' | 'replacing' | 'catching-up' | 'voter' | 'learner' | JoinState;

/** The last anti-entropy exchanges with one member. */
export interface MemberSyncView {
  readonly lastRoundAgoMs: number | null;
  readonly lastRoundDurationMs: number | null;
  readonly lastRepair: { readonly agoMs: number; readonly keys: number; readonly durationMs: number; readonly bytes: number } | null;
  readonly matched: boolean | null;
  readonly keysDiffering: number;
  readonly rounds: number;
  readonly failedRounds: number;
  readonly bytes: number;
  readonly recordsReceived: number;
  readonly recordsSent: number;
}

export interface MemberView {
  readonly peerId: string;
  /** The store holding the seat (a device whose storage was replaced gets its seat back under a new one). */
  readonly store: string | null;
  readonly self: boolean;
  readonly connected: boolean;
  readonly state: PeerHealth;
  /** ISO time of the last contact (null: never). */
  readonly lastSeen: string | null;
  readonly rttMs: number | null;
  readonly phi: number;
  /** Undefined (absent in JSON) for this device and for members not compared with yet. */
  readonly sync: MemberSyncView | undefined;
  readonly addrs: readonly string[];
}

/** Voters reachable from here against what a quorum needs (also in a joint phase's previous voters). */
export interface QuorumView {
  readonly voters: number;
  readonly reachable: number;
  readonly needed: number;
  readonly writable: boolean;
  readonly joint?: { readonly previousVoters: number; readonly reachable: number; readonly needed: number };
}

export interface AdmissionView {
  readonly open: boolean;
  readonly reason: AdmissionReason;
  /** ISO end of the operator's window (null: no window). */
  readonly until: string | null;
}

/** A data stream's progress: figures and rates instead of clock readings. */
export interface StreamView {
  readonly peer: string;
  readonly role: 'sending' | 'receiving';
  readonly epoch: number;
  readonly records: number;
  readonly bytes: number;
  readonly total: number | null;
  readonly recordsPerSec: number;
  readonly bytesPerSec: number;
  readonly elapsedMs: number;
  readonly lastBatchAgoMs: number;
  readonly resumedAfter: string | null;
  readonly done: boolean;
}

/** A new (or re-seated) device receiving its admission's data. */
export type CatchUpView =
  | { readonly state: 'waiting-for-data'; readonly keysHeld: number; readonly totalKeys: null; readonly percent: null }
  | {
      readonly state: 'receiving';
      readonly from: string;
      readonly keysHeld: number;
      readonly totalKeys: number | null;
      readonly percent: number | null;
      readonly records: number;
      readonly bytes: number;
      readonly recordsPerSec: number;
      readonly bytesPerSec: number;
      readonly elapsedMs: number;
      readonly lastBatchAgoMs: number;
      readonly resumedAfter: string | null;
    };

export interface AntiEntropyView {
  /** Digests were equal with every live member at the last round with each. */
  readonly converged: boolean;
  readonly running: boolean;
  readonly rounds: number;
  readonly matchedRounds: number;
  readonly failedRounds: number;
  readonly keysRepaired: number;
  readonly bytes: number;
  readonly wire: { readonly bytesSent: number; readonly bytesReceived: number; readonly messagesSent: number; readonly messagesReceived: number };
  readonly tombstones: { readonly waiting: number; readonly blockedBy: string | null; readonly purged: number };
  readonly hints: HintStats & { readonly pushes: number; readonly bytes: number };
}

/** What GET /status returns. */
export interface StatusView {
  readonly version: string;
  readonly peerId: string;
  readonly storeId: string;
  readonly clusterId: string | null;
  readonly epoch: number;
  readonly role: Role;
  /** Why the last join attempt failed (undefined, absent in JSON, when none did). */
  readonly joinError: string | undefined;
  readonly voters: readonly MemberView[];
  readonly learners: readonly MemberView[];
  readonly removed: readonly string[];
  readonly pending: readonly PendingCandidate[];
  readonly admission: AdmissionView | null;
  readonly quorum: QuorumView;
  readonly listen: readonly string[];
  readonly http: string;
  readonly keys: number;
  readonly storedKeys: number;
  readonly tombstones: number;
  readonly storage: { readonly bytes: number; readonly commits: number; readonly recordsCommitted: number };
  readonly network: Readonly<TransportStats>;
  readonly opsInFlight: number;
  readonly transfers: readonly StreamView[];
  /** The anti-entropy digest root: two replicas with the same root hold the same records. */
  readonly digest: { readonly root: string; readonly keys: number };
  readonly antiEntropy: AntiEntropyView;
  readonly catchUp: CatchUpView | null;
  readonly membershipChanges: { readonly changes: number; readonly conflicts: number; readonly syncs: number };
  readonly uptimeMs: number;
  /** Memory of this process (bytes): resident set, V8 heap used and reserved, memory outside the heap. */
  readonly process: { readonly rssBytes: number; readonly heapUsedBytes: number; readonly heapTotalBytes: number; readonly externalBytes: number };
}

/** The figures /metrics exports, read at scrape time (the HTTP layer's MetricsSnapshot). */
export interface NodeMetrics {
  readonly epoch: number;
  readonly writable: boolean;
  readonly catchingUp: boolean;
  readonly members: ReadonlyArray<{ readonly role: 'voter' | 'learner'; readonly state: string }>;
  readonly keysLive: number;
  readonly keysStored: number;
  readonly storeBytes: number;
  readonly opsInFlight: number;
  readonly antiEntropy: {
    readonly rounds: number;
    readonly matchedRounds: number;
    readonly failedRounds: number;
    readonly keysRepaired: number;
    readonly bytes: number;
    readonly converged: boolean;
  };
  readonly tombstonesWaiting: number;
  readonly tombstonesPurged: number;
  readonly hints: { readonly queued: number; readonly delivered: number; readonly dropped: number; readonly expired: number };
}

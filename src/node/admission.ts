// Owns one device's decision whether a new identity (a peer ID that holds no seat) may join without an operator's
// `quorumd approve`: the genesis rule (autoAdmit, while the cluster has never removed a device) and admission
// windows an operator opens on this device (`quorumd admit --for 10m`), which any removal closes.
//
// Why: the credential to connect is the shared cluster key, and revocation is by peer ID. A removed device
// that deletes its peer.key is a new identity holding the key; automatic admission would let it straight back in.
// So after the first removal, a new identity needs a member's explicit decision: `approve PEER`, or a window an
// operator opened after that removal. Re-seating a wiped device (same peer.key, new store) is not an admission:
// its peer key proves it owns the seat, and no window is needed (src/node/membership.ts).
import { MembershipChangeError } from '../core/errors.js';
import type { MembershipConfig } from '../core/membership.js';

/** A candidate waiting for `quorumd approve` (autoAdmit off). */
export interface PendingCandidate {
  readonly peerId: string;
  readonly addrs: readonly string[];
  readonly store: string | undefined;
  readonly since: string;
}

/** Candidates remembered for approval at most (oldest forgotten first). */
export const PENDING_MAX = 64;

/** A new identity would be admitted without an operator's decision while admission is closed here. */
export class AdmissionClosedError extends MembershipChangeError {
  constructor(peerId: string) {
    super(`${peerId} is a new device and admission is closed (a device was removed): run \`quorumd approve ${peerId}\` or \`quorumd admit --for 10m\` on a member`);
  }
}

/** Why new identities are, or are not, admitted automatically here now. */
export type AdmissionReason =
  /** autoAdmit on and the cluster never removed a device: every key holder is still trusted. */
  | 'genesis'
  /** An operator opened a window on this device and no removal happened since. */
  | 'window'
  /** A device was removed (or autoAdmit is off) and no window is open: `quorumd approve` or `admit --for`. */
  | 'closed';

export interface AdmissionState {
  readonly open: boolean;
  readonly reason: AdmissionReason;
  /** End of the operator's window (ms since the epoch), when one is open. */
  readonly untilMs: number | null;
}

export interface AdmissionOptions {
  /** The autoAdmit setting: the genesis rule applies only with it. */
  readonly autoAdmit: boolean;
  /** Monotonic clock (ms) that ends windows: a wall-clock step back must not stretch one. */
  readonly monotonicNow: () => number;
  /** Wall clock (ms since the epoch), only to show when a window ends. */
  readonly wallNow: () => number;
}

interface Window {
  /** On the monotonic clock. */
  readonly endsAt: number;
  /** The same moment on the wall clock, for display. */
  readonly untilMs: number;
  /** The removed peer IDs when the window opened: any other one in the configuration closes it. */
  readonly removedAtOpen: ReadonlySet<string>;
}

export class AdmissionPolicy {
  private readonly options: AdmissionOptions;
  private window: Window | undefined;

  constructor(options: AdmissionOptions) {
    this.options = options;
  }

  /**
   * Opens (or replaces) this device's window for `forMs` from now, under `config`. The window is this device's
   * alone (not replicated): join requests sent to other members are decided by their own windows.
   */
  open(config: MembershipConfig, forMs: number): AdmissionState {
    this.window = { endsAt: this.options.monotonicNow() + forMs, untilMs: this.options.wallNow() + forMs, removedAtOpen: new Set(config.removed) };
    return this.state(config);
  }

  /** Closes this device's window (the genesis rule is unaffected: it ends with the first removal). */
  close(config: MembershipConfig): AdmissionState {
    this.window = undefined;
    return this.state(config);
  }

  /** Whether a new identity asking to join under `config` is admitted without an operator's approval. */
  allows(config: MembershipConfig): boolean {
    return this.state(config).open;
  }

  state(config: MembershipConfig): AdmissionState {
    const window = this.window;
    if (window !== undefined) {
      const removedSince = config.removed.some((peer) => !window.removedAtOpen.has(peer));
      if (removedSince || this.options.monotonicNow() >= window.endsAt) this.window = undefined;
      else return { open: true, reason: 'window', untilMs: window.untilMs };
    }
    if (this.options.autoAdmit && config.removed.length === 0) return { open: true, reason: 'genesis', untilMs: null };
    return { open: false, reason: 'closed', untilMs: null };
  }
}

// Joining a cluster: the loop that asks members (the --join addresses, or whoever connected over mDNS) until
// this store holds a seat, and the join state /status shows (joining, waiting, pending, stale-store, member).
// Its timers and everything it asks of the transport and store are injected: the daemon passes the real ones,
// the simulator (test/sim/membership.ts) virtual time and its simulated network.
import { DEFAULTS } from '../config/defaults.js';
import { type MembershipConfig, isMember, isRemoved, isVoter } from '../core/membership.js';
import type { ReplicaTransport } from '../net/transport.js';
import type { StoreStats } from '../storage/port.js';
import type { TimerHandle, TimerPort } from './driver-ports.js';
import type { MembershipService } from './membership.js';
import type { Runtime, RuntimeLogger } from './runtime.js';

export type JoinState = 'member' | 'joining' | 'waiting' | 'pending' | 'stale-store';

export interface JoinOptions {
  readonly self: string;
  readonly dataDir: string;
  /** The --join addresses: asked in turn, and (before this device holds a configuration) the only ones asked. */
  readonly joinAddrs: readonly string[];
  readonly transport: Pick<ReplicaTransport, 'dial' | 'connectedPeers'>;
  readonly runtime: Pick<Runtime, 'config' | 'core'>;
  readonly store: { stats(): Pick<StoreStats, 'totalKeys'> };
  readonly membership: Pick<MembershipService, 'requestJoin'>;
  readonly log: RuntimeLogger;
  readonly listenAddrs: () => string[];
  /** The daemon is shutting down: stop asking. */
  readonly stopping: () => boolean;
  /** The retry pause (the daemon: REAL_TIMERS). */
  readonly timers: TimerPort;
  /** Pause between rounds of asking (default DEFAULTS.joinRetryMs). */
  readonly retryMs?: number;
  /** Time allowed to each join request (default DEFAULTS.joinTimeoutMs). */
  readonly timeoutMs?: number;
}

export class Joiner {
  private readonly opts: JoinOptions;
  private joinState: JoinState = 'member';
  private joinError = '';
  private loop: Promise<void> | undefined;
  /** Wakes the join loop early (a peer connected). */
  private joinWake: (() => void) | undefined;

  constructor(options: JoinOptions) {
    this.opts = options;
  }

  get state(): JoinState {
    return this.joinState;
  }

  /** Why the last join attempt failed ('' when none did, or the device joined). */
  get error(): string {
    return this.joinError;
  }

  /** At start: asks to join unless this store holds a seat (or this device was removed, or it is asking already). */
  start(mdns: boolean): void {
    const { runtime, self, joinAddrs } = this.opts;
    if (this.loop === undefined && !runtime.core.seated() && !isRemoved(runtime.config, self)) {
      this.joinState = joinAddrs.length > 0 ? 'joining' : 'waiting';
      this.run(mdns);
    }
  }

  /** A new configuration: a member again, or our seat names another store now (this store lost it). */
  configChanged(config: MembershipConfig): void {
    if (this.opts.runtime.core.seated(config)) this.joinState = 'member';
    else if (isMember(config, this.opts.self) && this.loop === undefined && !this.opts.stopping()) {
      // Our seat names another store now: this store lost it (see runJoinLoop, which tells why and waits).
      this.run(false);
    }
  }

  /** A device waiting to join asks a new connection at once instead of at its next retry. */
  wake(): void {
    const wake = this.joinWake;
    this.joinWake = undefined;
    wake?.();
  }

  private run(mdns: boolean): void {
    this.loop = this.runJoinLoop(mdns).finally(() => (this.loop = undefined));
  }

  /**
   * Asks to join until we are a member: through each --join address in turn, and any device we are
   * connected to (found over mDNS). A device that holds the key but no membership never founds a cluster.
   */
  private async runJoinLoop(mdns: boolean): Promise<void> {
    const { runtime, self, joinAddrs, transport, log } = this.opts;
    const retryMs = this.opts.retryMs ?? DEFAULTS.joinRetryMs;
    if (joinAddrs.length === 0 && runtime.config.epoch === 0) {
      log.warn({ mdns }, mdns ? 'holding a cluster key but no membership: looking for members over mDNS' : 'holding a cluster key but no membership: waiting to join (start with --join MULTIADDR, or enable mDNS)');
    }
    let attempt = 0;
    // Until this store holds a seat: a device whose storage is new asks too, and the member it asks gives the
    // old seat to this store (MembershipService: replacement).
    while (!this.opts.stopping() && !runtime.core.seated() && !isRemoved(runtime.config, self)) {
      attempt += 1;
      if (this.opts.store.stats().totalKeys > 0) {
        // An unseated store never takes records, so this one was seated once and its seat went to another store
        // since (an old SD card put back after the device was re-seated). Its data may hold values whose deletes
        // were purged meanwhile: it must not come back. Only an empty store asks to join.
        if (this.joinState !== 'stale-store') {
          log.error({ dataDir: this.opts.dataDir }, 'this store belongs to an earlier seat of this device (its seat went to another store): remove quorumd.db* to join again with an empty store');
        }
        this.joinState = 'stale-store';
        this.joinError = 'this store belongs to an earlier seat of this device: remove quorumd.db* in the data dir to join again';
        await this.joinPause(retryMs);
        continue;
      }
      // Before this device holds any configuration it cannot verify what it is told: it trusts the member it asks.
      // With --join that is the pinned address only, never any key holder that happened to connect to it (one
      // answering with a cluster of its own making would capture the device and every write its clients make).
      const pinned = joinAddrs.length > 0 && runtime.config.epoch === 0;
      const candidates = pinned ? [] : [...transport.connectedPeers()];
      if (joinAddrs.length > 0) {
        const addr = joinAddrs[attempt % joinAddrs.length] as string;
        try {
          const member = await transport.dial(addr);
          candidates.unshift(member);
        } catch (error) {
          this.joinError = `dialing ${addr}: ${error instanceof Error ? error.message : String(error)}`;
        }
      }
      for (const member of new Set(candidates)) {
        if (this.opts.stopping() || runtime.core.seated()) break;
        try {
          log.info({ member }, 'asking to join the cluster');
          await this.opts.membership.requestJoin(member, this.opts.listenAddrs(), this.opts.timeoutMs ?? DEFAULTS.joinTimeoutMs);
          // A join answered OK with a configuration that does not seat this store (e.g. a seat admitted on a
          // store this device has lost since) is no join: keep asking until this store holds its seat.
          if (!runtime.core.seated()) {
            this.joinError = 'the cluster answered the join, but its configuration does not seat this store yet';
            continue;
          }
          log.info({ epoch: runtime.config.epoch, role: isVoter(runtime.config, self) ? 'voter' : 'learner' }, 'joined the cluster');
          this.joinError = '';
          return;
        } catch (error) {
          this.joinError = error instanceof Error ? error.message : String(error);
          if (this.joinError.startsWith('waiting for approval')) this.joinState = 'pending';
          log.debug({ member, err: this.joinError }, 'join attempt failed');
        }
      }
      await this.joinPause(retryMs);
    }
  }

  /** Sleeps `ms`, or less if a new peer connects meanwhile. */
  private joinPause(ms: number): Promise<void> {
    const { timers } = this.opts;
    return new Promise<void>((resolve) => {
      const timer: TimerHandle = timers.set(() => {
        this.joinWake = undefined;
        resolve();
      }, ms);
      this.joinWake = () => {
        timers.clear(timer);
        resolve();
      };
    });
  }
}

// The daemon's node side as one lifecycle facade: it owns the peer-facing parts (liveness, peers, join, status)
// around the runtime and membership, dispatches what the transports deliver, and starts and stops them in order.
// It knows nothing of HTTP: src/app wires it to the API through ApiFrontEnd and the status methods.
import { DEFAULTS } from '../config/defaults.js';
import { type MembershipConfig, isJoint, isMember, isRemoved } from '../core/membership.js';
import type { Message } from '../core/messages.js';
import type { NetNode } from '../net/node.js';
import type { ReplicaTransport, SyncTransport } from '../net/transport.js';
import type { StoragePort } from '../storage/port.js';
import type { AuditLog } from './audit.js';
import { removeDaemonFile, writeDaemonFile } from './data-dir.js';
import { META, writeMeta } from '../storage/meta.js';
import type { TimerPort } from './driver-ports.js';
import { Joiner } from './join.js';
import { Liveness } from './liveness.js';
import type { Logger } from './log.js';
import { type MembershipService, isJoinMessage } from './membership.js';
import { Peers } from './peers.js';
import type { Runtime } from './runtime.js';
import { type NodeMetrics, type StatusView, StatusReporter } from './status.js';
import { VERSION } from './version.js';

export { StartupError, nextDotActor } from './data-dir.js';

/** Time allowed to each network shutdown step (we must exit within 5 s of SIGTERM). */
const NETWORK_STOP_MS = 1_000;
/** Delay before the first anti-entropy round with a peer that just connected (its streams settle first). */
const SYNC_AFTER_CONNECT_MS = 200;
/** How long a leaving device repeats its removal to the remaining voters before exiting anyway. */
const LEAVE_ANNOUNCE_MS = 5_000;
/** Time a removed device's connection stays open after the change, so the news of its removal reaches it. */
const REMOVED_HANGUP_DELAY_MS = 500;

/** The client API in front of the node (the HTTP server), started and stopped within the node's lifecycle. */
export interface ApiFrontEnd {
  /** Starts serving; resolves with the URL clients reach it at. */
  listen(): Promise<string>;
  /** Takes no new connections and closes idle ones; resolves once every connection is closed. */
  stopAccepting(): Promise<void>;
  /** Closes the connections still open (after in-flight requests were drained). */
  closeAll(): void;
}

/** What the API asks of the node, besides the runtime's reads and writes. */
export interface NodeApi {
  status(): StatusView;
  readiness(): string[];
  metricsSnapshot(): NodeMetrics;
  leave(): Promise<MembershipConfig>;
}

export interface NodeDaemonParts {
  readonly peerId: string;
  readonly dataDir: string;
  readonly log: Logger;
  readonly store: StoragePort;
  readonly node: NetNode;
  readonly transport: ReplicaTransport;
  readonly syncTransport: SyncTransport;
  readonly runtime: Runtime;
  readonly membership: MembershipService;
  readonly audit: AuditLog;
  readonly joinAddrs: readonly string[];
  /** Propose the removal of a voter down this long (0: never). */
  readonly autoRemoveAfterMs: number;
  /** Timers of the parts that take them injected (the join loop's retry pause). */
  readonly timers: TimerPort;
}

export class NodeDaemon implements NodeApi {
  readonly peerId: string;
  readonly dataDir: string;
  readonly startedAtMs = Date.now();
  readonly runtime: Runtime;
  readonly membership: MembershipService;
  /** Resolves when the daemon asks its owner to exit (after `leave`). */
  readonly exitRequested: Promise<void>;
  private requestExit: () => void = () => undefined;
  private readonly log: Logger;
  private readonly store: StoragePort;
  private readonly node: NetNode;
  private readonly transport: ReplicaTransport;
  private readonly syncTransport: SyncTransport;
  private readonly audit: AuditLog;
  private readonly liveness: Liveness;
  private readonly peers: Peers;
  private readonly joiner: Joiner;
  private readonly reporter: StatusReporter;
  private front: ApiFrontEnd | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private httpUrl = '';
  private stopping: Promise<void> | undefined;

  constructor(parts: NodeDaemonParts) {
    this.peerId = parts.peerId;
    this.dataDir = parts.dataDir;
    this.log = parts.log;
    this.store = parts.store;
    this.node = parts.node;
    this.transport = parts.transport;
    this.syncTransport = parts.syncTransport;
    this.runtime = parts.runtime;
    this.membership = parts.membership;
    this.audit = parts.audit;
    this.exitRequested = new Promise<void>((resolve) => {
      this.requestExit = resolve;
    });
    const stopping = (): boolean => this.stopping !== undefined;
    const self = parts.peerId;
    this.liveness = new Liveness({
      self,
      transport: parts.transport,
      local: parts.runtime,
      log: parts.log,
      autoRemoveAfterMs: parts.autoRemoveAfterMs,
      remove: (peer) => this.membership.remove(peer),
    });
    this.peers = new Peers({ self, node: parts.node, transport: parts.transport, store: parts.store, config: () => this.runtime.config, log: parts.log, stopping });
    this.joiner = new Joiner({
      self,
      dataDir: parts.dataDir,
      joinAddrs: parts.joinAddrs,
      transport: parts.transport,
      runtime: parts.runtime,
      store: parts.store,
      membership: parts.membership,
      log: parts.log,
      listenAddrs: () => this.listenAddrs(),
      stopping,
      timers: parts.timers,
    });
    this.reporter = new StatusReporter({
      self,
      dataDir: parts.dataDir,
      startedAtMs: this.startedAtMs,
      store: parts.store,
      runtime: parts.runtime,
      membership: parts.membership,
      transport: parts.transport,
      syncTransport: parts.syncTransport,
      liveness: this.liveness,
      peers: this.peers,
      join: this.joiner,
      stopping,
      listenAddrs: () => this.listenAddrs(),
      httpUrl: () => this.httpUrl,
    });
  }

  /** Starts the transports, discovery, the API (`front`), joining, heartbeats and redialing; writes daemon.json. */
  async start(front: ApiFrontEnd, mdns: boolean): Promise<void> {
    this.front = front;
    this.peers.start();
    await this.transport.start();
    await this.syncTransport.start();
    this.runtime.attachSync(this.syncTransport, (peer) => this.isAlive(peer) && this.syncTransport.isConnected(peer));
    this.runtime.onConfigChange((config) => this.onConfigChange(config));
    await this.peers.discover();
    this.httpUrl = await front.listen();
    if (!mdns) this.log.debug({}, 'mDNS disabled (--no-mdns)');

    const config = this.runtime.config;
    this.joiner.start(mdns);
    this.heartbeatTimer = setInterval(() => this.heartbeat(), DEFAULTS.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    this.peers.startReconnecting();
    await writeDaemonFile(this.dataDir, { pid: process.pid, peerId: this.peerId, http: this.httpUrl, listen: this.listenAddrs() });
    this.audit.append('started', {
      peerId: this.peerId,
      version: VERSION,
      http: this.httpUrl,
      epoch: config.epoch,
      voters: config.voters.map((m) => m.peerId),
      learners: config.learners.map((m) => m.peerId),
    });
    this.log.info(
      { peerId: this.peerId, http: this.httpUrl, listen: this.listenAddrs(), epoch: config.epoch, version: VERSION },
      'quorumd ready',
    );
  }

  /** Listen addresses others can dial (wildcards expanded by libp2p), each ending in /p2p/<peerId>. */
  listenAddrs(): string[] {
    return dialableAddrs(this.node);
  }

  get httpEndpoint(): string {
    return this.httpUrl;
  }

  /** A message from the replica transport. */
  handleMessage(from: string, msg: Message): void {
    this.peers.noteSeen(from);
    if (msg.type === 'heartbeat') {
      if (msg.store !== undefined) this.peers.rememberStore(from, msg.store);
      this.liveness.heartbeat(from, msg);
      this.runtime.notePeerEpoch(from, msg.epoch);
    } else if (msg.type === 'heartbeatAck') {
      this.liveness.heartbeatAck(from, msg);
      this.runtime.notePeerEpoch(from, msg.epoch);
    } else if (isJoinMessage(msg)) {
      // A join request names the store the device runs now, like its heartbeats: the newest word wins (a
      // re-seating queued for an older request then knows it is stale, see MembershipService.replaceSeat).
      if (msg.type === 'joinRequest' && msg.store !== undefined && msg.store.length > 0) this.peers.rememberStore(from, msg.store);
      this.membership.handle(from, msg);
    } else {
      this.runtime.receive(from, msg);
    }
  }

  peerConnected(peer: string): void {
    this.peers.noteSeen(peer);
    this.liveness.connected(peer);
    // A member that (re)connects gets the writes it missed (hinted handoff) and is compared at once, not at the
    // next round. One side starts the round (the lower peer ID), so the pair does not compare twice.
    setTimeout(() => {
      this.runtime.handOver(peer);
      if (this.peerId < peer) this.runtime.syncWith(peer);
    }, SYNC_AFTER_CONNECT_MS).unref();
    // A device waiting to join asks a new connection at once instead of at its next retry.
    this.joiner.wake();
  }

  peerDisconnected(peer: string): void {
    this.peers.noteSeen(peer);
    this.liveness.disconnected(peer);
    this.membership.peerDisconnected(peer);
    this.peers.forgetIfStranger(peer);
  }

  /**
   * Whether `peer`'s frames are decoded without limit (see FrameTransportOptions.trusted): a member of our
   * configuration (or a previous voter of a joint phase). Before we are a member of anything, everyone: the member
   * we asked to join sends us its configuration and data, and we hold nothing to protect yet.
   */
  trustsFrames(peer: string): boolean {
    const config = this.runtime.config;
    if (config.epoch === 0) return true;
    if (isRemoved(config, peer)) return false;
    return isMember(config, peer) || config.previousVoters.includes(peer);
  }

  /** The store `peer` last said it runs on (undefined: not heard yet). */
  storeOf(peer: string): string | undefined {
    return this.peers.storeOf(peer);
  }

  isAlive(peer: string): boolean {
    return this.liveness.isAlive(peer);
  }

  knownAddrs(peer: string): readonly string[] {
    return this.peers.knownAddrs(peer);
  }

  /** Sends a heartbeat to every connected peer; hangs up on members the detector holds down. */
  private heartbeat(): void {
    if (this.stopping !== undefined) return;
    this.liveness.tick();
  }

  private onConfigChange(config: MembershipConfig): void {
    this.audit.append('membership', {
      epoch: config.epoch,
      voters: config.voters.map((m) => m.peerId),
      learners: config.learners.map((m) => m.peerId),
      ...(isJoint(config) ? { previousVoters: config.previousVoters } : {}),
      removed: config.removed.slice(-16),
    });
    this.joiner.configChanged(config);
    for (const peer of this.transport.connectedPeers()) {
      if (isRemoved(config, peer)) {
        // Not at once: the configuration that tells the device it was removed is queued for it in this very
        // turn (the core sends it) and would be dropped with the connection, leaving the device believing it
        // is still a member. The gater already refuses new connections and the core ignores its data.
        this.log.info({ peer }, 'closing the connection of a removed device');
        setTimeout(() => void this.transport.hangUp(peer).catch(() => undefined), REMOVED_HANGUP_DELAY_MS).unref();
      }
    }
    if (isRemoved(config, this.peerId)) {
      this.log.warn({ epoch: config.epoch }, 'this device was removed from the cluster; it no longer serves requests');
    }
  }

  /**
   * Removes this device from the cluster (others take over its data duties), then asks the owner to exit —
   * but only once the remaining voters know: the commit's announcement is fire-and-forget, and if it were
   * lost while we exit, a last remaining voter would wait for us forever. We repeat it until each has
   * adopted it (it then closes our connection, as for any removed device) or LEAVE_ANNOUNCE_MS passed.
   */
  async leave(): Promise<MembershipConfig> {
    const config = await this.membership.remove(this.peerId);
    const deadline = performance.now() + LEAVE_ANNOUNCE_MS;
    const announce = (): void => {
      const waiting = config.voters.map((m) => m.peerId).filter((p) => this.transport.isConnected(p));
      if (waiting.length === 0 || performance.now() > deadline) {
        this.requestExit();
        return;
      }
      for (const peer of waiting) this.transport.send(peer, { type: 'config', epoch: config.epoch, config });
      setTimeout(announce, 200).unref();
    };
    announce();
    return config;
  }

  /** Why this device is not ready to serve (empty: ready): for /readyz. */
  readiness(): string[] {
    return this.reporter.readiness();
  }

  /** The figures /metrics exports, read at scrape time. */
  metricsSnapshot(): NodeMetrics {
    return this.reporter.metricsSnapshot();
  }

  status(): StatusView {
    return this.reporter.status();
  }

  /** Stops accepting, finishes in-flight requests (bounded), closes the network and the database. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.log.info({}, 'shutting down');
    this.audit.append('stopped', { peerId: this.peerId });
    this.peers.stop();
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.membership.stop();
    const closed = this.front?.stopAccepting() ?? Promise.resolve();
    await this.runtime.drain(DEFAULTS.shutdownGraceMs);
    this.runtime.stop(); // whatever is still pending is answered 503 shutting_down (indeterminate)
    this.front?.closeAll();
    await closed;
    // Close the store before the network: a slow libp2p stop must not cost us the clean-shutdown mark.
    await writeMeta(this.store, META.cleanShutdown, true);
    await this.store.close();
    await withTimeout(Promise.all([this.transport.stop(), this.syncTransport.stop()]), NETWORK_STOP_MS);
    await withTimeout(Promise.resolve(this.node.stop()), NETWORK_STOP_MS);
    await removeDaemonFile(this.dataDir);
    this.log.info({}, 'stopped');
  }
}

/** Listen addresses others can dial (wildcards expanded by libp2p), each ending in /p2p/<peerId>. */
export function dialableAddrs(node: NetNode): string[] {
  return node.getMultiaddrs().map((a) => a.toString());
}

/** Waits for `promise` at most `ms` (errors ignored): shutdown steps must not hold the exit hostage. */
async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  await Promise.race([promise.catch(() => undefined), limit]);
  clearTimeout(timer);
}

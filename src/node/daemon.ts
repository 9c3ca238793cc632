// Daemon assembly and lifecycle: data dir, identity, cluster key, storage, libp2p (+ mDNS), runtime,
// membership and HTTP; founding or joining a cluster, heartbeats and failure detection, reconnecting to known
// members, daemon.json, and a clean shutdown.
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { equals as equalBytes } from 'uint8arrays';
import { existsSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join as joinPath, resolve as resolvePath } from 'node:path';
import { multiaddr } from '@multiformats/multiaddr';
import { DEFAULTS } from '../config/defaults.js';
import type { Hash64 } from '../core/digest.js';
import { FAILURE_DETECTOR_DEFAULTS, FailureDetector } from '../core/failure-detector.js';
import {
  type MemberInfo,
  type MembershipConfig,
  NO_CONFIG,
  configProblem,
  foundingConfig,
  isJoint,
  isMember,
  isRemoved,
  isVoter,
  livePreviousVoters,
} from '../core/membership.js';
import type { Message } from '../core/messages.js';
import type { AcceptorState } from '../core/paxos.js';
import { majority } from '../core/quorum.js';
import { type StreamProgress, previousNeeded as previousNeededOf } from '../core/replica.js';
import { AccessPolicy, loadOrCreateToken } from '../http/access.js';
import { ApiMetrics, type MetricsSnapshot } from '../http/metrics.js';
import { receiptOf } from '../core/receipt.js';
import { QuorumUnavailableError } from '../core/errors.js';
import { AuditLog } from './audit.js';
import { createHttpServer } from '../http/server.js';
import { createClusterKey, mdnsServiceTag, readClusterKey } from '../net/clusterkey.js';
import { loadOrCreateIdentity } from '../net/identity.js';
import { withGenesisProof } from '../core/config-proof.js';
import { configAuth } from './config-auth.js';
import { type NetNode, createNetNode, forgetPeer } from '../net/node.js';
import { ReplicaTransport, SyncTransport } from '../net/transport.js';
import type { StoragePort } from '../storage/port.js';
import { openSqliteStore } from '../storage/sqlite.js';
import { createContextCodec } from './context-token.js';
import { DotAllocator } from './dots.js';
import { createLogger, type Logger } from './log.js';
import { MembershipService, isJoinMessage } from './membership.js';
import type { AdmissionState } from './admission.js';
import { META_ACCEPTOR, META_MEMBERSHIP, Runtime } from './runtime.js';
import { REAL_ENV } from './driver-ports.js';
import { VERSION } from './version.js';

export interface DaemonOptions {
  readonly dataDir: string;
  /** Undefined: the addresses this device listened on last time (same ports), else the default. */
  readonly listen: readonly string[] | undefined;
  /** HOST:PORT for the HTTP API. */
  readonly http: string;
  readonly join: readonly string[];
  readonly clusterKeyFile: string | undefined;
  readonly mdns: boolean;
  readonly logLevel?: string;
  readonly requestTimeoutMs?: number;
  /** Admit key holders without `quorumd approve` (default DEFAULTS.autoAdmit). */
  readonly autoAdmit?: boolean;
  /** Voters at most; more devices join as learners (default DEFAULTS.maxVoters). */
  readonly maxVoters?: number;
  /** Propose the removal of a voter down this long (0 or undefined: never; DEFAULTS.autoRemoveAfterMs). */
  readonly autoRemoveAfterMs?: number;
  /** Mean time between anti-entropy rounds (DEFAULTS.antiEntropyIntervalMs). */
  readonly antiEntropyIntervalMs?: number;
  /** Anti-entropy byte-rate budget (DEFAULTS.antiEntropyBytesPerSec). */
  readonly antiEntropyBytesPerSec?: number;
  /** Minimum age of a tombstone before it may be purged (DEFAULTS.tombstoneGraceMs). */
  readonly tombstoneGraceMs?: number;
  /** Records per data-stream batch this device sends (DEFAULTS.transferBatchRecords). */
  readonly transferBatchRecords?: number;
}

/** Bad flags or data-dir state: the CLI prints the message and exits non-zero. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

const CLUSTER_KEY_FILE = 'cluster.key';
const DATABASE_FILE = 'quorumd.db';
const DAEMON_FILE = 'daemon.json';
/** Time allowed to each network shutdown step (we must exit within 5 s of SIGTERM). */
const NETWORK_STOP_MS = 1_000;
const META_ADDRESS_BOOK = 'addressBook';
/** First incarnation of a fresh store: random in [2^20, 2^40) so a wiped device never reuses an actor (kv679). */
const FRESH_INCARNATION_MIN = 2 ** 20;
const FRESH_INCARNATION_SPAN = 2 ** 40 - 2 ** 20;
/** Delay before the first anti-entropy round with a peer that just connected (its streams settle first). */
const SYNC_AFTER_CONNECT_MS = 200;
/** Dot-actor incarnation, and whether the last run closed the store cleanly (see nextDotActor). */
const META_INCARNATION = 'incarnation';
const META_CLEAN_SHUTDOWN = 'cleanShutdown';
/** This store's id (MemberInfo.store): random, taken when the store is created, never changed. */
const META_STORE_ID = 'storeId';
/** Heartbeats acknowledged (for the round-trip time): one in this many, i.e. one every 2 s per peer. */
const RTT_SAMPLE_EVERY = 4;

/** The concrete listen addresses (ports resolved) of the last start, reused when --listen is not given. */
const META_LISTEN = 'listen';
/** Peers whose last contact time is remembered (members and candidates; far above any cluster size). */
const PEERS_TRACKED_MAX = 1024;
/** How long a leaving device repeats its removal to the remaining voters before exiting anyway. */
const LEAVE_ANNOUNCE_MS = 5_000;
/** Time a removed device's connection stays open after the change, so the news of its removal reaches it. */
const REMOVED_HANGUP_DELAY_MS = 500;

export class Daemon {
  readonly peerId: string;
  readonly dataDir: string;
  readonly startedAtMs = Date.now();
  private readonly log: Logger;
  private readonly store: StoragePort;
  private readonly node: NetNode;
  private readonly transport: ReplicaTransport;
  private readonly syncTransport: SyncTransport;
  readonly runtime: Runtime;
  readonly membership: MembershipService;
  private readonly detector = new FailureDetector({ ...FAILURE_DETECTOR_DEFAULTS, heartbeatIntervalMs: DEFAULTS.heartbeatIntervalMs });
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatSeq = 0;
  /** Heartbeats sent recently, by sequence number: send time, for the round-trip time. */
  private readonly heartbeatsSent = new Map<number, number>();
  /** When each peer's current connection opened (monotonic ms). */
  private readonly connectedAt = new Map<string, number>();
  /** Since when each voter has been down or disconnected (monotonic ms), for autoRemoveAfterMs. */
  private readonly downSince = new Map<string, number>();
  private autoRemoveAfterMs = 0;
  /** Resolves when the daemon asks its owner to exit (after `leave`). */
  readonly exitRequested: Promise<void>;
  private requestExit: () => void = () => undefined;
  private readonly httpServer: ReturnType<typeof createHttpServer>;
  private readonly audit: AuditLog;
  private httpUrl = '';
  private readonly joinAddrs: readonly string[];
  private readonly lastSeenMs = new Map<string, number>();
  private readonly peerStores = new Map<string, string>();
  private readonly addressBook = new Map<string, string[]>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private joinLoop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly dialing = new Set<string>();
  private joinState: 'member' | 'joining' | 'waiting' | 'pending' | 'stale-store' = 'member';
  /** Wakes the join loop early (a peer connected). */
  private joinWake: (() => void) | undefined;
  private joinError = '';

  private constructor(parts: {
    peerId: string;
    dataDir: string;
    log: Logger;
    store: StoragePort;
    node: NetNode;
    transport: ReplicaTransport;
    syncTransport: SyncTransport;
    runtime: Runtime;
    membership: MembershipService;
    httpServer: ReturnType<typeof createHttpServer>;
    joinAddrs: readonly string[];
    audit: AuditLog;
  }) {
    this.audit = parts.audit;
    this.peerId = parts.peerId;
    this.dataDir = parts.dataDir;
    this.log = parts.log;
    this.store = parts.store;
    this.node = parts.node;
    this.syncTransport = parts.syncTransport;
    this.transport = parts.transport;
    this.runtime = parts.runtime;
    this.membership = parts.membership;
    this.httpServer = parts.httpServer;
    this.joinAddrs = parts.joinAddrs;
    this.exitRequested = new Promise<void>((resolve) => {
      this.requestExit = resolve;
    });
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const log = createLogger(options.logLevel);
    const dataDir = resolvePath(options.dataDir);
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const httpAddr = parseHostPort(options.http);
    for (const addr of [...(options.listen ?? []), ...options.join]) {
      try {
        multiaddr(addr);
      } catch {
        throw new StartupError(`invalid multiaddr ${JSON.stringify(addr)}`);
      }
    }

    const keyPath = joinPath(dataDir, CLUSTER_KEY_FILE);
    const dbPath = joinPath(dataDir, DATABASE_FILE);
    const freshDataDir = !existsSync(keyPath) && !existsSync(dbPath);
    if (options.clusterKeyFile !== undefined) {
      const given = resolvePath(options.clusterKeyFile);
      const givenKey = await readClusterKey(given); // validates before copying
      if (!existsSync(keyPath)) {
        await copyFile(given, keyPath);
        await chmod(keyPath, 0o600);
      } else if (!equalBytes(await readClusterKey(keyPath), givenKey)) {
        throw new StartupError(`${keyPath} holds a different cluster key than ${given}`);
      }
    } else if (options.join.length > 0 && !existsSync(keyPath)) {
      throw new StartupError('--join needs --cluster-key FILE (a copy of a member\'s cluster.key)');
    }
    const founding = freshDataDir && options.clusterKeyFile === undefined && options.join.length === 0;
    if (founding) await createClusterKey(keyPath);
    const clusterKey = await readClusterKey(keyPath);

    const identity = await loadOrCreateIdentity(dataDir);
    const store = await openSqliteStore(dbPath);
    try {
      let config = loadMembership(store);
      const { storeId, legacySeat } = await loadOrCreateStoreId(store, config);

      const acceptor = loadAcceptor(store);
      const lastListen = store.getMeta(META_LISTEN);
      const listen = options.listen ?? (lastListen === undefined ? DEFAULTS.listen : (JSON.parse(lastListen) as string[]));
      const late: { daemon?: Daemon; runtime?: Runtime } = {}; // handlers run only after construction
      const node = await createNetNode({
        privateKey: identity.privateKey,
        clusterKey,
        log: (obj, msg) => log.warn(obj, msg),
        listen: [...listen],
        dialTimeoutMs: DEFAULTS.dialTimeoutMs,
        // Revoked devices are refused even though they hold the cluster key.
        denyPeer: (peer) => isRemoved(late.runtime?.config ?? config, peer),
        mdns: options.mdns ? { serviceTag: mdnsServiceTag(clusterKey), queryIntervalMs: DEFAULTS.mdnsQueryIntervalMs } : undefined,
      });
      // Signs this device's Paxos accepts; verifies the proofs of configurations it adopts (docs/security.md).
      const auth = configAuth(identity.privateKey);
      if (founding && config.epoch === 0) {
        const founded = foundingConfig(randomUUID(), { peerId: identity.peerId, addrs: dialableAddrs(node), store: storeId });
        config = withGenesisProof(founded, identity.peerId, auth);
        await store.setMeta(META_MEMBERSHIP, JSON.stringify(config));
        log.info({ clusterId: config.clusterId }, 'founded a new cluster');
      }
      const opIdBase = randomInt(0, 2 ** 47);
      const actor = await nextDotActor(store, identity.peerId);
      const dots = await DotAllocator.open(store, actor, DEFAULTS.dotReserveBlock);
      const runtime = new Runtime({
        self: identity.peerId,
        store,
        dots,
        config,
        acceptor,
        requestTimeoutMs: options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
        transferIdleMs: DEFAULTS.transferIdleMs,
        transferBatchRecords: options.transferBatchRecords ?? DEFAULTS.transferBatchRecords,
        transferBatchBytes: DEFAULTS.transferBatchBytes,
        opsInFlightMax: DEFAULTS.opsInFlightMax,
        opIdBase,
        storeId,
        legacySeat,
        antiEntropy: {
          intervalMs: options.antiEntropyIntervalMs ?? DEFAULTS.antiEntropyIntervalMs,
          bytesPerSec: options.antiEntropyBytesPerSec ?? DEFAULTS.antiEntropyBytesPerSec,
          requestTimeoutMs: DEFAULTS.antiEntropyRequestTimeoutMs,
          tombstoneGraceMs: options.tombstoneGraceMs ?? DEFAULTS.tombstoneGraceMs,
        },
        hints: { hintsMax: DEFAULTS.hintsMax, hintTtlMs: DEFAULTS.hintTtlMs },
        log,
        auth,
        wallClockMs: REAL_ENV.clocks.wallMs,
        monotonicMs: REAL_ENV.clocks.monotonicMs,
        timers: REAL_ENV.timers,
        random: REAL_ENV.random,
      });
      late.runtime = runtime;
      runtime.resumeJoinTransfer(); // an admission whose data transfer a restart interrupted
      const transport = new ReplicaTransport(node, {
        onMessage: (from, msg) => late.daemon?.onMessage(from, msg),
        onPeerConnect: (peer) => late.daemon?.onPeerConnect(peer),
        onPeerDisconnect: (peer) => late.daemon?.onPeerDisconnect(peer),
        trusted: (peer) => late.daemon?.trustsFrames(peer) ?? true,
        log: (obj, msg) => log.warn(obj, msg),
      });
      runtime.attachTransport(transport);
      const syncTransport = new SyncTransport(node, {
        onMessage: (from, msg) => runtime.receiveSync(from, msg),
        trusted: (peer) => late.daemon?.trustsFrames(peer) ?? true,
        log: (obj, msg) => log.warn({ ...obj, protocol: 'sync' }, msg),
      });
      const membership = new MembershipService({
        runtime,
        storeId,
        send: (to, msg) => transport.send(to, msg),
        log,
        autoAdmit: options.autoAdmit ?? DEFAULTS.autoAdmit,
        maxVoters: options.maxVoters ?? DEFAULTS.maxVoters,
        jointTakeoverMs: DEFAULTS.jointTakeoverMs,
        changeAttemptsMax: DEFAULTS.changeAttemptsMax,
        addrsOf: (peer) => late.daemon?.knownAddrs(peer) ?? [],
        isAlive: (peer) => late.daemon?.isAlive(peer) ?? false,
        storeOf: (peer) => late.daemon?.storeOf(peer),
        opIdBase: opIdBase + 2 ** 48,
        clocks: { monotonicNow: REAL_ENV.clocks.monotonicMs, wallNow: REAL_ENV.clocks.wallMs },
        timers: REAL_ENV.timers,
        random: REAL_ENV.random,
      });
      const apiToken = loadOrCreateToken(dataDir);
      const audit = new AuditLog(dataDir, (error) => log.warn({ err: String(error) }, 'cannot write the audit log'));
      const httpServer = createHttpServer({
        metrics: new ApiMetrics(() => late.daemon?.metricsSnapshot() ?? EMPTY_SNAPSHOT),
        readiness: () => late.daemon?.readiness() ?? ['starting'],
        access: new AccessPolicy({
          bindHost: httpAddr.host,
          token: apiToken,
          port: () => (httpServer.address() as AddressInfo | null)?.port ?? httpAddr.port,
        }),
        onRefused: (req, status, code) => {
          audit.appendRepeated('unauthorized', code, { status, code, remote: req.socket.remoteAddress ?? null, host: req.headers.host ?? null, path: (req.url ?? '').slice(0, 200) });
        },
        backend: {
          write: (key, value, context, level, wait) => audited(audit, 'write', runtime.write(key, value, context, level, wait)),
          receipt: async (key) => receiptOf(runtime.config, await runtime.probe(key)),
          read: (key, level) => audited(audit, 'read', runtime.read(key, level)),
          status: () => late.daemon?.status() ?? {},
          records: { get: (key) => store.get(key), scan: (after, limit) => store.scan(after, limit) },
          changes: runtime.changes,
        },
        membership: {
          approve: (peer) => operator(audit, 'approve', peer, async () => summary(await membership.approve(peer))),
          admit: (forMs) => operator(audit, 'admit', identity.peerId, async () => admissionView(membership.openAdmission(forMs)) ?? {}, { forMs }),
          remove: (peer) => operator(audit, 'remove', peer, async () => summary(await membership.remove(peer))),
          leave: () =>
            operator(audit, 'leave', identity.peerId, async () => {
              const daemon = late.daemon;
              if (daemon === undefined) throw new StartupError('not started');
              return summary(await daemon.leave());
            }),
        },
        audit: (limit, kind) => audit.read(limit, kind),
        contexts: createContextCodec(clusterKey),
        valueBytesMax: DEFAULTS.valueBytesMax,
        keyBytesMax: DEFAULTS.keyBytesMax,
      });
      const daemon = new Daemon({
        peerId: identity.peerId,
        dataDir,
        log,
        store,
        node,
        transport,
        syncTransport,
        runtime,
        membership,
        httpServer,
        joinAddrs: options.join,
        audit,
      });
      late.daemon = daemon;
      daemon.autoRemoveAfterMs = options.autoRemoveAfterMs ?? DEFAULTS.autoRemoveAfterMs;
      await store.setMeta(META_LISTEN, JSON.stringify(boundListenSpecs(listen, node)));
      await daemon.boot(httpAddr, options);
      return daemon;
    } catch (error) {
      await store.close().catch(() => undefined);
      throw error;
    }
  }

  private async boot(httpAddr: { host: string; port: number }, options: DaemonOptions): Promise<void> {
    const book = this.store.getMeta(META_ADDRESS_BOOK);
    if (book !== undefined) {
      for (const [peer, addrs] of Object.entries(JSON.parse(book) as Record<string, string[]>)) this.addressBook.set(peer, addrs);
    }
    this.node.addEventListener('peer:identify', (event) => {
      const peer = event.detail.peerId.toString();
      const addrs = event.detail.listenAddrs.map((a) => a.encapsulate(`/p2p/${peer}`).toString());
      if (addrs.length > 0) this.rememberAddrs(peer, addrs);
    });
    await this.transport.start();
    await this.syncTransport.start();
    this.runtime.attachSync(this.syncTransport, (peer) => this.isAlive(peer) && this.syncTransport.isConnected(peer));
    this.runtime.onConfigChange((config) => this.onConfigChange(config));
    this.node.services.mdns?.addEventListener('peer', (event) => {
      // Every mDNS answer, not only a peer's first (libp2p's peer:discovery fires once per peer): a device
      // that comes back after a link cut is redialed within one query interval.
      const peer = event.detail.id.toString();
      const addrs = event.detail.multiaddrs.map((a) => (a.toString().includes('/p2p/') ? a.toString() : `${a.toString()}/p2p/${peer}`));
      this.onDiscovered(peer, addrs);
    });
    // Answers that arrived while we were still starting went into the peer store only: dial those too.
    for (const known of await this.node.peerStore.all()) {
      const peer = known.id.toString();
      const addrs = known.addresses.map((a) => `${a.multiaddr.toString()}/p2p/${peer}`);
      if (addrs.length > 0) this.onDiscovered(peer, addrs);
    }
    await new Promise<void>((resolve, reject) => {
      this.httpServer.once('error', reject);
      this.httpServer.listen(httpAddr.port, httpAddr.host, () => {
        this.httpServer.off('error', reject);
        resolve();
      });
    });
    const address = this.httpServer.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.httpUrl = `http://${host}:${address.port}`;
    if (!options.mdns) this.log.debug({}, 'mDNS disabled (--no-mdns)');

    const config = this.runtime.config;
    if (!this.runtime.core.seated() && !isRemoved(config, this.peerId)) {
      this.joinState = this.joinAddrs.length > 0 ? 'joining' : 'waiting';
      this.joinLoop = this.runJoinLoop(options.mdns).finally(() => (this.joinLoop = undefined));
    }
    this.heartbeatTimer = setInterval(() => this.heartbeat(), DEFAULTS.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    this.reconnectTimer = setInterval(() => this.reconnect(), DEFAULTS.reconnectIntervalMs);
    this.reconnectTimer.unref();
    this.reconnect();
    await this.writeDaemonFile();
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

  listenAddrs(): string[] {
    return dialableAddrs(this.node);
  }

  get httpEndpoint(): string {
    return this.httpUrl;
  }

  /**
   * Asks to join until we are a member: through each --join address in turn, and any device we are
   * connected to (found over mDNS). A device that holds the key but no membership never founds a cluster.
   */
  private async runJoinLoop(mdns: boolean): Promise<void> {
    if (this.joinAddrs.length === 0 && this.runtime.config.epoch === 0) {
      this.log.warn({ mdns }, mdns ? 'holding a cluster key but no membership: looking for members over mDNS' : 'holding a cluster key but no membership: waiting to join (start with --join MULTIADDR, or enable mDNS)');
    }
    let attempt = 0;
    // Until this store holds a seat: a device whose storage is new asks too, and the member it asks gives the
    // old seat to this store (MembershipService: replacement).
    while (this.stopping === undefined && !this.runtime.core.seated() && !isRemoved(this.runtime.config, this.peerId)) {
      attempt += 1;
      if (this.store.stats().totalKeys > 0) {
        // An unseated store never takes records, so this one was seated once and its seat went to another store
        // since (an old SD card put back after the device was re-seated). Its data may hold values whose deletes
        // were purged meanwhile: it must not come back. Only an empty store asks to join.
        if (this.joinState !== 'stale-store') {
          this.log.error({ dataDir: this.dataDir }, 'this store belongs to an earlier seat of this device (its seat went to another store): remove quorumd.db* to join again with an empty store');
        }
        this.joinState = 'stale-store';
        this.joinError = 'this store belongs to an earlier seat of this device: remove quorumd.db* in the data dir to join again';
        await this.joinPause(DEFAULTS.joinRetryMs);
        continue;
      }
      // Before this device holds any configuration it cannot verify what it is told: it trusts the member it asks.
      // With --join that is the pinned address only, never any key holder that happened to connect to it (one
      // answering with a cluster of its own making would capture the device and every write its clients make).
      const pinned = this.joinAddrs.length > 0 && this.runtime.config.epoch === 0;
      const candidates = pinned ? [] : [...this.transport.connectedPeers()];
      if (this.joinAddrs.length > 0) {
        const addr = this.joinAddrs[attempt % this.joinAddrs.length] as string;
        try {
          const member = await this.transport.dial(addr);
          candidates.unshift(member);
        } catch (error) {
          this.joinError = `dialing ${addr}: ${error instanceof Error ? error.message : String(error)}`;
        }
      }
      for (const member of new Set(candidates)) {
        if (this.stopping !== undefined || this.runtime.core.seated()) break;
        try {
          this.log.info({ member }, 'asking to join the cluster');
          await this.membership.requestJoin(member, this.listenAddrs(), DEFAULTS.joinTimeoutMs);
          // A join answered OK with a configuration that does not seat this store (e.g. a seat admitted on a
          // store this device has lost since) is no join: keep asking until this store holds its seat.
          if (!this.runtime.core.seated()) {
            this.joinError = 'the cluster answered the join, but its configuration does not seat this store yet';
            continue;
          }
          this.log.info({ epoch: this.runtime.config.epoch, role: isVoter(this.runtime.config, this.peerId) ? 'voter' : 'learner' }, 'joined the cluster');
          this.joinError = '';
          return;
        } catch (error) {
          this.joinError = error instanceof Error ? error.message : String(error);
          if (this.joinError.startsWith('waiting for approval')) this.joinState = 'pending';
          this.log.debug({ member, err: this.joinError }, 'join attempt failed');
        }
      }
      await this.joinPause(DEFAULTS.joinRetryMs);
    }
  }

  private onPeerConnect(peer: string): void {
    this.noteSeen(peer);
    // A new connection is a fresh start for the failure detector: a peer that was down (a restarted process)
    // counts as alive until its first heartbeat is due, instead of being hung up on at once as still down.
    this.detector.forget(peer);
    this.connectedAt.set(peer, performance.now());
    // A first heartbeat at once, so the peer's detector knows us within a round trip, not half an interval.
    this.heartbeatSeq += 1;
    this.heartbeatsSent.set(this.heartbeatSeq, performance.now());
    this.transport.send(peer, { type: 'heartbeat', opId: this.heartbeatSeq, epoch: this.runtime.config.epoch, store: this.runtime.storeId });
    // A member that (re)connects gets the writes it missed (hinted handoff) and is compared at once, not at the
    // next round. One side starts the round (the lower peer ID), so the pair does not compare twice.
    setTimeout(() => {
      this.runtime.handOver(peer);
      if (this.peerId < peer) this.runtime.syncWith(peer);
    }, SYNC_AFTER_CONNECT_MS).unref();
    // A device waiting to join asks a new connection at once instead of at its next retry.
    const wake = this.joinWake;
    this.joinWake = undefined;
    wake?.();
  }

  /** Records contact with a peer (bounded: the least recently seen are forgotten first). */
  /** The store each peer last said it runs on (its heartbeats), so a learner is promoted only on its seat's store. */
  private rememberStore(peer: string, store: string): void {
    this.peerStores.delete(peer);
    this.peerStores.set(peer, store);
    while (this.peerStores.size > PEERS_TRACKED_MAX) this.peerStores.delete(this.peerStores.keys().next().value as string);
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
    return this.peerStores.get(peer);
  }

  private noteSeen(peer: string): void {
    this.lastSeenMs.delete(peer);
    this.lastSeenMs.set(peer, Date.now());
    while (this.lastSeenMs.size > PEERS_TRACKED_MAX) this.lastSeenMs.delete(this.lastSeenMs.keys().next().value as string);
  }

  private onPeerDisconnect(peer: string): void {
    this.noteSeen(peer);
    this.connectedAt.delete(peer);
    this.membership.peerDisconnected(peer);
    // A non-member leaves nothing behind (its addresses here and in the peer store): a key holder minting fresh
    // identities must not grow memory. Members keep theirs for redialing.
    const config = this.runtime.config;
    if (!isMember(config, peer) && !config.previousVoters.includes(peer)) {
      this.addressBook.delete(peer);
      this.peerStores.delete(peer);
      void forgetPeer(this.node, peer);
    }
  }

  /** Sleeps `ms`, or less if a new peer connects meanwhile. */
  private joinPause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.joinWake = undefined;
        resolve();
      }, ms);
      timer.unref();
      this.joinWake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** An mDNS answer: dial the device unless connected (members and candidates alike; the cluster-key handshake decides). */
  private onDiscovered(peer: string, addrs: string[]): void {
    if (this.stopping !== undefined || peer === this.peerId || this.transport.isConnected(peer)) return;
    if (isRemoved(this.runtime.config, peer) || isRemoved(this.runtime.config, this.peerId) || this.dialing.has(peer)) return;
    this.dialing.add(peer);
    void this.dialAny(addrs)
      .catch(() => undefined)
      .finally(() => this.dialing.delete(peer));
  }

  /** Dials every known member we are not connected to (their last known addresses). */
  private reconnect(): void {
    if (this.stopping !== undefined || isRemoved(this.runtime.config, this.peerId)) return;
    const config = this.runtime.config;
    for (const member of [...config.voters, ...config.learners]) {
      if (member.peerId === this.peerId || this.transport.isConnected(member.peerId)) continue;
      if (this.dialing.has(member.peerId)) continue;
      const addrs = [...(this.addressBook.get(member.peerId) ?? []), ...member.addrs];
      if (addrs.length === 0) continue;
      this.dialing.add(member.peerId);
      void this.dialAny(addrs)
        .catch(() => undefined)
        .finally(() => this.dialing.delete(member.peerId));
    }
  }

  private async dialAny(addrs: readonly string[]): Promise<void> {
    for (const addr of new Set(addrs)) {
      try {
        await this.transport.dial(addr);
        return;
      } catch {
        // try the next address
      }
    }
  }

  private rememberAddrs(peer: string, addrs: string[]): void {
    const known = this.addressBook.get(peer);
    if (known !== undefined && known.join(' ') === addrs.join(' ')) return;
    this.addressBook.set(peer, addrs);
    if (!isMember(this.runtime.config, peer)) return;
    void this.store
      .setMeta(META_ADDRESS_BOOK, JSON.stringify(Object.fromEntries(this.addressBook)))
      .catch((error: unknown) => this.log.warn({ err: String(error) }, 'could not persist the address book'));
  }

  isAlive(peer: string): boolean {
    return this.healthOf(peer, performance.now()) === 'alive';
  }

  /**
   * A peer's health: down when not connected; a fresh connection (handshake done, no heartbeat yet) counts
   * as alive for up to the detector's down limit; otherwise what the phi-accrual detector says.
   */
  private healthOf(peer: string, now: number): 'alive' | 'suspect' | 'down' {
    if (peer === this.peerId) return 'alive';
    if (!this.transport.isConnected(peer)) return 'down';
    const report = this.detector.report(peer, now);
    if (report.lastSeenMs === undefined) {
      const since = this.connectedAt.get(peer);
      return since !== undefined && now - since < FAILURE_DETECTOR_DEFAULTS.downAfterMs ? 'alive' : 'down';
    }
    return report.state;
  }

  knownAddrs(peer: string): readonly string[] {
    return this.addressBook.get(peer) ?? [];
  }

  private onMessage(from: string, msg: Message): void {
    this.noteSeen(from);
    if (msg.type === 'heartbeat') {
      this.detector.heartbeat(from, performance.now());
      if (msg.store !== undefined) this.rememberStore(from, msg.store);
      // Liveness needs only the heartbeats; acks measure the round trip, which one in RTT_SAMPLE_EVERY does
      // (each message costs a Noise frame and a yamux window update at idle: this saves a third of them).
      if (msg.opId % RTT_SAMPLE_EVERY === 0) this.transport.send(from, { type: 'heartbeatAck', opId: msg.opId, epoch: this.runtime.config.epoch });
      this.runtime.notePeerEpoch(from, msg.epoch);
    } else if (msg.type === 'heartbeatAck') {
      const sentAt = this.heartbeatsSent.get(msg.opId);
      if (sentAt !== undefined) this.detector.rtt(from, performance.now() - sentAt);
      this.runtime.notePeerEpoch(from, msg.epoch);
    } else if (isJoinMessage(msg)) {
      // A join request names the store the device runs now, like its heartbeats: the newest word wins (a
      // re-seating queued for an older request then knows it is stale, see MembershipService.replaceSeat).
      if (msg.type === 'joinRequest' && msg.store !== undefined && msg.store.length > 0) this.rememberStore(from, msg.store);
      this.membership.handle(from, msg);
    } else {
      this.runtime.receive(from, msg);
    }
  }

  /** Sends a heartbeat to every connected peer; hangs up on members the detector holds down. */
  private heartbeat(): void {
    if (this.stopping !== undefined) return;
    const now = performance.now();
    this.heartbeatSeq += 1;
    const seq = this.heartbeatSeq;
    this.heartbeatsSent.set(seq, now);
    for (const [s, at] of this.heartbeatsSent) {
      if (now - at > FAILURE_DETECTOR_DEFAULTS.downAfterMs * 2) this.heartbeatsSent.delete(s);
      else break;
    }
    const epoch = this.runtime.config.epoch;
    this.maybeAutoRemove(now);
    for (const peer of this.transport.connectedPeers()) {
      this.transport.send(peer, { type: 'heartbeat', opId: seq, epoch, store: this.runtime.storeId });
      // A connection whose peer went silent (cut link) would queue writes forever: drop it, so sends fail
      // fast and the reconnect loop (or the next mDNS answer) builds a fresh one once the link is back.
      if (this.healthOf(peer, now) === 'down') {
        this.log.info({ peer }, 'peer is down: closing its connection');
        this.detector.forget(peer);
        void this.transport.hangUp(peer).catch(() => undefined);
      }
    }
  }

  /** autoRemoveAfterMs: the first alive voter (by ID) proposes removing a voter that has been down that long. */
  private maybeAutoRemove(now: number): void {
    const config = this.runtime.config;
    for (const m of config.voters) {
      const peer = m.peerId;
      if (peer === this.peerId) continue;
      if (this.healthOf(peer, now) === 'alive') this.downSince.delete(peer);
      else if (!this.downSince.has(peer)) this.downSince.set(peer, now);
    }
    for (const peer of this.downSince.keys()) if (!isVoter(config, peer)) this.downSince.delete(peer);
    if (this.autoRemoveAfterMs <= 0 || !isVoter(config, this.peerId)) return;
    const aliveVoters = config.voters.map((m) => m.peerId).filter((p) => p === this.peerId || !this.downSince.has(p));
    if (aliveVoters.sort()[0] !== this.peerId) return;
    for (const [peer, since] of this.downSince) {
      if (now - since < this.autoRemoveAfterMs) continue;
      this.downSince.set(peer, now); // one attempt per period
      this.log.warn({ peer, downMs: Math.round(now - since) }, 'voter down longer than autoRemoveAfterMs: proposing its removal');
      this.membership.remove(peer).catch((error: unknown) => this.log.warn({ peer, err: String(error) }, 'automatic removal failed'));
    }
  }

  private onConfigChange(config: MembershipConfig): void {
    this.audit.append('membership', {
      epoch: config.epoch,
      voters: config.voters.map((m) => m.peerId),
      learners: config.learners.map((m) => m.peerId),
      ...(isJoint(config) ? { previousVoters: config.previousVoters } : {}),
      removed: config.removed.slice(-16),
    });
    if (this.runtime.core.seated(config)) this.joinState = 'member';
    else if (isMember(config, this.peerId) && this.joinLoop === undefined && this.stopping === undefined) {
      // Our seat names another store now: this store lost it (see runJoinLoop, which tells why and waits).
      this.joinLoop = this.runJoinLoop(false).finally(() => (this.joinLoop = undefined));
    }
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
    const reasons: string[] = [];
    const config = this.runtime.config;
    if (this.stopping !== undefined) reasons.push('shutting down');
    if (!this.runtime.core.seated(config)) reasons.push(`not a member of a cluster (${this.role(config)})`);
    if (this.runtime.storageFailure !== undefined) reasons.push(`storage failed: ${String(this.runtime.storageFailure)}`);
    const q = this.quorumView(config, performance.now());
    if (isMember(config, this.peerId) && !q.writable) {
      reasons.push(`quorum not reachable: ${q.reachable} of ${q.voters} voters alive, ${q.needed} needed${q.joint === undefined ? '' : ` (and ${q.joint.needed} of the ${q.joint.previousVoters} previous voters, ${q.joint.reachable} alive)`}`);
    }
    return reasons;
  }

  /** The figures /metrics exports, read at scrape time. */
  metricsSnapshot(): MetricsSnapshot {
    const config = this.runtime.config;
    const now = performance.now();
    const stats = this.store.stats();
    const ae = this.runtime.ae;
    const tombstones = ae.tombstoneView(config);
    const hints = this.runtime.hints.stats();
    const members = [
      ...config.voters.map((m) => ({ role: 'voter' as const, state: m.peerId === this.peerId ? 'alive' : this.healthOf(m.peerId, now) })),
      ...config.learners.map((m) => ({ role: 'learner' as const, state: m.peerId === this.peerId ? 'alive' : this.healthOf(m.peerId, now) })),
    ];
    return {
      epoch: config.epoch,
      writable: this.quorumView(config, now).writable,
      catchingUp: this.runtime.joinTransferPending,
      members,
      keysLive: stats.liveKeys,
      keysStored: stats.totalKeys,
      storeBytes: databaseBytes(this.dataDir),
      opsInFlight: this.runtime.opsInFlight,
      antiEntropy: { ...ae.stats, converged: isMember(config, this.peerId) && ae.converged(config, (peer) => this.isAlive(peer)) },
      tombstonesWaiting: tombstones.waiting,
      tombstonesPurged: tombstones.purged,
      hints,
    };
  }

  /** Voters reachable from here against what a quorum needs (also in a joint phase's previous voters). */
  private quorumView(config: MembershipConfig, now: number) {
    const alive = (peer: string): boolean => peer === this.peerId || this.healthOf(peer, now) === 'alive';
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

  status(): object {
    const config = this.runtime.config;
    const stats = this.store.stats();
    const now = performance.now();
    const health = (peer: string): { state: string; lastSeen: string | null; rttMs: number | null; phi: number } => {
      if (peer === this.peerId) return { state: 'alive', lastSeen: new Date().toISOString(), rttMs: 0, phi: 0 };
      const report = this.detector.report(peer, now);
      const state = this.healthOf(peer, now);
      const lastSeen = report.lastSeenMs === undefined ? this.lastSeenMs.get(peer) : Date.now() - (now - report.lastSeenMs);
      return {
        state,
        lastSeen: lastSeen === undefined ? null : new Date(lastSeen).toISOString(),
        rttMs: report.rttMs === undefined ? null : Math.round(report.rttMs * 100) / 100,
        phi: Math.round(report.phi * 100) / 100,
      };
    };
    const syncViews = new Map(this.runtime.ae.peerViews(config).map((v) => [v.peerId, v]));
    const syncOf = (peer: string): object | undefined => {
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
    const member = (m: MemberInfo): object => ({
      peerId: m.peerId,
      // The store holding the seat (a device whose storage was replaced gets its seat back under a new one).
      store: m.store ?? null,
      self: m.peerId === this.peerId,
      connected: m.peerId === this.peerId || this.transport.isConnected(m.peerId),
      ...health(m.peerId),
      sync: syncOf(m.peerId),
      addrs: this.addressBook.get(m.peerId) ?? m.addrs,
    });
    const { joint, ...quorum } = this.quorumView(config, now);
    return {
      version: VERSION,
      peerId: this.peerId,
      storeId: this.runtime.storeId,
      clusterId: config.clusterId || null,
      epoch: config.epoch,
      role: this.role(config),
      joinError: this.joinError || undefined,
      voters: config.voters.map(member),
      learners: config.learners.map(member),
      removed: config.removed,
      pending: this.membership.pending,
      admission: admissionView(this.membership.admissionState()),
      quorum: { ...quorum, ...(joint === undefined ? {} : { joint }) },
      listen: this.listenAddrs(),
      http: this.httpUrl,
      keys: stats.liveKeys,
      storedKeys: stats.totalKeys,
      tombstones: stats.totalKeys - stats.liveKeys,
      storage: { bytes: databaseBytes(this.dataDir), commits: stats.commits, recordsCommitted: stats.recordsCommitted },
      network: this.transport.stats,
      opsInFlight: this.runtime.opsInFlight,
      transfers: this.runtime.core.streams().map((stream) => streamStatus(stream, performance.now())),
      // The anti-entropy digest root: two replicas with the same root hold the same records.
      digest: { root: hashHex(this.runtime.digest.root()), keys: this.runtime.digest.size },
      antiEntropy: this.antiEntropyStatus(config),
      catchUp: this.catchUpStatus(config),
      membershipChanges: this.membership.counters,
      uptimeMs: Date.now() - this.startedAtMs,
      process: processMemory(),
    };
  }

  /** Progress of a new (or re-seated) device receiving its admission's data (null when not waiting for it). */
  private catchUpStatus(config: MembershipConfig): object | null {
    return this.runtime.joinTransferPending ? this.joinTransferStatus(config) : null;
  }

  /** A new device receiving the cluster's data from the data sync of its admission. */
  private joinTransferStatus(config: MembershipConfig): object {
    const keysHeld = this.runtime.digest.size;
    const receiving = this.runtime.core
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

  private antiEntropyStatus(config: MembershipConfig): object {
    const ae = this.runtime.ae;
    const stats = ae.stats;
    const tombstones = ae.tombstoneView(config);
    const wire = this.syncTransport.stats;
    return {
      // Digests were equal with every live member at the last round with each.
      converged: isMember(config, this.peerId) && ae.converged(config, (peer) => this.isAlive(peer)),
      running: stats.running,
      rounds: stats.rounds,
      matchedRounds: stats.matchedRounds,
      failedRounds: stats.failedRounds,
      keysRepaired: stats.keysRepaired,
      bytes: stats.bytes,
      wire: { bytesSent: wire.bytesSent, bytesReceived: wire.bytesReceived, messagesSent: wire.messagesSent, messagesReceived: wire.messagesReceived },
      tombstones: { waiting: tombstones.waiting, blockedBy: tombstones.blockedBy ?? null, purged: tombstones.purged },
      hints: { ...this.runtime.hints.stats(), pushes: ae.handoverStats.pushes, bytes: ae.handoverStats.bytes },
    };
  }

  private role(config: MembershipConfig): string {
    if (isRemoved(config, this.peerId)) return 'removed';
    if (this.joinState === 'stale-store') return 'stale-store';
    // A new voter of a joint configuration counts in quorums only together with the previous voters until
    // the change's data sync is done and finalized.
    // A member whose store is not its seat's (wiped, re-flashed) waits for the seat to be given to its store.
    if (isMember(config, this.peerId) && !this.runtime.core.seated(config)) return 'replacing';
    if (isVoter(config, this.peerId)) {
      const fresh = !config.previousVoters.includes(this.peerId) || (config.replaced ?? []).includes(this.peerId);
      return isJoint(config) && fresh ? 'catching-up' : 'voter';
    }
    if (isMember(config, this.peerId)) return 'learner';
    return this.joinState;
  }

  private async writeDaemonFile(): Promise<void> {
    const path = joinPath(this.dataDir, DAEMON_FILE);
    const tmp = `${path}.${process.pid}.tmp`;
    const body = { pid: process.pid, peerId: this.peerId, http: this.httpUrl, listen: this.listenAddrs() };
    await writeFile(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 }); // like every file of the data dir
    await rename(tmp, path);
  }

  /** Stops accepting, finishes in-flight requests (bounded), closes the network and the database. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.log.info({}, 'shutting down');
    this.audit.append('stopped', { peerId: this.peerId });
    if (this.reconnectTimer !== undefined) clearInterval(this.reconnectTimer);
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.membership.stop();
    const closed = new Promise<void>((resolve) => this.httpServer.close(() => resolve()));
    this.httpServer.closeIdleConnections();
    await this.runtime.drain(DEFAULTS.shutdownGraceMs);
    this.runtime.stop(); // whatever is still pending is answered 503 shutting_down (indeterminate)
    this.httpServer.closeAllConnections();
    await closed;
    // Close the store before the network: a slow libp2p stop must not cost us the clean-shutdown mark.
    await this.store.setMeta(META_CLEAN_SHUTDOWN, 'true');
    await this.store.close();
    await withTimeout(Promise.all([this.transport.stop(), this.syncTransport.stop()]), NETWORK_STOP_MS);
    await withTimeout(Promise.resolve(this.node.stop()), NETWORK_STOP_MS);
    await rm(joinPath(this.dataDir, DAEMON_FILE), { force: true });
    this.log.info({}, 'stopped');
  }
}

/**
 * The actor name for this run's dots. After an unclean stop, writes that were staged but not yet durable may
 * have reached other replicas and then been lost here; a version vector entry (peer, n) would claim we had
 * seen them, so later writes would silently supersede them. A fresh incarnation `peer~k` avoids that claim.
 * A clean stop flushed everything, so the same actor continues. A fresh store may belong to a device whose
 * data was wiped (same peer ID, dots already issued): its first incarnation is random, never `peer` or `peer~1`.
 */
export async function nextDotActor(store: StoragePort, peerId: string, random: () => number = Math.random): Promise<string> {
  const stored = store.getMeta(META_INCARNATION);
  let incarnation = stored === undefined ? FRESH_INCARNATION_MIN + Math.floor(random() * FRESH_INCARNATION_SPAN) : Number(stored);
  if (!Number.isSafeInteger(incarnation) || incarnation < 0) throw new StartupError(`corrupt incarnation ${JSON.stringify(stored)}`);
  if (stored !== undefined && store.getMeta(META_CLEAN_SHUTDOWN) !== 'true') incarnation += 1;
  await Promise.all([store.setMeta(META_INCARNATION, String(incarnation)), store.setMeta(META_CLEAN_SHUTDOWN, 'false')]);
  return incarnation === 0 ? peerId : `${peerId}~${incarnation}`;
}

/**
 * This store's id (see MemberInfo.store), created with the store. A store from before store ids that holds a
 * membership keeps its seats (legacySeat): they were given to this very store.
 */
async function loadOrCreateStoreId(store: StoragePort, config: MembershipConfig): Promise<{ storeId: string; legacySeat: boolean }> {
  const stored = store.getMeta(META_STORE_ID);
  if (stored !== undefined) {
    if (!/^[0-9a-f]{32}$/.test(stored)) throw new StartupError(`corrupt store id ${JSON.stringify(stored)}`);
    return { storeId: stored, legacySeat: false };
  }
  const storeId = randomBytes(16).toString('hex');
  await store.setMeta(META_STORE_ID, storeId);
  return { storeId, legacySeat: config.epoch > 0 };
}

function loadMembership(store: StoragePort): MembershipConfig {
  const text = store.getMeta(META_MEMBERSHIP);
  if (text === undefined) return NO_CONFIG;
  // Configurations written before joint phases existed have no previousVoters.
  const config = { previousVoters: [], ...(JSON.parse(text) as Partial<MembershipConfig>) } as MembershipConfig;
  const problem = configProblem(config);
  if (problem !== undefined) throw new StartupError(`stored membership is invalid: ${problem}`);
  return config;
}

function loadAcceptor(store: StoragePort): AcceptorState | undefined {
  const text = store.getMeta(META_ACCEPTOR);
  if (text === undefined) return undefined;
  const state = JSON.parse(text) as AcceptorState;
  if (!Number.isSafeInteger(state.slot) || typeof state.promised?.round !== 'number') {
    throw new StartupError('stored membership acceptor state is invalid');
  }
  return state;
}

/** Memory of this process (bytes): resident set, V8 heap used and reserved, memory outside the heap. */
function processMemory(): object {
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external };
}

function hashHex(hash: Hash64): string {
  return `${hash.hi.toString(16).padStart(8, '0')}${hash.lo.toString(16).padStart(8, '0')}`;
}

/** Whether new devices join here without approval, and why (/status, POST /cluster/admit). */
function admissionView(state: AdmissionState | null): object | null {
  if (state === null) return null;
  return { open: state.open, reason: state.reason, until: state.untilMs === null ? null : new Date(state.untilMs).toISOString() };
}

/** What a membership operation returns over HTTP. */
function summary(config: MembershipConfig): object {
  return {
    epoch: config.epoch,
    voters: config.voters.map((m) => m.peerId),
    learners: config.learners.map((m) => m.peerId),
    removed: config.removed,
  };
}

/** Listen addresses others can dial (wildcards expanded by libp2p), each ending in /p2p/<peerId>. */
function dialableAddrs(node: NetNode): string[] {
  return node.getMultiaddrs().map((a) => a.toString());
}

/** The listen specs with port 0 replaced by the port actually bound (matched by address family and IP). */
function boundListenSpecs(specs: readonly string[], node: NetNode): string[] {
  const parts = (addr: string): { ip: string; port: string } => {
    const components = multiaddr(addr).getComponents();
    return { ip: components[0]?.value ?? '', port: components.find((c) => c.name === 'tcp')?.value ?? '' };
  };
  const bound = node.getMultiaddrs().map((a) => ({ family: a.getComponents()[0]?.name, ...parts(a.toString()) }));
  return specs.map((spec) => {
    const family = multiaddr(spec).getComponents()[0]?.name;
    const wanted = parts(spec);
    if (wanted.port !== '0') return spec;
    const wildcard = wanted.ip === '0.0.0.0' || wanted.ip === '::';
    const match = bound.find((b) => b.family === family && (wildcard || b.ip === wanted.ip));
    return match === undefined ? spec : `/${family}/${wanted.ip}/tcp/${match.port}`;
  });
}

export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || !(port >= 0 && port <= 65535)) {
    throw new StartupError(`--http must be HOST:PORT (e.g. 127.0.0.1:7401), got ${JSON.stringify(text)}`);
  }
  return { host: (match[1] ?? match[2]) as string, port };
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

/** A data stream's progress as /status shows it: figures and rates instead of clock readings. */
function streamStatus(stream: StreamProgress, nowMs: number) {
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

/** Bytes of the SQLite database files (main, WAL, shared memory) in `dataDir`. */
function databaseBytes(dataDir: string): number {
  let bytes = 0;
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      bytes += statSync(joinPath(dataDir, `${DATABASE_FILE}${suffix}`)).size;
    } catch {
      // absent (no WAL right now): nothing to count
    }
  }
  return bytes;
}

/** Before the daemon object exists (a scrape during start-up). */
const EMPTY_SNAPSHOT: MetricsSnapshot = {
  epoch: 0,
  writable: false,
  catchingUp: false,
  members: [],
  keysLive: 0,
  keysStored: 0,
  storeBytes: 0,
  opsInFlight: 0,
  antiEntropy: { rounds: 0, matchedRounds: 0, failedRounds: 0, keysRepaired: 0, bytes: 0, converged: false },
  tombstonesWaiting: 0,
  tombstonesPurged: 0,
  hints: { queued: 0, delivered: 0, dropped: 0, expired: 0 },
};

/** Records a quorum failure of a client operation in the audit log (rate-limited), then passes it on. */
async function audited<T>(audit: AuditLog, operation: 'read' | 'write', work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof QuorumUnavailableError) {
      audit.appendRepeated('quorum-failure', operation, { operation, acks: error.acks, required: error.required, voters: error.voters });
    }
    throw error;
  }
}

/** An operator's membership action, in the audit log with its outcome. */
async function operator(audit: AuditLog, action: string, peer: string, work: () => Promise<object>, details: object = {}): Promise<object> {
  try {
    const result = await work();
    audit.append('operator', { action, peer, ...details, outcome: 'ok' });
    return result;
  } catch (error) {
    audit.append('operator', { action, peer, ...details, outcome: 'refused', error: error instanceof Error ? error.message : String(error) });
    throw error;
  }
}

// The composition root: one running device. Wires the data dir (identity, cluster key), storage (SQLite), the
// network (libp2p, transports), the node (runtime, membership, the NodeDaemon facade) and the HTTP API.
import { randomInt, randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type http from 'node:http';
import { join as joinPath, resolve as resolvePath } from 'node:path';
import { multiaddr } from '@multiformats/multiaddr';
import { DEFAULTS } from '../config/defaults.js';
import { withGenesisProof } from '../core/config-proof.js';
import { type MembershipConfig, foundingConfig, isRemoved } from '../core/membership.js';
import { loadOrCreateToken } from '../http/access.js';
import { mdnsServiceTag } from '../net/clusterkey.js';
import { loadOrCreateIdentity } from '../net/identity.js';
import { type NetNode, createNetNode } from '../net/node.js';
import { ReplicaTransport, SyncTransport } from '../net/transport.js';
import { META, readMeta, writeMeta } from '../storage/meta.js';
import { openSqliteStore } from '../storage/sqlite.js';
import { AuditLog } from '../node/audit.js';
import type { ConfigAuth } from '../core/config-proof.js';
import { configAuth } from '../node/config-auth.js';
import { REAL_ENV } from '../node/driver-ports.js';
import { createContextCodec } from '../node/context-token.js';
import { NodeDaemon, dialableAddrs } from '../node/daemon.js';
import {
  DATABASE_FILE,
  StartupError,
  loadAcceptor,
  loadMembership,
  loadOrCreateStoreId,
  nextDotActor,
  prepareClusterKey,
} from '../node/data-dir.js';
import { DotAllocator } from '../node/dots.js';
import { type Logger, createLogger } from '../node/log.js';
import { type MembershipOptions, MembershipService } from '../node/membership.js';
import { Runtime, type RuntimeOptions } from '../node/runtime.js';
import type { NodeMetrics, StatusView } from '../node/status.js';
import { createApiServer, frontEndOf } from './api.js';

export { StartupError } from '../node/data-dir.js';

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

/** A running device: the node and its HTTP API. */
export class Daemon {
  private readonly daemon: NodeDaemon;

  private constructor(daemon: NodeDaemon) {
    this.daemon = daemon;
  }

  get peerId(): string {
    return this.daemon.peerId;
  }

  get dataDir(): string {
    return this.daemon.dataDir;
  }

  get startedAtMs(): number {
    return this.daemon.startedAtMs;
  }

  get runtime(): Runtime {
    return this.daemon.runtime;
  }

  get membership(): MembershipService {
    return this.daemon.membership;
  }

  /** Resolves when the daemon asks its owner to exit (after `leave`). */
  get exitRequested(): Promise<void> {
    return this.daemon.exitRequested;
  }

  get httpEndpoint(): string {
    return this.daemon.httpEndpoint;
  }

  listenAddrs(): string[] {
    return this.daemon.listenAddrs();
  }

  /** The store `peer` last said it runs on (undefined: not heard yet). */
  storeOf(peer: string): string | undefined {
    return this.daemon.storeOf(peer);
  }

  isAlive(peer: string): boolean {
    return this.daemon.isAlive(peer);
  }

  knownAddrs(peer: string): readonly string[] {
    return this.daemon.knownAddrs(peer);
  }

  status(): StatusView {
    return this.daemon.status();
  }

  /** Why this device is not ready to serve (empty: ready): for /readyz. */
  readiness(): string[] {
    return this.daemon.readiness();
  }

  metricsSnapshot(): NodeMetrics {
    return this.daemon.metricsSnapshot();
  }

  /** Removes this device from the cluster, then asks the owner to exit (see NodeDaemon.leave). */
  leave(): Promise<MembershipConfig> {
    return this.daemon.leave();
  }

  /** Stops accepting, finishes in-flight requests (bounded), closes the network and the database. */
  stop(): Promise<void> {
    return this.daemon.stop();
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
    const { clusterKey, founding } = await prepareClusterKey(dataDir, options);

    const identity = await loadOrCreateIdentity(dataDir);
    const store = await openSqliteStore(joinPath(dataDir, DATABASE_FILE));
    try {
      let config = loadMembership(store);
      const { storeId, legacySeat } = await loadOrCreateStoreId(store, config);

      const acceptor = loadAcceptor(store);
      const listen = options.listen ?? readMeta(store, META.listen) ?? DEFAULTS.listen;
      const late: { node?: NodeDaemon; runtime?: Runtime } = {}; // handlers run only after construction
      const net = await createNetNode({
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
        const founded = foundingConfig(randomUUID(), { peerId: identity.peerId, addrs: dialableAddrs(net), store: storeId });
        config = withGenesisProof(founded, identity.peerId, auth);
        await writeMeta(store, META.membership, config);
        log.info({ clusterId: config.clusterId }, 'founded a new cluster');
      }
      const opIdBase = randomInt(0, 2 ** 47);
      const actor = await nextDotActor(store, identity.peerId);
      const dots = await DotAllocator.open(store, actor, DEFAULTS.dotReserveBlock);
      const runtime = createRuntime(options, { self: identity.peerId, store, dots, config, acceptor, opIdBase, storeId, legacySeat, log, auth });
      late.runtime = runtime;
      runtime.resumeJoinTransfer(); // an admission whose data transfer a restart interrupted
      const transport = new ReplicaTransport(net, {
        onMessage: (from, msg) => late.node?.handleMessage(from, msg),
        onPeerConnect: (peer) => late.node?.peerConnected(peer),
        onPeerDisconnect: (peer) => late.node?.peerDisconnected(peer),
        trusted: (peer) => late.node?.trustsFrames(peer) ?? true,
        log: (obj, msg) => log.warn(obj, msg),
      });
      runtime.attachTransport(transport);
      const syncTransport = new SyncTransport(net, {
        onMessage: (from, msg) => runtime.receiveSync(from, msg),
        trusted: (peer) => late.node?.trustsFrames(peer) ?? true,
        log: (obj, msg) => log.warn({ ...obj, protocol: 'sync' }, msg),
      });
      const membership = createMembership(options, {
        runtime,
        storeId,
        send: (to, msg) => transport.send(to, msg),
        log,
        opIdBase,
        node: () => late.node,
        auth,
      });
      const token = loadOrCreateToken(dataDir);
      const audit = new AuditLog(dataDir, (error) => log.warn({ err: String(error) }, 'cannot write the audit log'));
      const node = new NodeDaemon({
        peerId: identity.peerId,
        dataDir,
        log,
        store,
        node: net,
        transport,
        syncTransport,
        runtime,
        membership,
        audit,
        joinAddrs: options.join,
        autoRemoveAfterMs: options.autoRemoveAfterMs ?? DEFAULTS.autoRemoveAfterMs,
        timers: REAL_ENV.timers,
      });
      late.node = node;
      const httpServer: http.Server = createApiServer({
        httpAddr,
        token,
        peerId: identity.peerId,
        node,
        runtime,
        membership,
        store,
        audit,
        contexts: createContextCodec(clusterKey),
      });
      await writeMeta(store, META.listen, boundListenSpecs(listen, net));
      await node.start(frontEndOf(httpServer, httpAddr), options.mdns);
      return new Daemon(node);
    } catch (error) {
      await store.close().catch(() => undefined);
      throw error;
    }
  }
}

/** The runtime (core + storage + transport driver) with the settings of `options` and the defaults. */
function createRuntime(
  options: DaemonOptions,
  parts: Pick<RuntimeOptions, 'self' | 'store' | 'dots' | 'config' | 'acceptor' | 'opIdBase' | 'storeId' | 'legacySeat' | 'log' | 'auth'>,
): Runtime {
  return new Runtime({
    ...parts,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    transferIdleMs: DEFAULTS.transferIdleMs,
    transferBatchRecords: options.transferBatchRecords ?? DEFAULTS.transferBatchRecords,
    transferBatchBytes: DEFAULTS.transferBatchBytes,
    opsInFlightMax: DEFAULTS.opsInFlightMax,
    antiEntropy: {
      intervalMs: options.antiEntropyIntervalMs ?? DEFAULTS.antiEntropyIntervalMs,
      bytesPerSec: options.antiEntropyBytesPerSec ?? DEFAULTS.antiEntropyBytesPerSec,
      requestTimeoutMs: DEFAULTS.antiEntropyRequestTimeoutMs,
      tombstoneGraceMs: options.tombstoneGraceMs ?? DEFAULTS.tombstoneGraceMs,
    },
    hints: { hintsMax: DEFAULTS.hintsMax, hintTtlMs: DEFAULTS.hintTtlMs },
    wallClockMs: REAL_ENV.clocks.wallMs,
    monotonicMs: REAL_ENV.clocks.monotonicMs,
    timers: REAL_ENV.timers,
    random: REAL_ENV.random,
  });
}

/** The membership service; what it asks of the node (addresses, liveness, stores) goes to `node()` once it exists. */
function createMembership(
  options: DaemonOptions,
  parts: {
    runtime: Runtime;
    storeId: string;
    send: MembershipOptions['send'];
    log: Logger;
    opIdBase: number;
    node: () => NodeDaemon | undefined;
    /** Signs this device's claims on its store (a re-seat after a wipe) and checks others' (docs/security.md). */
    auth: ConfigAuth;
  },
): MembershipService {
  const { node } = parts;
  return new MembershipService({
    runtime: parts.runtime,
    storeId: parts.storeId,
    send: parts.send,
    log: parts.log,
    autoAdmit: options.autoAdmit ?? DEFAULTS.autoAdmit,
    maxVoters: options.maxVoters ?? DEFAULTS.maxVoters,
    jointTakeoverMs: DEFAULTS.jointTakeoverMs,
    changeAttemptsMax: DEFAULTS.changeAttemptsMax,
    addrsOf: (peer) => node()?.knownAddrs(peer) ?? [],
    isAlive: (peer) => node()?.isAlive(peer) ?? false,
    storeOf: (peer) => node()?.storeOf(peer),
    opIdBase: parts.opIdBase + 2 ** 48,
    auth: parts.auth,
    clocks: { monotonicNow: REAL_ENV.clocks.monotonicMs, wallNow: REAL_ENV.clocks.wallMs },
    timers: REAL_ENV.timers,
    random: REAL_ENV.random,
  });
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

// Daemon assembly and lifecycle: data dir, identity, cluster key, storage, libp2p, runtime, join and HTTP;
// founding or joining a cluster, reconnecting to known members, daemon.json, and a clean shutdown.
import { randomInt, randomUUID } from 'node:crypto';
import { equals as equalBytes } from 'uint8arrays';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join as joinPath, resolve as resolvePath } from 'node:path';
import type { Libp2p } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { DEFAULTS } from '../config/defaults.js';
import { type MembershipConfig, configProblem, foundingConfig, isMember, isVoter } from '../core/membership.js';
import { majority } from '../core/quorum.js';
import { createHttpServer } from '../http/server.js';
import { createClusterKey, readClusterKey } from '../net/clusterkey.js';
import { loadOrCreateIdentity } from '../net/identity.js';
import { createNetNode } from '../net/node.js';
import { ReplicaTransport } from '../net/transport.js';
import type { StoragePort } from '../storage/port.js';
import { openSqliteStore } from '../storage/sqlite.js';
import { createContextCodec } from './context-token.js';
import { DotAllocator } from './dots.js';
import { JoinService, isJoinMessage } from './join.js';
import { createLogger, type Logger } from './log.js';
import { META_MEMBERSHIP, Runtime } from './runtime.js';
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
/** Dot-actor incarnation, and whether the last run closed the store cleanly (see nextDotActor). */
const META_INCARNATION = 'incarnation';
const META_CLEAN_SHUTDOWN = 'cleanShutdown';
/** The concrete listen addresses (ports resolved) of the last start, reused when --listen is not given. */
const META_LISTEN = 'listen';

export class Daemon {
  readonly peerId: string;
  readonly dataDir: string;
  readonly startedAtMs = Date.now();
  private readonly log: Logger;
  private readonly store: StoragePort;
  private readonly node: Libp2p;
  private readonly transport: ReplicaTransport;
  readonly runtime: Runtime;
  private readonly joins: JoinService;
  private readonly httpServer: ReturnType<typeof createHttpServer>;
  private httpUrl = '';
  private readonly joinAddrs: readonly string[];
  private readonly lastSeenMs = new Map<string, number>();
  private readonly addressBook = new Map<string, string[]>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private joinLoop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly dialing = new Set<string>();
  private joinState: 'member' | 'joining' | 'waiting' = 'member';
  private joinError = '';

  private constructor(parts: {
    peerId: string;
    dataDir: string;
    log: Logger;
    store: StoragePort;
    node: Libp2p;
    transport: ReplicaTransport;
    runtime: Runtime;
    joins: JoinService;
    httpServer: ReturnType<typeof createHttpServer>;
    joinAddrs: readonly string[];
  }) {
    this.peerId = parts.peerId;
    this.dataDir = parts.dataDir;
    this.log = parts.log;
    this.store = parts.store;
    this.node = parts.node;
    this.transport = parts.transport;
    this.runtime = parts.runtime;
    this.joins = parts.joins;
    this.httpServer = parts.httpServer;
    this.joinAddrs = parts.joinAddrs;
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
      const lastListen = store.getMeta(META_LISTEN);
      const listen = options.listen ?? (lastListen === undefined ? DEFAULTS.listen : (JSON.parse(lastListen) as string[]));
      const node = await createNetNode({
        privateKey: identity.privateKey,
        clusterKey,
        listen: [...listen],
        dialTimeoutMs: DEFAULTS.dialTimeoutMs,
      });
      if (founding && config.epoch === 0) {
        config = foundingConfig(randomUUID(), { peerId: identity.peerId, addrs: dialableAddrs(node) });
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
        requestTimeoutMs: options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
        opsInFlightMax: DEFAULTS.opsInFlightMax,
        opIdBase,
        log,
      });
      const late: { daemon?: Daemon } = {}; // handlers run only after construction
      const transport = new ReplicaTransport(node, {
        onMessage: (from, msg) => late.daemon?.onMessage(from, msg),
        onPeerConnect: (peer) => late.daemon?.lastSeenMs.set(peer, Date.now()),
        onPeerDisconnect: (peer) => late.daemon?.lastSeenMs.set(peer, Date.now()),
        log: (obj, msg) => log.warn(obj, msg),
      });
      runtime.attachTransport(transport);
      const joins = new JoinService({
        runtime,
        store,
        send: (to, msg) => transport.send(to, msg),
        log,
        transferBatchRecords: DEFAULTS.transferBatchRecords,
        transferBatchBytes: DEFAULTS.transferBatchBytes,
        transferAckTimeoutMs: DEFAULTS.joinTimeoutMs,
        opIdBase: opIdBase + 2 ** 48,
      });
      const httpServer = createHttpServer({
        backend: {
          write: (key, value, context, level) => runtime.write(key, value, context, level),
          read: (key, level) => runtime.read(key, level),
          status: () => late.daemon?.status() ?? {},
        },
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
        runtime,
        joins,
        httpServer,
        joinAddrs: options.join,
      });
      late.daemon = daemon;
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
    this.runtime.onConfigChange((config) => {
      if (isMember(config, this.peerId)) this.joinState = 'member';
    });
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
    if (!isMember(config, this.peerId)) {
      this.joinState = this.joinAddrs.length > 0 ? 'joining' : 'waiting';
      if (this.joinAddrs.length > 0) this.joinLoop = this.runJoinLoop();
      else this.log.warn({}, 'holding a cluster key but no membership: waiting to join (start with --join MULTIADDR)');
    }
    this.reconnectTimer = setInterval(() => this.reconnect(), DEFAULTS.reconnectIntervalMs);
    this.reconnectTimer.unref();
    this.reconnect();
    await this.writeDaemonFile();
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

  /** Repeats the join request (through each --join address in turn) until it succeeds or we stop. */
  private async runJoinLoop(): Promise<void> {
    let attempt = 0;
    while (this.stopping === undefined && !isMember(this.runtime.config, this.peerId)) {
      const addr = this.joinAddrs[attempt % this.joinAddrs.length] as string;
      attempt += 1;
      try {
        const member = await this.transport.dial(addr);
        this.log.info({ member, addr }, 'asking to join the cluster');
        await this.joins.requestJoin(member, this.listenAddrs(), DEFAULTS.joinTimeoutMs);
        this.log.info({ epoch: this.runtime.config.epoch }, 'joined the cluster as a voter');
        this.joinError = '';
        return;
      } catch (error) {
        this.joinError = error instanceof Error ? error.message : String(error);
        this.log.warn({ addr, err: this.joinError }, 'join attempt failed; retrying');
        await sleep(Math.min(5_000, 250 * attempt));
      }
    }
  }

  /** Dials every known member we are not connected to (their last known addresses). */
  private reconnect(): void {
    if (this.stopping !== undefined) return;
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

  private onMessage(from: string, msg: Parameters<Runtime['receive']>[1]): void {
    this.lastSeenMs.set(from, Date.now());
    if (isJoinMessage(msg)) this.joins.handle(from, msg);
    else this.runtime.receive(from, msg);
  }

  status(): object {
    const config = this.runtime.config;
    const stats = this.store.stats();
    const member = (m: { peerId: string; addrs: readonly string[] }): object => {
      const self = m.peerId === this.peerId;
      const connected = self || this.transport.isConnected(m.peerId);
      const seen = this.lastSeenMs.get(m.peerId);
      return {
        peerId: m.peerId,
        self,
        connected,
        lastSeen: self ? new Date().toISOString() : seen === undefined ? null : new Date(seen).toISOString(),
        addrs: this.addressBook.get(m.peerId) ?? m.addrs,
      };
    };
    const voters = config.voters.length;
    const reachable = config.voters.filter((m) => m.peerId === this.peerId || this.transport.isConnected(m.peerId)).length;
    const needed = voters > 0 ? majority(voters) : 0;
    return {
      version: VERSION,
      peerId: this.peerId,
      clusterId: config.clusterId || null,
      epoch: config.epoch,
      role: isVoter(config, this.peerId) ? 'voter' : isMember(config, this.peerId) ? 'learner' : this.joinState,
      joinError: this.joinError || undefined,
      voters: config.voters.map(member),
      learners: config.learners.map(member),
      quorum: { voters, reachable, needed, writable: voters > 0 && reachable >= needed },
      listen: this.listenAddrs(),
      http: this.httpUrl,
      keys: stats.liveKeys,
      storedKeys: stats.totalKeys,
      storage: { commits: stats.commits, recordsCommitted: stats.recordsCommitted },
      network: this.transport.stats,
      opsInFlight: this.runtime.opsInFlight,
      transfer: this.joins.transfer ?? null,
      uptimeMs: Date.now() - this.startedAtMs,
    };
  }

  private async writeDaemonFile(): Promise<void> {
    const path = joinPath(this.dataDir, DAEMON_FILE);
    const tmp = `${path}.${process.pid}.tmp`;
    const body = { pid: process.pid, peerId: this.peerId, http: this.httpUrl, listen: this.listenAddrs() };
    await writeFile(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o644 });
    await rename(tmp, path);
  }

  /** Stops accepting, finishes in-flight requests (bounded), closes the network and the database. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.log.info({}, 'shutting down');
    if (this.reconnectTimer !== undefined) clearInterval(this.reconnectTimer);
    const closed = new Promise<void>((resolve) => this.httpServer.close(() => resolve()));
    this.httpServer.closeIdleConnections();
    await this.runtime.drain(DEFAULTS.shutdownGraceMs);
    this.runtime.stop(); // whatever is still pending is answered 503 shutting_down (indeterminate)
    this.httpServer.closeAllConnections();
    await closed;
    // Close the store before the network: a slow libp2p stop must not cost us the clean-shutdown mark.
    await this.store.setMeta(META_CLEAN_SHUTDOWN, 'true');
    await this.store.close();
    await withTimeout(this.transport.stop(), NETWORK_STOP_MS);
    await withTimeout(Promise.resolve(this.node.stop()), NETWORK_STOP_MS);
    await rm(joinPath(this.dataDir, DAEMON_FILE), { force: true });
    this.log.info({}, 'stopped');
  }
}

/**
 * The actor name for this run's dots. After an unclean stop, writes that were staged but not yet durable may
 * have reached other replicas and then been lost here; a version vector entry (peer, n) would claim we had
 * seen them, so later writes would silently supersede them. A fresh incarnation `peer~k` avoids that claim.
 * A clean stop flushed everything, so the same actor continues.
 */
export async function nextDotActor(store: StoragePort, peerId: string): Promise<string> {
  const stored = store.getMeta(META_INCARNATION);
  let incarnation = stored === undefined ? 0 : Number(stored);
  if (!Number.isSafeInteger(incarnation) || incarnation < 0) throw new StartupError(`corrupt incarnation ${JSON.stringify(stored)}`);
  if (stored !== undefined && store.getMeta(META_CLEAN_SHUTDOWN) !== 'true') incarnation += 1;
  await Promise.all([store.setMeta(META_INCARNATION, String(incarnation)), store.setMeta(META_CLEAN_SHUTDOWN, 'false')]);
  return incarnation === 0 ? peerId : `${peerId}~${incarnation}`;
}

function loadMembership(store: StoragePort): MembershipConfig {
  const text = store.getMeta(META_MEMBERSHIP);
  if (text === undefined) return { clusterId: '', epoch: 0, voters: [], learners: [], removed: [] };
  const config = JSON.parse(text) as MembershipConfig;
  const problem = configProblem(config);
  if (problem !== undefined) throw new StartupError(`stored membership is invalid: ${problem}`);
  return config;
}

/** Listen addresses others can dial (wildcards expanded by libp2p), each ending in /p2p/<peerId>. */
function dialableAddrs(node: Libp2p): string[] {
  return node.getMultiaddrs().map((a) => a.toString());
}

/** The listen specs with port 0 replaced by the port actually bound (matched by address family and IP). */
function boundListenSpecs(specs: readonly string[], node: Libp2p): string[] {
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}


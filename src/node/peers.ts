// What this device knows of its peers and how it reaches them: the address book (persisted for members), when
// each was last seen, the store each runs on, dialing mDNS answers, and redialing known members.
import { DEFAULTS } from '../config/defaults.js';
import { type MembershipConfig, isMember, isRemoved } from '../core/membership.js';
import { type NetNode, forgetPeer } from '../net/node.js';
import type { ReplicaTransport } from '../net/transport.js';
import type { StoragePort } from '../storage/port.js';
import { META, readMeta, writeMeta } from '../storage/meta.js';
import type { Logger } from './log.js';

/** Peers whose last contact time is remembered (members and candidates; far above any cluster size). */
const PEERS_TRACKED_MAX = 1024;

export interface PeersOptions {
  readonly self: string;
  readonly node: NetNode;
  readonly transport: Pick<ReplicaTransport, 'dial' | 'isConnected'>;
  readonly store: Pick<StoragePort, 'getMeta' | 'setMeta'>;
  readonly config: () => MembershipConfig;
  readonly log: Logger;
  /** The daemon is shutting down: dial no more. */
  readonly stopping: () => boolean;
}

export class Peers {
  private readonly opts: PeersOptions;
  private readonly lastSeenMs = new Map<string, number>();
  private readonly peerStores = new Map<string, string>();
  private readonly addressBook = new Map<string, string[]>();
  private readonly dialing = new Set<string>();
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(options: PeersOptions) {
    this.opts = options;
  }

  /** Loads the address book and learns the addresses peers announce (identify). Before the transports start. */
  start(): void {
    for (const [peer, addrs] of Object.entries(readMeta(this.opts.store, META.addressBook) ?? {})) this.addressBook.set(peer, addrs);
    this.opts.node.addEventListener('peer:identify', (event) => {
      const peer = event.detail.peerId.toString();
      const addrs = event.detail.listenAddrs.map((a) => a.encapsulate(`/p2p/${peer}`).toString());
      if (addrs.length > 0) this.rememberAddrs(peer, addrs);
    });
  }

  /** Dials what mDNS finds, from now on and what it found while we were starting. */
  async discover(): Promise<void> {
    const { node } = this.opts;
    node.services.mdns?.addEventListener('peer', (event) => {
      // Every mDNS answer, not only a peer's first (libp2p's peer:discovery fires once per peer): a device
      // that comes back after a link cut is redialed within one query interval.
      const peer = event.detail.id.toString();
      const addrs = event.detail.multiaddrs.map((a) => (a.toString().includes('/p2p/') ? a.toString() : `${a.toString()}/p2p/${peer}`));
      this.onDiscovered(peer, addrs);
    });
    // Answers that arrived while we were still starting went into the peer store only: dial those too.
    for (const known of await node.peerStore.all()) {
      const peer = known.id.toString();
      const addrs = known.addresses.map((a) => `${a.multiaddr.toString()}/p2p/${peer}`);
      if (addrs.length > 0) this.onDiscovered(peer, addrs);
    }
  }

  /** Redials known members every reconnect interval, starting now. */
  startReconnecting(): void {
    this.reconnectTimer = setInterval(() => this.reconnect(), DEFAULTS.reconnectIntervalMs);
    this.reconnectTimer.unref();
    this.reconnect();
  }

  stop(): void {
    if (this.reconnectTimer !== undefined) clearInterval(this.reconnectTimer);
  }

  /** Records contact with a peer (bounded: the least recently seen are forgotten first). */
  noteSeen(peer: string): void {
    this.lastSeenMs.delete(peer);
    this.lastSeenMs.set(peer, Date.now());
    while (this.lastSeenMs.size > PEERS_TRACKED_MAX) this.lastSeenMs.delete(this.lastSeenMs.keys().next().value as string);
  }

  /** Wall-clock time (ms) of the last contact with `peer`, if remembered. */
  lastSeen(peer: string): number | undefined {
    return this.lastSeenMs.get(peer);
  }

  /** The store each peer last said it runs on (its heartbeats), so a learner is promoted only on its seat's store. */
  rememberStore(peer: string, store: string): void {
    this.peerStores.delete(peer);
    this.peerStores.set(peer, store);
    while (this.peerStores.size > PEERS_TRACKED_MAX) this.peerStores.delete(this.peerStores.keys().next().value as string);
  }

  /** The store `peer` last said it runs on (undefined: not heard yet). */
  storeOf(peer: string): string | undefined {
    return this.peerStores.get(peer);
  }

  knownAddrs(peer: string): readonly string[] {
    return this.addressBook.get(peer) ?? [];
  }

  /** The addresses /status shows for a member: what it announced, else those of its configuration entry. */
  addrsOf(peer: string): readonly string[] | undefined {
    return this.addressBook.get(peer);
  }

  /**
   * After a disconnection: a non-member leaves nothing behind (its addresses here and in the peer store): a key
   * holder minting fresh identities must not grow memory. Members keep theirs for redialing.
   */
  forgetIfStranger(peer: string): void {
    const config = this.opts.config();
    if (!isMember(config, peer) && !config.previousVoters.includes(peer)) {
      this.addressBook.delete(peer);
      this.peerStores.delete(peer);
      void forgetPeer(this.opts.node, peer);
    }
  }

  /** An mDNS answer: dial the device unless connected (members and candidates alike; the cluster-key handshake decides). */
  private onDiscovered(peer: string, addrs: string[]): void {
    const { self, transport } = this.opts;
    if (this.opts.stopping() || peer === self || transport.isConnected(peer)) return;
    const config = this.opts.config();
    if (isRemoved(config, peer) || isRemoved(config, self) || this.dialing.has(peer)) return;
    this.dialing.add(peer);
    void this.dialAny(addrs)
      .catch(() => undefined)
      .finally(() => this.dialing.delete(peer));
  }

  /** Dials every known member we are not connected to (their last known addresses). */
  private reconnect(): void {
    const { self, transport } = this.opts;
    if (this.opts.stopping() || isRemoved(this.opts.config(), self)) return;
    const config = this.opts.config();
    for (const member of [...config.voters, ...config.learners]) {
      if (member.peerId === self || transport.isConnected(member.peerId)) continue;
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
        await this.opts.transport.dial(addr);
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
    if (!isMember(this.opts.config(), peer)) return;
    void writeMeta(this.opts.store, META.addressBook, Object.fromEntries(this.addressBook))
      .catch((error: unknown) => this.opts.log.warn({ err: String(error) }, 'could not persist the address book'));
  }
}

// The libp2p node of a device: TCP + Noise bound to the cluster key (handshake.ts) + yamux, identify and ping,
// optional mDNS discovery (service tag derived from the cluster key), connection limits sized for a LAN, and
// a gater (gater.ts: pending upgrades per host, revoked peers).
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify, type Identify } from '@libp2p/identify';
import type { PeerDiscovery, PrivateKey } from '@libp2p/interface';
import { mdns } from '@libp2p/mdns';
import { peerIdFromString } from '@libp2p/peer-id';
import { ping, type Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { createLibp2p, type Libp2p } from 'libp2p';
import {
  DIAL_TIMEOUT_MS_DEFAULT,
  INBOUND_CONNECTION_THRESHOLD,
  INBOUND_UPGRADE_TIMEOUT_MS,
  MAX_CONNECTIONS,
  MAX_INCOMING_PENDING_CONNECTIONS,
} from './constants.js';
import { netGater } from './gater.js';
import { clusterNoise, refusalLogger } from './handshake.js';

export interface NetNodeOptions {
  readonly privateKey: PrivateKey;
  /** Cluster key file bytes (see clusterkey.ts); only devices holding the same key complete the handshake. */
  readonly clusterKey: Uint8Array;
  /** Structured log sink (pino style): handshakes refused for a wrong cluster key (rate-limited). */
  readonly log?: (obj: object, msg: string) => void;
  /** Listen multiaddrs, e.g. /ip4/0.0.0.0/tcp/4001. */
  readonly listen: readonly string[];
  /** Budget for one dial including the upgrade (default DIAL_TIMEOUT_MS_DEFAULT). */
  readonly dialTimeoutMs?: number;
  /** Peers refused in both directions even with the cluster key (revoked devices). Consulted per connection. */
  readonly denyPeer?: (peerId: string) => boolean;
  /** mDNS discovery on every interface (multicast): undefined disables it. */
  readonly mdns?: { readonly serviceTag: string; readonly queryIntervalMs: number };
}

export type NetServices = { identify: Identify; ping: Ping; mdns?: PeerDiscovery };
export type NetNode = Libp2p<NetServices>;

/** Creates and starts the node. The caller stops it (`await node.stop()`). */
export async function createNetNode(opts: NetNodeOptions): Promise<NetNode> {
  const dialTimeoutMs = opts.dialTimeoutMs ?? DIAL_TIMEOUT_MS_DEFAULT;
  return createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: [...opts.listen] },
    transports: [tcp()],
    connectionEncrypters: [clusterNoise(opts.clusterKey, opts.log === undefined ? undefined : refusalLogger(opts.log))],
    streamMuxers: [yamux()],
    connectionGater: netGater({ denyPeer: opts.denyPeer }),
    // Our own heartbeats (every 500 ms on an open stream) detect dead peers and close their connections;
    // libp2p's monitor would add a ping on a new stream (protocol negotiation included) every 10 s per peer.
    connectionMonitor: { enabled: false },
    connectionManager: {
      dialTimeout: dialTimeoutMs,
      addressDialTimeout: dialTimeoutMs,
      inboundUpgradeTimeout: INBOUND_UPGRADE_TIMEOUT_MS,
      inboundConnectionThreshold: INBOUND_CONNECTION_THRESHOLD,
      maxIncomingPendingConnections: MAX_INCOMING_PENDING_CONNECTIONS,
      maxConnections: MAX_CONNECTIONS,
    },
    services: {
      identify: identify(),
      ping: ping(),
      ...(opts.mdns === undefined ? {} : { mdns: mdns({ serviceTag: opts.mdns.serviceTag, interval: opts.mdns.queryIntervalMs }) }),
    },
  }) as Promise<NetNode>;
}

/**
 * Drops what the node keeps about `peerId` (peer store: addresses, protocols, keys, metadata; ~6.6 KiB per
 * identity) once it has no connection left. For peers that are not members: a key holder minting fresh
 * identities must not grow memory. A peer that connects again is identified again. Never throws.
 */
export async function forgetPeer(node: NetNode, peerId: string): Promise<boolean> {
  let peer;
  try {
    peer = peerIdFromString(peerId);
  } catch {
    return false;
  }
  if (peer.equals(node.peerId) || node.getConnections(peer).length > 0) return false;
  try {
    await node.peerStore.delete(peer);
    return true;
  } catch {
    return false;
  }
}

// The connection gater: who may take an inbound connection slot. Caps the connections one remote host may have
// in the upgrade (before the cluster-key handshake completes), so silent or slow sockets from one host cannot
// take every pending-upgrade slot and block devices that join; and refuses revoked peers in both directions.
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface';
import { INBOUND_PENDING_PER_HOST_MAX } from './constants.js';

/** The IP address of a connection's remote end ('' when it has none, e.g. a non-IP transport). */
function hostOf(maConn: MultiaddrConnection): string {
  for (const component of maConn.remoteAddr.getComponents()) {
    if ((component.name === 'ip4' || component.name === 'ip6') && component.value !== undefined) return component.value;
  }
  return '';
}

export interface GaterOptions {
  /** Peers refused in both directions even with the cluster key (revoked devices). */
  readonly denyPeer?: (peerId: string) => boolean;
  /** Pending inbound upgrades per remote host (default INBOUND_PENDING_PER_HOST_MAX). */
  readonly pendingPerHostMax?: number;
}

/** A gater plus its pending-upgrade count per host (for tests and observability). */
export interface NetGater extends ConnectionGater {
  pendingOf(host: string): number;
}

export function netGater(opts: GaterOptions = {}): NetGater {
  const pendingPerHostMax = opts.pendingPerHostMax ?? INBOUND_PENDING_PER_HOST_MAX;
  // Entries exist only while a host has upgrades pending: at most the node's pending-upgrade limit.
  const pending = new Map<string, number>();
  const counted = new WeakMap<MultiaddrConnection, string>();
  const release = (maConn: MultiaddrConnection): void => {
    const host = counted.get(maConn);
    if (host === undefined) return;
    counted.delete(maConn);
    const n = (pending.get(host) ?? 1) - 1;
    if (n <= 0) pending.delete(host);
    else pending.set(host, n);
  };
  const deny = (peerId: PeerId): boolean => opts.denyPeer?.(peerId.toString()) ?? false;
  return {
    pendingOf: (host) => pending.get(host) ?? 0,
    denyInboundConnection: (maConn) => {
      const host = hostOf(maConn);
      const n = pending.get(host) ?? 0;
      if (n >= pendingPerHostMax) return true;
      pending.set(host, n + 1);
      counted.set(maConn, host);
      maConn.addEventListener('close', () => release(maConn), { once: true });
      return false;
    },
    // The handshake completed: the peer holds the cluster key and no longer counts as pending.
    denyInboundEncryptedConnection: (peerId, maConn) => {
      release(maConn);
      return deny(peerId);
    },
    denyDialPeer: deny,
    denyOutboundEncryptedConnection: deny,
  };
}

// Runs the transport contract against the libp2p ReplicaTransport (real nodes on 127.0.0.1) and against the
// in-memory transport tests use (memory-transport.ts).
import { generateClusterKey } from '../../src/net/clusterkey.js';
import { Cleanup, startPeer, type TestPeer, waitFor } from './helpers.js';
import { MemoryNetwork } from './memory-transport.js';
import { type ContractPeer, transportContract } from './transport-contract.js';

transportContract('libp2p ReplicaTransport on 127.0.0.1', () => {
  const cleanup = new Cleanup();
  const clusterKey = generateClusterKey();
  const peers = new Map<string, TestPeer>();
  return {
    peer: async (options) => {
      const p = await startPeer(cleanup, clusterKey, { transport: { maxQueuedBytesPerPeer: options?.maxQueuedBytesPerPeer } });
      peers.set(p.peerId, p);
      const peer: ContractPeer = {
        peerId: p.peerId,
        transport: p.transport,
        received: p.received,
        disconnects: p.disconnects,
        connect: async (other) => {
          const remote = peers.get(other.peerId);
          if (remote === undefined) throw new Error(`unknown peer ${other.peerId}`);
          await p.transport.dial(remote.addr);
          await waitFor(() => p.transport.isConnected(other.peerId) && remote.transport.isConnected(p.peerId), 'both sides connected');
        },
        hangUp: (peerId) => p.transport.hangUp(peerId),
        stop: async () => {
          await p.transport.stop();
          await p.node.stop();
        },
      };
      return peer;
    },
    cleanup: () => cleanup.run(),
  };
});

transportContract('in-memory', () => {
  const network = new MemoryNetwork();
  const stops: Array<() => void> = [];
  let next = 0;
  return {
    peer: async (options) => {
      const peerId = `m${(next += 1)}`;
      const received: ContractPeer['received'] = [];
      const disconnects: string[] = [];
      const transport = network.add(peerId, {
        onMessage: (from, msg) => received.push({ from, msg }),
        onPeerDisconnect: (peer) => disconnects.push(peer),
        maxQueuedBytesPerPeer: options?.maxQueuedBytesPerPeer,
      });
      stops.push(() => transport.stop());
      return {
        peerId,
        transport,
        received,
        disconnects,
        connect: async (other) => transport.dial(other.peerId),
        hangUp: async (peer) => transport.hangUp(peer),
        stop: async () => transport.stop(),
      };
    },
    cleanup: async () => {
      for (const stop of stops.splice(0)) stop();
    },
  };
});

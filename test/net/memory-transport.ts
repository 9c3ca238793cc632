// An in-memory MessageTransport for tests: peers of one MemoryNetwork exchange messages through the real wire
// codec (so sizes and copies are honest), delivered a turn later in per-peer order; the transport contract
// (transport-contract.ts) holds it to the same behaviour as the libp2p ReplicaTransport.
import type { Message } from '../../src/core/messages.js';
import { QUEUED_BYTES_PER_PEER_MAX_DEFAULT } from '../../src/net/constants.js';
import { framePrefix } from '../../src/net/frame-decoder.js';
import type { MessageTransport } from '../../src/node/runtime.js';
import { FRAME_BYTES_MAX, decodeFrame, encodeFrameEntry } from '../../src/wire/replica.js';

/** Largest length prefix of a frame: a message must fit one frame with it, as on the real transport. */
const FRAME_PREFIX_BYTES_MAX = framePrefix(FRAME_BYTES_MAX).length;

export interface MemoryTransportOptions {
  readonly onMessage: (from: string, msg: Message) => void;
  readonly onPeerConnect?: (peerId: string) => void;
  readonly onPeerDisconnect?: (peerId: string) => void;
  readonly maxQueuedBytesPerPeer?: number;
}

interface Outbox {
  entries: Uint8Array[];
  queuedBytes: number;
}

/** The peers that can reach each other in memory. */
export class MemoryNetwork {
  private readonly peers = new Map<string, MemoryTransport>();

  /** A new peer named `peerId` on this network (not connected to anyone yet). */
  add(peerId: string, options: MemoryTransportOptions): MemoryTransport {
    if (this.peers.has(peerId)) throw new Error(`peer ${peerId} is already on the network`);
    const transport = new MemoryTransport(this, peerId, options);
    this.peers.set(peerId, transport);
    return transport;
  }

  /** The running peer named `peerId`, if any. */
  find(peerId: string): MemoryTransport | undefined {
    const peer = this.peers.get(peerId);
    return peer?.running === true ? peer : undefined;
  }
}

export class MemoryTransport implements MessageTransport {
  private readonly network: MemoryNetwork;
  readonly peerId: string;
  private readonly options: MemoryTransportOptions;
  private readonly queuedBytesMax: number;
  /** Connected peers, each with the outbox of what waits for the next turn. */
  private readonly connections = new Map<string, Outbox>();
  private flushing: ReturnType<typeof setImmediate> | undefined;
  running = true;

  constructor(network: MemoryNetwork, peerId: string, options: MemoryTransportOptions) {
    this.network = network;
    this.peerId = peerId;
    this.options = options;
    this.queuedBytesMax = options.maxQueuedBytesPerPeer ?? QUEUED_BYTES_PER_PEER_MAX_DEFAULT;
  }

  /** Connects to `peerId` (both sides see the connection at once); throws when no such peer runs. */
  dial(peerId: string): void {
    const other = this.network.find(peerId);
    if (!this.running || other === undefined || peerId === this.peerId) throw new Error(`cannot reach ${peerId}`);
    if (this.connections.has(peerId)) return;
    this.opened(peerId);
    other.opened(this.peerId);
  }

  send(to: string, msg: Message): boolean {
    const box = this.connections.get(to);
    if (!this.running || box === undefined) return false;
    const entry = encodeFrameEntry(msg);
    if (entry.length + FRAME_PREFIX_BYTES_MAX > FRAME_BYTES_MAX) return false;
    if (box.queuedBytes + entry.length > this.queuedBytesMax) return false;
    box.entries.push(entry);
    box.queuedBytes += entry.length;
    this.flushing ??= setImmediate(this.flush);
    return true;
  }

  isConnected(peerId: string): boolean {
    return this.connections.has(peerId);
  }

  /** Closes the connection to `peerId` on both sides; what was still queued for it is lost. */
  hangUp(peerId: string): void {
    if (!this.connections.has(peerId)) return;
    this.closed(peerId);
    this.network.find(peerId)?.closed(this.peerId);
  }

  /** Hangs up on everyone and refuses every later send. Idempotent. */
  stop(): void {
    for (const peer of [...this.connections.keys()]) this.hangUp(peer);
    this.running = false;
    if (this.flushing !== undefined) clearImmediate(this.flushing);
    this.flushing = undefined;
  }

  private opened(peerId: string): void {
    this.connections.set(peerId, { entries: [], queuedBytes: 0 });
    this.options.onPeerConnect?.(peerId);
  }

  private closed(peerId: string): void {
    this.connections.delete(peerId);
    this.options.onPeerDisconnect?.(peerId);
  }

  /** Delivers every queued message, per peer in the order sent, each decoded afresh from its bytes. */
  private readonly flush = (): void => {
    this.flushing = undefined;
    for (const [peerId, box] of this.connections) {
      const entries = box.entries.splice(0);
      box.queuedBytes = 0;
      const receiver = this.network.find(peerId);
      for (const entry of entries) {
        for (const msg of decodeFrame(entry)) receiver?.options.onMessage(this.peerId, msg);
      }
    }
  };
}

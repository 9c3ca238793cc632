// FrameTransport: typed messages between peers over one libp2p protocol. One long-lived outbound stream per
// peer; everything sent to a peer in one event-loop turn goes out as one length-prefixed frame. Two instances:
// ReplicaTransport (core Messages, /quorumd/replica/2.0.0) and SyncTransport (anti-entropy, /quorumd/sync/1.0.0).
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { SyncMessage } from '../core/anti-entropy.js';
import type { Message } from '../core/messages.js';
import { FRAME_BYTES_MAX, FRAME_MESSAGES_MAX, decodeFrame, encodeFrameEntry } from '../wire/replica.js';
import { SYNC_FRAME_MESSAGES_MAX, decodeSyncFrame, encodeSyncEntry } from '../wire/sync.js';
import {
  QUEUED_BYTES_PER_PEER_MAX_DEFAULT,
  REPLICA_PROTOCOL,
  REPLICA_STREAMS_INBOUND_MAX,
  REPLICA_STREAMS_OUTBOUND_MAX,
  STREAM_CLOSE_TIMEOUT_MS,
  STREAM_OPEN_TIMEOUT_MS,
  SYNC_PROTOCOL,
  SYNC_QUEUED_BYTES_PER_PEER_MAX,
  UNTRUSTED_DECODE_BYTES_PER_SEC,
  UNTRUSTED_FRAME_BYTES_MAX,
} from './constants.js';
import { frameBudgets } from './budget.js';
import { DialError, FrameBudgetError, UntrustedFrameError } from './errors.js';
import { FrameDecoder, framePrefix } from './frame-decoder.js';

/** Largest length prefix of a frame (a varint of FRAME_BYTES_MAX). */
const FRAME_PREFIX_BYTES_MAX = framePrefix(FRAME_BYTES_MAX).length;

/** What a FrameTransport carries: the protocol, and the codec of one message / one frame. */
export interface FrameCodec<M extends { readonly type: string }> {
  readonly protocol: string;
  /** One message as a frame entry (a frame is the concatenation of its entries). */
  readonly encodeEntry: (msg: M) => Uint8Array;
  /** A whole frame's messages, validated; throws WireFormatError. */
  readonly decodeFrame: (frame: Uint8Array) => M[];
  readonly frameMessagesMax: number;
  readonly streamsInboundMax: number;
  readonly streamsOutboundMax: number;
}

export const REPLICA_CODEC: FrameCodec<Message> = {
  protocol: REPLICA_PROTOCOL,
  encodeEntry: encodeFrameEntry,
  decodeFrame: (frame) => decodeFrame(frame),
  frameMessagesMax: FRAME_MESSAGES_MAX,
  streamsInboundMax: REPLICA_STREAMS_INBOUND_MAX,
  streamsOutboundMax: REPLICA_STREAMS_OUTBOUND_MAX,
};

export const SYNC_CODEC: FrameCodec<SyncMessage> = {
  protocol: SYNC_PROTOCOL,
  encodeEntry: encodeSyncEntry,
  decodeFrame: decodeSyncFrame,
  frameMessagesMax: SYNC_FRAME_MESSAGES_MAX,
  streamsInboundMax: REPLICA_STREAMS_INBOUND_MAX,
  streamsOutboundMax: REPLICA_STREAMS_OUTBOUND_MAX,
};

/** Refused-frame log lines written per interval at most (the rest are counted in the next line). */
const REFUSAL_LOG_LINES_MAX = 8;
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface FrameTransportOptions<M> {
  /** Called once per received message, in the order the peer sent them; `from` is the connection's peer. */
  readonly onMessage: (from: string, msg: M) => void;
  readonly onPeerConnect?: (peerId: string) => void;
  readonly onPeerDisconnect?: (peerId: string) => void;
  /** Structured log sink (pino style) for dropped messages, bad frames and stream failures. */
  readonly log?: (obj: object, msg: string) => void;
  /**
   * Whether frames from `peer` are decoded without limit (a member). Frames from anyone else are refused (the
   * stream reset) over UNTRUSTED_FRAME_BYTES_MAX, or beyond UNTRUSTED_DECODE_BYTES_PER_SEC for all of them
   * together. Default: every peer is trusted.
   */
  readonly trusted?: (peer: string) => boolean;
  /** Encoded bytes queued for one peer before send() refuses (default QUEUED_BYTES_PER_PEER_MAX_DEFAULT). */
  readonly maxQueuedBytesPerPeer?: number;
}

/** Counters since start, for observability and tests. */
export interface TransportStats {
  framesSent: number;
  messagesSent: number;
  bytesSent: number;
  framesReceived: number;
  messagesReceived: number;
  bytesReceived: number;
  /** Messages refused by send() although connected (queue full, too large) or lost with a dying stream. */
  messagesDropped: number;
  /** Inbound streams reset because of a malformed or oversized frame (including over budget). */
  badFrames: number;
  /** Of badFrames: streams reset because a partial frame would exceed a buffer budget (connection or node). */
  framesOverBudget: number;
}

/** Per-peer send state: encoded frame entries waiting for the next flush, and the long-lived stream. */
interface Outbox {
  readonly peerKey: string;
  readonly peerId: PeerId;
  entries: Uint8Array[];
  queuedBytes: number;
  stream: Stream | undefined;
  opening: boolean;
  waitingDrain: boolean;
  /** Set while send() is refusing for a full queue, so that is logged once per episode. */
  overflowing: boolean;
}

export type ReplicaTransportOptions = FrameTransportOptions<Message>;

export class FrameTransport<M extends { readonly type: string }> {
  private readonly node: Libp2p;
  private readonly codec: FrameCodec<M>;
  private readonly opts: FrameTransportOptions<M>;
  private readonly queuedBytesMax: number;
  private readonly log: (obj: object, msg: string) => void;
  private readonly connected = new Map<string, PeerId>();
  private readonly outboxes = new Map<string, Outbox>();
  private readonly dirty = new Set<Outbox>();
  private readonly inbound = new Set<Stream>();
  private flushTimer: ReturnType<typeof setImmediate> | undefined;
  private refusalLogWindowAtMs = -Infinity;
  private refusalLinesInWindow = 0;
  private refusalsNotLogged = 0;
  /** Decode budget of untrusted peers together (bytes, refilled at UNTRUSTED_DECODE_BYTES_PER_SEC). */
  private untrustedBytes = UNTRUSTED_DECODE_BYTES_PER_SEC;
  private untrustedAtMs = 0;
  private state: 'new' | 'started' | 'stopped' = 'new';
  private stopping: Promise<void> | undefined;
  private readonly counters: TransportStats = {
    framesSent: 0, messagesSent: 0, bytesSent: 0, framesReceived: 0, messagesReceived: 0, bytesReceived: 0, messagesDropped: 0, badFrames: 0, framesOverBudget: 0,
  };

  constructor(node: Libp2p, codec: FrameCodec<M>, opts: FrameTransportOptions<M>) {
    this.node = node;
    this.codec = codec;
    this.opts = opts;
    this.queuedBytesMax = opts.maxQueuedBytesPerPeer ?? QUEUED_BYTES_PER_PEER_MAX_DEFAULT;
    this.log = opts.log ?? (() => undefined);
  }

  get stats(): Readonly<TransportStats> {
    return { ...this.counters };
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'started';
    this.node.addEventListener('peer:connect', this.onPeerConnect);
    this.node.addEventListener('peer:disconnect', this.onPeerDisconnect);
    for (const peer of this.node.getPeers()) this.connected.set(peer.toString(), peer);
    await this.node.handle(this.codec.protocol, this.onInboundStream, {
      maxInboundStreams: this.codec.streamsInboundMax,
      maxOutboundStreams: this.codec.streamsOutboundMax,
    });
  }

  /** Flushes what is queued, closes every replica stream and stops listening. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  /**
   * Queues `msg` for `to`, to go out with everything else sent to `to` in this event-loop turn. False (and
   * nothing queued) when not connected to `to`, when the peer's queue is full, or when the message alone
   * exceeds a frame. Delivery is best effort: a message queued on a stream that dies is lost.
   */
  send(to: string, msg: M): boolean {
    if (this.state !== 'started') return false;
    const peerId = this.connected.get(to);
    if (peerId === undefined) return false;
    const entry = this.codec.encodeEntry(msg);
    if (entry.length + FRAME_PREFIX_BYTES_MAX > FRAME_BYTES_MAX) {
      this.counters.messagesDropped += 1;
      this.log({ peer: to, type: msg.type, bytes: entry.length, frameBytesMax: FRAME_BYTES_MAX }, 'message too large for a frame: dropped');
      return false;
    }
    let box = this.outboxes.get(to);
    if (box === undefined) {
      box = { peerKey: to, peerId, entries: [], queuedBytes: 0, stream: undefined, opening: false, waitingDrain: false, overflowing: false };
      this.outboxes.set(to, box);
    }
    if (box.queuedBytes + entry.length > this.queuedBytesMax) {
      this.counters.messagesDropped += 1;
      if (!box.overflowing) {
        box.overflowing = true;
        this.log({ peer: to, queuedBytes: box.queuedBytes, queuedBytesMax: this.queuedBytesMax }, 'send queue full: dropping messages');
      }
      return false;
    }
    box.entries.push(entry);
    box.queuedBytes += entry.length;
    this.dirty.add(box);
    this.flushTimer ??= setImmediate(this.flushDirty);
    return true;
  }

  /** Dials a multiaddr (with /p2p/<id>) and returns the remote peer ID. Throws DialError. */
  async dial(addr: string, signal?: AbortSignal): Promise<string> {
    let ma;
    try {
      ma = multiaddr(addr);
    } catch (err) {
      throw new DialError(addr, 'invalid multiaddr', { cause: err });
    }
    try {
      const connection = await this.node.dial(ma, { signal });
      const peer = connection.remotePeer;
      // peer:connect has normally fired already; make sure send() works as soon as dial returns.
      if (connection.status === 'open' && !this.connected.has(peer.toString())) this.addPeer(peer);
      return peer.toString();
    } catch (err) {
      throw new DialError(addr, err instanceof Error ? `${err.name}: ${err.message}` : String(err), { cause: err });
    }
  }

  isConnected(peerId: string): boolean {
    return this.connected.has(peerId);
  }

  connectedPeers(): string[] {
    return [...this.connected.keys()];
  }

  /** Closes every connection to the peer (it may reconnect: gate it with denyPeer to keep it out). */
  async hangUp(peerId: string): Promise<void> {
    await this.node.hangUp(peerIdFromString(peerId));
  }

  listenAddrs(): string[] {
    return this.node.getMultiaddrs().map((ma) => ma.toString());
  }

  // ---- sending ----

  private readonly flushDirty = (): void => {
    this.flushTimer = undefined;
    const boxes = [...this.dirty];
    this.dirty.clear();
    for (const box of boxes) this.flush(box);
  };

  private flush(box: Outbox): void {
    if (this.outboxes.get(box.peerKey) !== box || box.entries.length === 0 || box.opening || box.waitingDrain) return;
    const stream = box.stream;
    if (stream === undefined || stream.writeStatus !== 'writable') {
      box.stream = undefined;
      void this.openStream(box);
      return;
    }
    while (box.entries.length > 0) {
      const { frame, messages } = this.takeFrame(box);
      let canSendMore: boolean;
      try {
        canSendMore = stream.send(frame);
      } catch (err) {
        this.counters.messagesDropped += messages;
        this.dropStream(box, stream, err, 'replica stream send failed');
        return;
      }
      this.counters.framesSent += 1;
      this.counters.messagesSent += messages;
      this.counters.bytesSent += frame.length;
      if (!canSendMore) {
        box.waitingDrain = true;
        stream.onDrain().then(
          () => {
            box.waitingDrain = false;
            this.flush(box);
          },
          (err: unknown) => {
            box.waitingDrain = false;
            this.dropStream(box, stream, err, 'replica stream closed while waiting for drain');
          },
        );
        return;
      }
    }
  }

  /** Removes the longest prefix of the queue that fits one frame and returns it length-prefixed. */
  private takeFrame(box: Outbox): { frame: Uint8Array; messages: number } {
    let count = 0;
    let bodyBytes = 0;
    for (const entry of box.entries) {
      if (count === this.codec.frameMessagesMax || bodyBytes + entry.length + FRAME_PREFIX_BYTES_MAX > FRAME_BYTES_MAX) break;
      count += 1;
      bodyBytes += entry.length;
    }
    const taken = box.entries.splice(0, count);
    box.queuedBytes -= bodyBytes;
    if (box.queuedBytes < this.queuedBytesMax / 2) box.overflowing = false;
    const prefix = framePrefix(bodyBytes);
    const frame = new Uint8Array(prefix.length + bodyBytes);
    frame.set(prefix, 0);
    let at = prefix.length;
    for (const entry of taken) {
      frame.set(entry, at);
      at += entry.length;
    }
    return { frame, messages: count };
  }

  private async openStream(box: Outbox): Promise<void> {
    const connection = this.node.getConnections(box.peerId).find((c) => c.status === 'open');
    if (connection === undefined) {
      this.dropQueue(box, {}, 'no open connection for the replica stream');
      return;
    }
    box.opening = true;
    let stream: Stream;
    try {
      stream = await connection.newStream(this.codec.protocol, { signal: AbortSignal.timeout(STREAM_OPEN_TIMEOUT_MS) });
    } catch (err) {
      box.opening = false;
      this.dropQueue(box, { err }, 'cannot open the replica stream');
      return;
    }
    box.opening = false;
    if (this.state !== 'started' || this.outboxes.get(box.peerKey) !== box) {
      stream.abort(new Error('replica transport stopped or peer gone'));
      return;
    }
    box.stream = stream;
    stream.addEventListener('close', () => {
      if (box.stream === stream) box.stream = undefined;
    });
    this.flush(box);
  }

  private dropStream(box: Outbox, stream: Stream, err: unknown, why: string): void {
    if (box.stream === stream) box.stream = undefined;
    stream.abort(err instanceof Error ? err : new Error(String(err)));
    this.dropQueue(box, { err }, why);
  }

  private dropQueue(box: Outbox, obj: object, why: string): void {
    const dropped = box.entries.length;
    this.counters.messagesDropped += dropped;
    box.entries = [];
    box.queuedBytes = 0;
    box.overflowing = false;
    this.log({ ...obj, peer: box.peerKey, dropped }, `${why}: queued messages dropped`);
  }

  // ---- receiving ----

  private readonly onInboundStream = (stream: Stream, connection: Connection): void => {
    if (this.state !== 'started') {
      stream.abort(new Error('replica transport stopped'));
      return;
    }
    // The sender is the authenticated peer of the connection, never anything inside a message.
    const from = connection.remotePeer.toString();
    const decoder = new FrameDecoder(FRAME_BYTES_MAX, frameBudgets(this.node, connection));
    this.inbound.add(stream);
    stream.addEventListener('message', (evt) => {
      const data = evt.data;
      this.onInboundData(stream, from, decoder, data instanceof Uint8Array ? [data] : data);
    });
    // The peer finished its side (stream replaced or peer stopping): finish ours so the stream is released.
    stream.addEventListener('remoteCloseWrite', () => {
      stream.close({ signal: AbortSignal.timeout(STREAM_CLOSE_TIMEOUT_MS) }).catch((err: unknown) => {
        stream.abort(err instanceof Error ? err : new Error(String(err)));
      });
    });
    stream.addEventListener('close', () => {
      this.inbound.delete(stream);
      decoder.dispose(); // a partial frame's bytes go back to the connection's and the node's budgets
    });
  };

  private onInboundData(stream: Stream, from: string, decoder: FrameDecoder, chunks: Iterable<Uint8Array>): void {
    try {
      for (const chunk of chunks) {
        this.counters.bytesReceived += chunk.length;
        for (const frame of decoder.push(chunk)) {
          this.checkUntrusted(from, frame.length);
          const messages = this.codec.decodeFrame(frame);
          this.counters.framesReceived += 1;
          this.counters.messagesReceived += messages.length;
          for (const msg of messages) this.deliver(from, msg);
        }
      }
    } catch (err) {
      this.counters.badFrames += 1;
      if (err instanceof FrameBudgetError) {
        this.counters.framesOverBudget += 1;
        this.logRefusal({ err, peer: from, budget: err.budget, limitBytes: err.limitBytes }, 'frame buffer budget used up: resetting the stream');
      } else if (err instanceof UntrustedFrameError) {
        this.logRefusal({ err, peer: from }, 'frame from a peer that is not a member refused: resetting the stream');
      } else {
        this.logRefusal({ err, peer: from }, 'malformed replica frame: resetting the stream');
      }
      decoder.dispose();
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * Logs a refused frame, at most REFUSAL_LOG_LINES_MAX lines per REFUSAL_LOG_INTERVAL_MS (a key holder can make
   * us refuse frames as fast as it opens streams); the next line logged says how many were left out.
   */
  private logRefusal(obj: object, msg: string): void {
    const now = performance.now();
    if (now - this.refusalLogWindowAtMs >= REFUSAL_LOG_INTERVAL_MS) {
      this.refusalLogWindowAtMs = now;
      this.refusalLinesInWindow = 0;
    }
    if (this.refusalLinesInWindow >= REFUSAL_LOG_LINES_MAX) {
      this.refusalsNotLogged += 1;
      return;
    }
    this.refusalLinesInWindow += 1;
    const notLogged = this.refusalsNotLogged;
    this.refusalsNotLogged = 0;
    this.log(notLogged > 0 ? { ...obj, refusalsNotLogged: notLogged } : obj, msg);
  }

  /** Throws UntrustedFrameError when a frame of `bytes` from `from` (not a member) may not be decoded now. */
  private checkUntrusted(from: string, bytes: number): void {
    if (this.opts.trusted === undefined || this.opts.trusted(from)) return;
    if (bytes > UNTRUSTED_FRAME_BYTES_MAX) throw new UntrustedFrameError(`a frame of ${bytes} bytes from a peer that is not a member (at most ${UNTRUSTED_FRAME_BYTES_MAX})`);
    const now = performance.now();
    this.untrustedBytes = Math.min(UNTRUSTED_DECODE_BYTES_PER_SEC, this.untrustedBytes + ((now - this.untrustedAtMs) / 1000) * UNTRUSTED_DECODE_BYTES_PER_SEC);
    this.untrustedAtMs = now;
    if (bytes > this.untrustedBytes) throw new UntrustedFrameError(`peers that are not members sent more than ${UNTRUSTED_DECODE_BYTES_PER_SEC} bytes a second`);
    this.untrustedBytes -= bytes;
  }

  private deliver(from: string, msg: M): void {
    try {
      this.opts.onMessage(from, msg);
    } catch (err) {
      // A bug in the receiver must not tear down the stream the rest of the batch arrives on.
      this.log({ err, peer: from, type: msg.type }, 'onMessage threw');
    }
  }

  // ---- connections ----

  private readonly onPeerConnect = (evt: CustomEvent<PeerId>): void => {
    if (!this.connected.has(evt.detail.toString())) this.addPeer(evt.detail);
  };

  private addPeer(peer: PeerId): void {
    const key = peer.toString();
    this.connected.set(key, peer);
    this.callback(() => this.opts.onPeerConnect?.(key), 'onPeerConnect');
  }

  private readonly onPeerDisconnect = (evt: CustomEvent<PeerId>): void => {
    const key = evt.detail.toString();
    if (!this.connected.delete(key)) return;
    const box = this.outboxes.get(key);
    if (box !== undefined) {
      this.outboxes.delete(key);
      this.dirty.delete(box);
      if (box.entries.length > 0) this.dropQueue(box, {}, 'peer disconnected');
      box.stream?.abort(new Error('peer disconnected'));
    }
    this.callback(() => this.opts.onPeerDisconnect?.(key), 'onPeerDisconnect');
  };

  private callback(fn: () => void, what: string): void {
    try {
      fn();
    } catch (err) {
      this.log({ err }, `${what} threw`);
    }
  }

  // ---- shutdown ----

  private async shutdown(): Promise<void> {
    const wasStarted = this.state === 'started';
    if (wasStarted && this.flushTimer !== undefined) {
      clearImmediate(this.flushTimer);
      this.flushDirty(); // what was sent before stop goes out on streams that are already open
    }
    this.state = 'stopped';
    this.flushTimer = undefined;
    this.dirty.clear();
    this.node.removeEventListener('peer:connect', this.onPeerConnect);
    this.node.removeEventListener('peer:disconnect', this.onPeerDisconnect);
    if (wasStarted) {
      await this.node.unhandle(this.codec.protocol).catch((err: unknown) => this.log({ err }, 'unhandle failed'));
    }
    const closing: Array<Promise<void>> = [];
    for (const box of this.outboxes.values()) {
      if (box.stream !== undefined) closing.push(closeStream(box.stream));
    }
    this.outboxes.clear();
    this.connected.clear();
    for (const stream of this.inbound) stream.abort(new Error('replica transport stopped'));
    this.inbound.clear();
    await Promise.all(closing);
  }
}

/** Graceful close (flushes buffered frames) with a deadline, then abort. Never rejects. */
async function closeStream(stream: Stream): Promise<void> {
  try {
    await stream.close({ signal: AbortSignal.timeout(STREAM_CLOSE_TIMEOUT_MS) });
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
  }
}

/** Factory in the libp2p style, for callers that prefer a function. */
export function replicaTransport(node: Libp2p, opts: ReplicaTransportOptions): ReplicaTransport {
  return new ReplicaTransport(node, opts);
}

/** Core replica Messages over /quorumd/replica/2.0.0. */
export class ReplicaTransport extends FrameTransport<Message> {
  constructor(node: Libp2p, opts: ReplicaTransportOptions) {
    super(node, REPLICA_CODEC, opts);
  }
}

/** Anti-entropy SyncMessages over /quorumd/sync/1.0.0 (its own streams, so bulk repair never delays a quorum write's frame). */
export class SyncTransport extends FrameTransport<SyncMessage> {
  constructor(node: Libp2p, opts: FrameTransportOptions<SyncMessage>) {
    super(node, SYNC_CODEC, { maxQueuedBytesPerPeer: SYNC_QUEUED_BYTES_PER_PEER_MAX, ...opts });
  }
}

// The transport contract: behaviour every MessageTransport implementation must share (run for each by
// transport-contract.test.ts): refusal when not connected, delivery both ways naming the sender, per-peer order,
// refusal of a message larger than a frame, a bounded per-peer queue, and hang-up / stop on either side.
import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/messages.js';
import type { VersionedRecord } from '../../src/core/record.js';
import type { MessageTransport } from '../../src/node/runtime.js';
import { FRAME_BYTES_MAX } from '../../src/wire/replica.js';
import { ack, waitFor } from './helpers.js';

export interface ContractPeer {
  readonly peerId: string;
  readonly transport: MessageTransport;
  /** Every message received, in arrival order. */
  readonly received: Array<{ readonly from: string; readonly msg: Message }>;
  /** Peers whose connection closed (onPeerDisconnect), in order. */
  readonly disconnects: string[];
  /** Connects to `other` (this side dials); resolves once both sides see the connection. */
  connect(other: ContractPeer): Promise<void>;
  /** Closes this side's connections to `peerId`. */
  hangUp(peerId: string): Promise<void>;
  /** Stops the peer: its transport and whatever carries it. */
  stop(): Promise<void>;
}

export interface TransportNetwork {
  /** A new running peer, connected to no one. */
  peer(options?: { readonly maxQueuedBytesPerPeer?: number }): Promise<ContractPeer>;
  /** Stops every peer the network started. */
  cleanup(): Promise<void>;
}

export type TransportFactory = () => TransportNetwork;

/** Time allowed for a delivery or a disconnect to be seen (loopback: milliseconds; loaded CI: more). */
const SEEN_MS = 10_000;

/** A write of a `bytes`-long value (its encoding is a little larger). */
function write(opId: number, bytes: number): Message {
  const value = new Uint8Array(bytes).map((_, i) => i % 251);
  const record: VersionedRecord = { context: { w: opId }, siblings: [{ dot: { actor: 'w', counter: opId }, value, hlc: { wallMs: 1, logical: 0 } }] };
  return { type: 'write', opId, epoch: 1, key: `k${opId}`, record };
}

const opIds = (peer: ContractPeer, from?: string): number[] =>
  peer.received.filter((r) => from === undefined || r.from === from).map((r) => (r.msg as { opId: number }).opId);

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export function transportContract(name: string, factory: TransportFactory): void {
  describe(`MessageTransport contract: ${name}`, () => {
    let network: TransportNetwork | undefined;
    const net = (): TransportNetwork => (network ??= factory());
    afterEach(async () => {
      const current = network;
      network = undefined;
      await current?.cleanup();
    });

    it('refuses to send to a peer it is not connected to, and delivers nothing', async () => {
      const [a, b] = await Promise.all([net().peer(), net().peer()]);
      expect(a.transport.isConnected(b.peerId)).toBe(false);
      expect(a.transport.send(b.peerId, ack(1))).toBe(false);
      await nextTurn();
      expect(b.received).toEqual([]);
    });

    it('delivers both ways once connected, naming the connection peer as the sender', async () => {
      const [a, b] = await Promise.all([net().peer(), net().peer()]);
      await a.connect(b);
      expect(a.transport.isConnected(b.peerId)).toBe(true);
      expect(b.transport.isConnected(a.peerId)).toBe(true);
      expect(a.transport.send(b.peerId, ack(1))).toBe(true);
      expect(b.transport.send(a.peerId, ack(2))).toBe(true);
      await waitFor(() => a.received.length === 1 && b.received.length === 1, 'one message each way', SEEN_MS);
      expect(b.received).toEqual([{ from: a.peerId, msg: ack(1) }]);
      expect(a.received).toEqual([{ from: b.peerId, msg: ack(2) }]);
    });

    it('keeps each peer\'s messages in the order sent, across turns and interleaved with other peers', async () => {
      const [a, b, c] = await Promise.all([net().peer(), net().peer(), net().peer()]);
      await a.connect(b);
      await a.connect(c);
      const perTurn = 100;
      const turns = 4;
      for (let turn = 0; turn < turns; turn++) {
        for (let i = 0; i < perTurn; i++) {
          const opId = turn * perTurn + i;
          expect(a.transport.send(opId % 2 === 0 ? b.peerId : c.peerId, ack(opId))).toBe(true);
        }
        await nextTurn();
      }
      const all = Array.from({ length: turns * perTurn }, (_, i) => i);
      await waitFor(() => b.received.length + c.received.length === all.length, 'every message', SEEN_MS);
      expect(opIds(b)).toEqual(all.filter((i) => i % 2 === 0));
      expect(opIds(c)).toEqual(all.filter((i) => i % 2 === 1));
    });

    it('delivers a 1 MiB value intact, refuses a message larger than a frame, and keeps delivering after it', async () => {
      const [a, b] = await Promise.all([net().peer(), net().peer()]);
      await a.connect(b);
      const large = write(1, 1024 * 1024);
      expect(a.transport.send(b.peerId, large)).toBe(true);
      expect(a.transport.send(b.peerId, write(2, FRAME_BYTES_MAX))).toBe(false);
      expect(a.transport.send(b.peerId, ack(3))).toBe(true);
      await waitFor(() => b.received.length === 2, 'the large write and the ack', SEEN_MS);
      expect(opIds(b)).toEqual([1, 3]);
      const got = b.received[0]?.msg;
      if (got?.type !== 'write' || large.type !== 'write') throw new Error(`expected a write, got ${got?.type}`);
      const [gotValue, sentValue] = [got.record.siblings[0]?.value, large.record.siblings[0]?.value];
      // Buffer.equals: vitest's toEqual takes seconds on large typed arrays.
      expect(gotValue instanceof Uint8Array && sentValue instanceof Uint8Array && Buffer.from(gotValue).equals(sentValue)).toBe(true);
    });

    it('refuses to queue beyond its per-peer limit, delivers what it took in order, then takes more', async () => {
      const a = await net().peer({ maxQueuedBytesPerPeer: 1000 });
      const b = await net().peer();
      await a.connect(b);
      const accepted: number[] = [];
      for (let i = 0; i < 1000; i++) if (a.transport.send(b.peerId, ack(i))) accepted.push(i);
      expect(accepted.length).toBeGreaterThan(10);
      expect(accepted.length).toBeLessThan(1000);
      expect(accepted).toEqual(Array.from({ length: accepted.length }, (_, i) => i)); // a prefix: nothing after a refusal
      await waitFor(() => b.received.length === accepted.length, 'the accepted messages', SEEN_MS);
      expect(opIds(b)).toEqual(accepted);
      await waitFor(() => a.transport.send(b.peerId, ack(5000)), 'room again after the flush', SEEN_MS);
      await waitFor(() => b.received.length === accepted.length + 1, 'the later message', SEEN_MS);
    });

    it('on hang-up by either side: both see the peer gone, sends are refused, a new connection delivers again', async () => {
      const [a, b] = await Promise.all([net().peer(), net().peer()]);
      await a.connect(b);
      expect(a.transport.send(b.peerId, ack(1))).toBe(true);
      await waitFor(() => b.received.length === 1, 'first message', SEEN_MS);

      await a.hangUp(b.peerId);
      await waitFor(() => !a.transport.isConnected(b.peerId) && !b.transport.isConnected(a.peerId), 'both sides see the hang-up', SEEN_MS);
      await waitFor(() => a.disconnects.includes(b.peerId) && b.disconnects.includes(a.peerId), 'onPeerDisconnect on both sides', SEEN_MS);
      expect(a.transport.send(b.peerId, ack(2))).toBe(false);
      expect(b.transport.send(a.peerId, ack(2))).toBe(false);

      await a.connect(b);
      expect(a.transport.send(b.peerId, ack(3))).toBe(true);
      await waitFor(() => b.received.length === 2, 'after reconnecting', SEEN_MS);

      await b.hangUp(a.peerId); // now the receiving side hangs up
      await waitFor(() => !a.transport.isConnected(b.peerId), 'the dialer sees the remote hang-up', SEEN_MS);
      expect(a.transport.send(b.peerId, ack(4))).toBe(false);
      await a.connect(b);
      expect(a.transport.send(b.peerId, ack(5))).toBe(true);
      await waitFor(() => b.received.length === 3, 'after the second reconnect', SEEN_MS);
      expect(opIds(b)).toEqual([1, 3, 5]);
      expect(a.received).toEqual([]);
    });

    it('after a peer stops: it refuses to send, the other side sees it gone and refuses too, and it takes no connection', async () => {
      const [a, b, c] = await Promise.all([net().peer(), net().peer(), net().peer()]);
      await a.connect(b);
      await a.connect(c);
      await b.stop();
      expect(b.transport.send(a.peerId, ack(1))).toBe(false);
      await waitFor(() => !a.transport.isConnected(b.peerId) && a.disconnects.includes(b.peerId), 'the stop seen by the other side', SEEN_MS);
      expect(a.transport.send(b.peerId, ack(2))).toBe(false);
      await expect(a.connect(b)).rejects.toThrow(); // a stopped peer takes no new connection
      expect(a.transport.send(c.peerId, ack(3))).toBe(true); // other connections are unaffected
      await waitFor(() => c.received.length === 1, 'delivery to the remaining peer', SEEN_MS);
      expect(a.received).toEqual([]);
    });
  });
}

// ReplicaTransport over real libp2p nodes on 127.0.0.1: delivery in all directions, batching into frames,
// per-peer order, large records, disconnects and sends to unconnected peers.
import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/messages.js';
import type { VersionedRecord } from '../../src/core/record.js';
import { generateClusterKey } from '../../src/net/clusterkey.js';
import { Cleanup, ack, startPeer, waitFor } from './helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const clusterKey = generateClusterKey();

describe('ReplicaTransport', () => {
  it('delivers A→B, B→A and A→C with the connection peer as sender', async () => {
    const [a, b, c] = await Promise.all([startPeer(cleanup, clusterKey), startPeer(cleanup, clusterKey), startPeer(cleanup, clusterKey)]);
    expect(await a.transport.dial(b.addr)).toBe(b.peerId);
    expect(await a.transport.dial(c.addr)).toBe(c.peerId);
    await waitFor(() => b.transport.isConnected(a.peerId) && c.transport.isConnected(a.peerId), 'inbound side sees the connection');

    expect(a.transport.send(b.peerId, ack(1))).toBe(true);
    expect(b.transport.send(a.peerId, ack(2))).toBe(true);
    expect(a.transport.send(c.peerId, ack(3))).toBe(true);
    await waitFor(() => a.received.length === 1 && b.received.length === 1 && c.received.length === 1, 'three deliveries');

    expect(b.received).toEqual([{ from: a.peerId, msg: ack(1) }]);
    expect(a.received).toEqual([{ from: b.peerId, msg: ack(2) }]);
    expect(c.received).toEqual([{ from: a.peerId, msg: ack(3) }]);
    expect(a.transport.connectedPeers().sort()).toEqual([b.peerId, c.peerId].sort());
    expect(b.connects).toEqual([a.peerId]);
    expect(a.transport.listenAddrs().every((addr) => addr.endsWith(`/p2p/${a.peerId}`))).toBe(true);
  });

  it('batches one turn of sends into few frames and keeps per-peer order across turns', async () => {
    const [a, b] = await Promise.all([startPeer(cleanup, clusterKey), startPeer(cleanup, clusterKey)]);
    await a.transport.dial(b.addr);
    const count = 1000;
    for (let i = 0; i < count; i++) expect(a.transport.send(b.peerId, ack(i))).toBe(true);
    await waitFor(() => b.received.length === count, '1000 messages');
    const firstBatchFrames = a.transport.stats.framesSent;
    expect(firstBatchFrames).toBe(1); // the stream opens while the whole turn waits in the queue
    expect(b.transport.stats.framesReceived).toBe(firstBatchFrames);

    // More turns on the now-open stream: each turn is exactly one frame, order preserved throughout.
    for (let turn = 0; turn < 5; turn++) {
      for (let i = 0; i < 100; i++) a.transport.send(b.peerId, ack(count + turn * 100 + i));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(() => b.received.length === count + 500, 'all turns');
    expect(a.transport.stats.framesSent).toBe(firstBatchFrames + 5);
    expect(b.received.map((r) => (r.msg as { opId: number }).opId)).toEqual(Array.from({ length: count + 500 }, (_, i) => i));
  });

  it('delivers a record with a 1 MiB value', async () => {
    const [a, b] = await Promise.all([startPeer(cleanup, clusterKey), startPeer(cleanup, clusterKey)]);
    await a.transport.dial(b.addr);
    const value = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
    const record: VersionedRecord = { context: { [a.peerId]: 7 }, siblings: [{ dot: { actor: a.peerId, counter: 7 }, value, hlc: { wallMs: Date.now(), logical: 0 } }] };
    const msg: Message = { type: 'write', opId: 9, epoch: 1, key: 'big', record };
    expect(a.transport.send(b.peerId, msg)).toBe(true);
    expect(a.transport.send(b.peerId, ack(10))).toBe(true);
    await waitFor(() => b.received.length === 2, 'large record');
    const got = b.received[0]?.msg;
    if (got?.type !== 'write') throw new Error(`expected a write, got ${got?.type}`);
    const gotValue = got.record.siblings[0]?.value;
    // Compare the 1 MiB value with Buffer.equals: vitest's toEqual takes seconds on large typed arrays.
    expect(gotValue instanceof Uint8Array && Buffer.from(gotValue).equals(value)).toBe(true);
    expect({ ...got, record: { ...got.record, siblings: [] } }).toEqual({ ...msg, record: { ...record, siblings: [] } });
    expect(b.received[1]?.msg).toEqual(ack(10));
  });

  it('splits a turn that exceeds one frame into several frames', async () => {
    const [a, b] = await Promise.all([startPeer(cleanup, clusterKey), startPeer(cleanup, clusterKey)]);
    await a.transport.dial(b.addr);
    const value = new Uint8Array(1024 * 1024);
    const write = (opId: number): Message => ({
      type: 'write', opId, epoch: 1, key: `k${opId}`,
      record: { context: { w: opId }, siblings: [{ dot: { actor: 'w', counter: opId }, value, hlc: { wallMs: 1, logical: 0 } }] },
    });
    for (let i = 1; i <= 6; i++) expect(a.transport.send(b.peerId, write(i))).toBe(true);
    await waitFor(() => b.received.length === 6, 'six 1 MiB writes');
    expect(a.transport.stats.framesSent).toBeGreaterThanOrEqual(2);
    expect(b.received.map((r) => (r.msg as { opId: number }).opId)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses to queue beyond maxQueuedBytesPerPeer', async () => {
    const a = await startPeer(cleanup, clusterKey, { transport: { maxQueuedBytesPerPeer: 1000 } });
    const b = await startPeer(cleanup, clusterKey);
    await a.transport.dial(b.addr);
    let accepted = 0;
    for (let i = 0; i < 1000; i++) if (a.transport.send(b.peerId, ack(i))) accepted += 1;
    expect(accepted).toBeGreaterThan(10);
    expect(accepted).toBeLessThan(1000);
    expect(a.logs.filter((l) => l.msg.includes('queue full'))).toHaveLength(1);
    await waitFor(() => b.received.length === accepted, 'accepted messages');
    expect(a.transport.send(b.peerId, ack(5000))).toBe(true); // room again after the flush
  });

  it('returns false for an unconnected peer, and after the remote stops (with onPeerDisconnect)', async () => {
    const [a, b, c] = await Promise.all([startPeer(cleanup, clusterKey), startPeer(cleanup, clusterKey), startPeer(cleanup, clusterKey)]);
    expect(a.transport.send(c.peerId, ack(1))).toBe(false);
    expect(a.transport.isConnected(c.peerId)).toBe(false);
    await a.transport.dial(b.addr);
    expect(a.transport.send(b.peerId, ack(1))).toBe(true);
    await waitFor(() => b.received.length === 1, 'first message');

    await b.transport.stop();
    await b.node.stop();
    await waitFor(() => !a.transport.send(b.peerId, ack(2)), 'send refuses after remote stop');
    await waitFor(() => a.disconnects.includes(b.peerId), 'onPeerDisconnect');
    expect(a.transport.isConnected(b.peerId)).toBe(false);
    expect(c.received).toEqual([]);
  });

  it('reopens the stream after it dies and after hangUp + redial', async () => {
    const [a, b] = await Promise.all([startPeer(cleanup, clusterKey), startPeer(cleanup, clusterKey)]);
    await a.transport.dial(b.addr);
    a.transport.send(b.peerId, ack(1));
    await waitFor(() => b.received.length === 1, 'first');
    // Kill the replica stream from the receiving side.
    for (const conn of b.node.getConnections()) for (const s of conn.streams) if (s.protocol === '/quorumd/replica/2.0.0') s.abort(new Error('test kill'));
    await waitFor(() => a.node.getConnections().every((c) => c.streams.every((s) => s.protocol !== '/quorumd/replica/2.0.0')), 'stream gone on sender');
    expect(a.transport.send(b.peerId, ack(2))).toBe(true);
    await waitFor(() => b.received.length === 2, 'after reopen');

    await a.transport.hangUp(b.peerId);
    await waitFor(() => !a.transport.isConnected(b.peerId), 'hung up');
    expect(a.transport.send(b.peerId, ack(3))).toBe(false);
    await a.transport.dial(b.addr);
    expect(a.transport.send(b.peerId, ack(4))).toBe(true);
    await waitFor(() => b.received.length === 3, 'after redial');
    expect(b.received.map((r) => (r.msg as { opId: number }).opId)).toEqual([1, 2, 4]);
  });

  it('stop is idempotent and send after stop returns false', async () => {
    const [a, b] = await Promise.all([startPeer(cleanup, clusterKey), startPeer(cleanup, clusterKey)]);
    await a.transport.dial(b.addr);
    a.transport.send(b.peerId, ack(1));
    await Promise.all([a.transport.stop(), a.transport.stop()]);
    await a.transport.stop();
    expect(a.transport.send(b.peerId, ack(2))).toBe(false);
  });
});

// Unfinished frames: peers announcing the largest frame on every stream they may open used to make the receiver
// allocate each announced length at once (10 connections x 15 streams x 4 MiB held 660 MB). Now a partial frame
// costs what was actually sent, within a per-connection and a per-node budget; over budget, the stream is reset.
import type { Stream } from '@libp2p/interface';
import { afterEach, describe, expect, it } from 'vitest';
import type { SyncMessage } from '../../src/core/anti-entropy.js';
import { frameBudgets } from '../../src/net/budget.js';
import { generateClusterKey } from '../../src/net/clusterkey.js';
import {
  FRAME_BUFFER_BYTES_PER_CONNECTION_MAX,
  FRAME_BUFFER_INITIAL_BYTES,
  FRAME_BYTES_MAX,
  REPLICA_PROTOCOL,
  REPLICA_STREAMS_INBOUND_MAX,
  SYNC_PROTOCOL,
} from '../../src/net/constants.js';
import { framePrefix } from '../../src/net/frame-decoder.js';
import { SyncTransport } from '../../src/net/transport.js';
import { Cleanup, ack, startPeer, waitFor, type TestPeer } from '../net/helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const MiB = 1024 * 1024;

async function sendAll(stream: Stream, bytes: Uint8Array): Promise<void> {
  if (!stream.send(bytes)) await stream.onDrain();
}

interface Receiver extends TestPeer {
  readonly sync: SyncTransport;
  readonly syncLogs: Array<{ obj: object; msg: string }>;
}

async function receiverWithSync(key: Uint8Array): Promise<Receiver> {
  const receiver = await startPeer(cleanup, key);
  const syncLogs: Array<{ obj: object; msg: string }> = [];
  const sync = new SyncTransport(receiver.node, { onMessage: (_from: string, _msg: SyncMessage) => undefined, log: (obj, msg) => syncLogs.push({ obj, msg }) });
  await sync.start();
  cleanup.add(() => sync.stop());
  return { ...receiver, sync, syncLogs };
}

describe('partial frames', () => {
  it('announcing the largest frame on every stream holds only the bytes sent', async () => {
    const key = generateClusterKey();
    const receiver = await receiverWithSync(key);
    const attackers = await Promise.all([0, 1, 2, 3].map(() => startPeer(cleanup, key)));
    const before = process.memoryUsage().arrayBuffers;
    const streamsPerConnection = 2 * REPLICA_STREAMS_INBOUND_MAX - 1; // 15: every replica stream and all but one sync stream
    for (const attacker of attackers) {
      await attacker.transport.dial(receiver.addr);
      for (let i = 0; i < streamsPerConnection; i++) {
        const stream = await attacker.node.dialProtocol(receiver.node.peerId, i < REPLICA_STREAMS_INBOUND_MAX ? REPLICA_PROTOCOL : SYNC_PROTOCOL);
        await sendAll(stream, Uint8Array.from([...framePrefix(FRAME_BYTES_MAX), 1]));
      }
    }
    const connection = receiver.node.getConnections(attackers[0]!.node.peerId)[0]!;
    const nodeBudget = frameBudgets(receiver.node, connection)[1]!;
    const streams = attackers.length * streamsPerConnection;
    await waitFor(() => nodeBudget.usedBytes === streams * FRAME_BUFFER_INITIAL_BYTES, 'every announced frame started');
    // Allocating each announced length would take 60 x 4 MiB = 240 MiB.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * MiB);
    expect(receiver.transport.stats.badFrames).toBe(0);
    // The receiver still serves others.
    const friend = await startPeer(cleanup, key);
    await friend.transport.dial(receiver.addr);
    expect(friend.transport.send(receiver.peerId, ack(7))).toBe(true);
    await waitFor(() => receiver.received.some((r) => r.from === friend.peerId), 'friend delivers');
    // Closing the attackers' connections gives every byte back.
    for (const attacker of attackers) await attacker.node.hangUp(receiver.node.peerId);
    await waitFor(() => nodeBudget.usedBytes === 0, 'budget released on close');
  });

  it('a connection sending past its budget gets the stream reset with a typed error; the budget comes back', async () => {
    const key = generateClusterKey();
    const receiver = await receiverWithSync(key);
    const attacker = await startPeer(cleanup, key);
    await attacker.transport.dial(receiver.addr);
    const fullFrames = Math.floor(FRAME_BUFFER_BYTES_PER_CONNECTION_MAX / FRAME_BYTES_MAX);
    const streams: Stream[] = [];
    for (let i = 0; i < fullFrames; i++) {
      const stream = await attacker.node.dialProtocol(receiver.node.peerId, REPLICA_PROTOCOL);
      streams.push(stream);
      await sendAll(stream, framePrefix(FRAME_BYTES_MAX));
      for (let sent = 0; sent < FRAME_BYTES_MAX - 1; sent += MiB) await sendAll(stream, new Uint8Array(Math.min(MiB, FRAME_BYTES_MAX - 1 - sent)));
    }
    const connection = receiver.node.getConnections(attacker.node.peerId)[0]!;
    const [connectionBudget, nodeBudget] = frameBudgets(receiver.node, connection);
    await waitFor(() => connectionBudget!.usedBytes === fullFrames * FRAME_BYTES_MAX, 'full frames buffered', 30_000);
    const over = await attacker.node.dialProtocol(receiver.node.peerId, SYNC_PROTOCOL);
    await sendAll(over, Uint8Array.from([...framePrefix(FRAME_BYTES_MAX), 1]));
    await waitFor(() => receiver.sync.stats.framesOverBudget === 1, 'over-budget stream refused');
    await waitFor(() => over.status !== 'open', 'over-budget stream reset');
    expect(receiver.syncLogs.find((l) => l.msg.includes('budget'))?.obj).toMatchObject({ budget: 'connection', limitBytes: FRAME_BUFFER_BYTES_PER_CONNECTION_MAX });
    // The streams within budget are untouched, and nothing of the refused one is held.
    expect(streams.every((s) => s.status === 'open')).toBe(true);
    expect(receiver.transport.stats.badFrames).toBe(0);
    expect(connectionBudget!.usedBytes).toBe(fullFrames * FRAME_BYTES_MAX);
    expect(nodeBudget!.usedBytes).toBe(fullFrames * FRAME_BYTES_MAX);
    for (const stream of streams) stream.abort(new Error('attacker done'));
    await waitFor(() => connectionBudget!.usedBytes === 0 && nodeBudget!.usedBytes === 0, 'budgets released');
  });
});

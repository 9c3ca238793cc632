// The network boundary: a wrong cluster key cannot connect (and fails fast), denied peers are refused, and
// malformed or oversized frames only reset the offending stream while the node keeps working.
import { afterEach, describe, expect, it } from 'vitest';
import { REPLICA_PROTOCOL, FRAME_BYTES_MAX } from '../../src/net/constants.js';
import { generateClusterKey } from '../../src/net/clusterkey.js';
import { DialError } from '../../src/net/errors.js';
import { framePrefix } from '../../src/net/frame-decoder.js';
import { Cleanup, ack, startPeer, waitFor } from './helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const clusterKey = generateClusterKey();

describe('cluster key', () => {
  it('a node with a different cluster key cannot connect, and the dial fails fast', async () => {
    const member = await startPeer(cleanup, clusterKey);
    const stranger = await startPeer(cleanup, generateClusterKey());
    for (let attempt = 0; attempt < 3; attempt++) {
      for (const [from, to] of [[stranger, member], [member, stranger]] as const) {
        const startedMs = Date.now();
        await expect(from.transport.dial(to.addr)).rejects.toBeInstanceOf(DialError);
        expect(Date.now() - startedMs).toBeLessThan(5_000);
      }
    }
    expect(stranger.transport.send(member.peerId, ack(1))).toBe(false);
    expect(member.transport.send(stranger.peerId, ack(1))).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(member.received).toEqual([]);
    expect(stranger.received).toEqual([]);
    expect(member.transport.connectedPeers()).toEqual([]);
  });

  it('denyPeer refuses a peer that holds the key, in both directions', async () => {
    const outsider = await startPeer(cleanup, clusterKey);
    const guarded = await startPeer(cleanup, clusterKey, { denyPeer: (peer) => peer === outsider.peerId });
    // Outbound from the guarded node is refused before dialing.
    await expect(guarded.transport.dial(outsider.addr)).rejects.toBeInstanceOf(DialError);
    // Inbound is refused after the Noise handshake identifies the peer. The dialer may briefly believe it is
    // connected (the muxer is negotiated inside the handshake), until the guarded side closes the socket.
    await outsider.transport.dial(guarded.addr).catch(() => undefined);
    outsider.transport.send(guarded.peerId, ack(1));
    await waitFor(() => !outsider.transport.isConnected(guarded.peerId), 'outsider sees the connection refused');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(guarded.transport.isConnected(outsider.peerId)).toBe(false);
    expect(guarded.connects).toEqual([]);
    expect(guarded.received).toEqual([]);
  });
});

describe('malformed frames', () => {
  it('resets only the offending stream; the receiver keeps working', async () => {
    const [receiver, attacker, friend] = await Promise.all([
      startPeer(cleanup, clusterKey),
      startPeer(cleanup, clusterKey),
      startPeer(cleanup, clusterKey),
    ]);
    await attacker.transport.dial(receiver.addr);
    await friend.transport.dial(receiver.addr);

    const garbage = Uint8Array.from([0x0a, 0xff, 0xff, 0x12, 0x00, 0x99]);
    const rawFrames: Array<[string, Uint8Array]> = [
      ['garbage protobuf', new Uint8Array([...framePrefix(garbage.length), ...garbage])],
      ['oversized length prefix', framePrefix(FRAME_BYTES_MAX * 16)],
      ['over-long varint', new Uint8Array(8).fill(0xff)],
      ['unknown message type', new Uint8Array([...framePrefix(4), 0x0a, 0x02, 0x08, 0x63])],
    ];
    for (const [what, bytes] of rawFrames) {
      const before = receiver.transport.stats.badFrames;
      const stream = await attacker.node.dialProtocol(receiver.node.peerId, REPLICA_PROTOCOL);
      stream.send(bytes);
      await waitFor(() => receiver.transport.stats.badFrames === before + 1, `receiver rejects ${what}`);
      await waitFor(() => stream.status !== 'open', `${what}: attacker stream reset`);
    }
    expect(receiver.logs.filter((l) => l.msg.includes('malformed'))).toHaveLength(rawFrames.length);

    expect(friend.transport.send(receiver.peerId, ack(42))).toBe(true);
    await waitFor(() => receiver.received.length === 1, 'valid message after the garbage');
    expect(receiver.received).toEqual([{ from: friend.peerId, msg: ack(42) }]);
    // The attacker's connection survives and its own transport still works on a fresh stream.
    expect(attacker.transport.send(receiver.peerId, ack(43))).toBe(true);
    await waitFor(() => receiver.received.length === 2, 'attacker transport still usable');
    expect(receiver.received[1]).toEqual({ from: attacker.peerId, msg: ack(43) });
  });

  it('a frame split across many small writes is reassembled', async () => {
    const [receiver, sender] = await Promise.all([startPeer(cleanup, clusterKey), startPeer(cleanup, clusterKey)]);
    await sender.transport.dial(receiver.addr);
    const { encodeFrame } = await import('../../src/wire/replica.js');
    const body = encodeFrame([ack(1), ack(2), ack(3)]);
    const bytes = new Uint8Array([...framePrefix(body.length), ...body]);
    const stream = await sender.node.dialProtocol(receiver.node.peerId, REPLICA_PROTOCOL);
    for (const byte of bytes) {
      stream.send(Uint8Array.of(byte));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await waitFor(() => receiver.received.length === 3, 'reassembled frame');
    expect(receiver.received.map((r) => r.msg)).toEqual([ack(1), ack(2), ack(3)]);
    await stream.close();
  });
});

// Log lines a key holder can make a daemon write. A stream reset for a malformed (or refused) frame was logged
// at warn level every time: a key holder reopening a stream and sending one bad byte, over and over, wrote a
// log line per round trip (to the journal or log file, at no cost to itself). Like the handshake refusals, these
// lines must be rate-limited (counted, not each written). Loopback only.
import { afterEach, describe, expect, it } from 'vitest';
import { generateClusterKey } from '../../src/net/clusterkey.js';
import { REPLICA_PROTOCOL } from '../../src/net/constants.js';
import { framePrefix } from '../../src/net/frame-decoder.js';
import { Cleanup, startPeer, waitFor } from '../net/helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('streams reset for bad frames', () => {
  it('are logged a bounded number of times, with how many there were', async () => {
    const key = generateClusterKey();
    const receiver = await startPeer(cleanup, key);
    const attacker = await startPeer(cleanup, key);
    await attacker.transport.dial(receiver.addr);
    // 1. 200 times: open a replica stream, send a one-byte frame that is no protobuf message.
    const rounds = 200;
    for (let i = 0; i < rounds; i++) {
      const stream = await attacker.node.dialProtocol(receiver.node.peerId, REPLICA_PROTOCOL);
      stream.send(Uint8Array.from([...framePrefix(1), 0xff]));
      await waitFor(() => receiver.transport.stats.badFrames === i + 1, 'the bad frame refused');
    }
    // 2. Every stream was reset (counted) ...
    expect(receiver.transport.stats.badFrames).toBe(rounds);
    // 3. ... but the log holds a few lines, not one per reset.
    const lines = receiver.logs.filter((l) => l.msg.includes('resetting the stream'));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(8);
  }, 60_000);
});

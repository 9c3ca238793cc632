// Devices without the cluster key: refused within one round trip of the handshake with a clear error on both
// sides, and no per-connection state is left behind (the pnet ciphers each connection kept in a shared WASM
// memory, until ~512k connections killed the daemon with an uncaught RangeError).
import { createRequire } from 'node:module';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { afterEach, describe, expect, it } from 'vitest';
import { generateClusterKey } from '../../src/net/clusterkey.js';
import { ClusterKeyMismatchError, DialError } from '../../src/net/errors.js';
import { HANDSHAKE_PROTOCOL, HANDSHAKE_REFUSAL_LOG_INTERVAL_MS, clusterPrologue, refusalLogger } from '../../src/net/handshake.js';
import { Cleanup, ack, startPeer, waitFor } from '../net/helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** A wrong key is refused at the handshake's first encrypted message: one loopback round trip, not a timeout. */
const WRONG_KEY_REFUSAL_MS_MAX = 1_000;

/** The WASM stream cipher @libp2p/pnet used (module-global allocator in one shared WebAssembly memory). */
const XSalsa20 = createRequire(import.meta.url)('xsalsa20') as new (nonce: Uint8Array, key: Uint8Array) => { _xor: { _pointer: number }; finalize(): void };

/** Where the next xsalsa20 cipher of this process would be placed in the library's shared WASM memory. */
function xsalsaHead(): number {
  const probe = new XSalsa20(new Uint8Array(24), new Uint8Array(32));
  const pointer = probe._xor._pointer;
  probe.finalize();
  return pointer;
}

describe('cluster-key handshake', () => {
  it('a device without the key is refused promptly, both ways, with the reason in the error and the log', async () => {
    const member = await startPeer(cleanup, generateClusterKey(), { nodeLog: true });
    const stranger = await startPeer(cleanup, generateClusterKey(), { nodeLog: true });
    for (let attempt = 0; attempt < 5; attempt++) {
      for (const [from, to] of [[stranger, member], [member, stranger]] as const) {
        const startedMs = performance.now();
        const error = await from.transport.dial(to.addr).then(() => undefined, (err: unknown) => err);
        expect(performance.now() - startedMs).toBeLessThan(WRONG_KEY_REFUSAL_MS_MAX);
        expect(error).toBeInstanceOf(DialError);
        expect((error as DialError).message).toContain('does not hold this cluster key');
      }
    }
    // Each side logged the refusal once (the rest of the minute is counted, not logged).
    await waitFor(() => member.nodeLogs.length > 0 && stranger.nodeLogs.length > 0, 'both log the refused handshake');
    expect(member.nodeLogs).toHaveLength(1);
    expect(member.nodeLogs[0]?.msg).toContain('cluster key');
    expect(stranger.nodeLogs).toHaveLength(1);
    expect(stranger.nodeLogs[0]?.msg).toContain('does not hold this cluster key');
    expect(stranger.nodeLogs[0]?.obj).toMatchObject({ direction: 'outbound', keyMismatch: true, remoteAddr: expect.stringContaining('/ip4/127.0.0.1/') });
    // A responder only sees the dialer drop the handshake; it says so, and what it most often means.
    const listener = await startPeer(cleanup, generateClusterKey(), { nodeLog: true });
    await expect(stranger.transport.dial(listener.addr)).rejects.toThrow('does not hold this cluster key');
    await waitFor(() => listener.nodeLogs.length > 0, 'the responder logs the dropped handshake');
    expect(listener.nodeLogs[0]?.msg).toContain('cluster key');
    expect(listener.nodeLogs[0]?.obj).toMatchObject({ direction: 'inbound', remoteAddr: expect.stringContaining('/ip4/127.0.0.1/') });
    expect(member.transport.connectedPeers()).toEqual([]);
    expect(stranger.transport.send(member.peerId, ack(1))).toBe(false);
    expect(member.received).toEqual([]);
  });

  it('a libp2p node speaking plain Noise (another handshake version) is refused at negotiation', async () => {
    const member = await startPeer(cleanup, generateClusterKey());
    const plain = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], connectionMonitor: { enabled: false } });
    cleanup.add(async () => {
      await plain.stop();
    });
    const startedMs = performance.now();
    await expect(plain.dial(multiaddr(member.addr), { signal: AbortSignal.timeout(5_000) })).rejects.toThrow();
    expect(performance.now() - startedMs).toBeLessThan(WRONG_KEY_REFUSAL_MS_MAX);
    expect(member.transport.connectedPeers()).toEqual([]);
  });

  it('connections keep no cipher state in the shared WASM memory', async () => {
    const key = generateClusterKey();
    const [a, b] = await Promise.all([startPeer(cleanup, key), startPeer(cleanup, key)]);
    await a.transport.dial(b.addr); // warm up
    await a.transport.hangUp(b.peerId);
    const headBefore = xsalsaHead();
    const connections = 40;
    for (let i = 0; i < connections; i++) {
      await a.transport.dial(b.addr);
      await a.transport.hangUp(b.peerId);
    }
    await waitFor(() => !b.transport.isConnected(a.peerId), 'last connection closed');
    // pnet kept 64 B per cipher, two ciphers per connection on each side (both sides are in this process).
    expect(xsalsaHead() - headBefore).toBe(0);
  });

  it('the prologue is a versioned one-way hash of the secret', () => {
    const key = generateClusterKey();
    const prologue = clusterPrologue(key);
    expect(prologue).toHaveLength(32);
    expect(Buffer.from(prologue).equals(Buffer.from(clusterPrologue(key)))).toBe(true);
    expect(Buffer.from(prologue).equals(Buffer.from(clusterPrologue(generateClusterKey())))).toBe(false);
    // Trailing whitespace or CRLF in the key file does not change it.
    const crlf = new TextEncoder().encode(`${new TextDecoder().decode(key).replaceAll('\n', '\r\n')}\r\n`);
    expect(Buffer.from(clusterPrologue(crlf)).equals(Buffer.from(prologue))).toBe(true);
    expect(HANDSHAKE_PROTOCOL).toMatch(/^\/quorumd\/.+\/\d+\.\d+\.\d+$/);
  });

  it('refusals are logged at most once per interval, with the count', () => {
    const lines: Array<{ obj: object; msg: string }> = [];
    let now = 0;
    const onRefused = refusalLogger((obj, msg) => lines.push({ obj, msg }), () => now);
    const error = new ClusterKeyMismatchError('/ip4/10.0.0.9/tcp/5000');
    const refusal = { direction: 'inbound' as const, remoteAddr: error.remoteAddr, keyMismatch: true, message: error.message };
    for (let i = 0; i < 100; i++) {
      onRefused(refusal);
      now += 1_000;
    }
    expect(lines.length).toBeLessThanOrEqual(Math.ceil((100 * 1_000) / HANDSHAKE_REFUSAL_LOG_INTERVAL_MS) + 1);
    expect(lines[0]?.obj).toMatchObject({ refused: 1, remoteAddr: '/ip4/10.0.0.9/tcp/5000' });
    expect(lines[1]?.obj).toMatchObject({ refused: HANDSHAKE_REFUSAL_LOG_INTERVAL_MS / 1_000 });
  });
});

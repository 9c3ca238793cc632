// Silent TCP connections from devices without the key: libp2p allowed 10 pending inbound upgrades for 10 s
// (5 s here), so 12 sockets that never speak blocked every join. Now pending upgrades are capped per remote host
// and in total with room for a LAN, and a silent socket is dropped after INBOUND_UPGRADE_TIMEOUT_MS.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { generateClusterKey } from '../../src/net/clusterkey.js';
import { INBOUND_PENDING_PER_HOST_MAX, INBOUND_UPGRADE_TIMEOUT_MS } from '../../src/net/constants.js';
import { Cleanup, ack, startPeer, waitFor } from '../net/helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const SILENT_SOCKETS = 20;

interface Silent {
  readonly socket: Socket;
  closedAtMs: number | undefined;
}

/** Opens a TCP connection that never sends a byte, from `localAddress` (a loopback address) to `port` on 127.0.0.1. */
async function silentSocket(port: number, localAddress: string): Promise<Silent> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  const silent: Silent = { socket, closedAtMs: undefined };
  socket.on('error', () => undefined);
  socket.on('close', () => (silent.closedAtMs = performance.now()));
  cleanup.add(async () => {
    socket.destroy();
  });
  await new Promise<void>((resolve) => {
    socket.once('connect', resolve);
    socket.once('close', () => resolve());
  });
  return silent;
}

function portOf(addr: string): number {
  return Number(/\/tcp\/(\d+)/.exec(addr)?.[1]);
}

describe('pending inbound upgrades', () => {
  for (const [what, hostOf] of [
    ['one host', () => '127.0.0.2'],
    ['twenty hosts', (i: number) => `127.0.0.${10 + i}`],
  ] as const) {
    it(`a device still connects while ${SILENT_SOCKETS} silent sockets from ${what} are open, and they are dropped`, async () => {
      const key = generateClusterKey();
      const member = await startPeer(cleanup, key);
      const openedMs = performance.now();
      const silent = await Promise.all(Array.from({ length: SILENT_SOCKETS }, (_, i) => silentSocket(portOf(member.addr), hostOf(i))));
      await new Promise((resolve) => setTimeout(resolve, 200)); // the node has accepted them all
      const device = await startPeer(cleanup, key);
      await device.transport.dial(member.addr);
      expect(device.transport.send(member.peerId, ack(1))).toBe(true);
      await waitFor(() => member.received.length === 1, 'the device is heard');
      // Silent sockets over the per-host cap are refused at once; the rest when the upgrade times out.
      await waitFor(() => silent.every((s) => s.closedAtMs !== undefined), 'silent sockets dropped', INBOUND_UPGRADE_TIMEOUT_MS + 3_000);
      for (const s of silent) expect((s.closedAtMs as number) - openedMs).toBeLessThan(INBOUND_UPGRADE_TIMEOUT_MS + 2_000);
      expect(member.transport.isConnected(device.peerId)).toBe(true);
    });
  }

  it('one host cannot hold more than its share of pending upgrades', async () => {
    const member = await startPeer(cleanup, generateClusterKey());
    const silent = await Promise.all(Array.from({ length: INBOUND_PENDING_PER_HOST_MAX + 4 }, () => silentSocket(portOf(member.addr), '127.0.0.3')));
    await waitFor(() => silent.filter((s) => s.closedAtMs !== undefined).length >= 4, 'sockets over the cap refused', INBOUND_UPGRADE_TIMEOUT_MS / 2);
    expect(silent.filter((s) => s.closedAtMs === undefined)).toHaveLength(INBOUND_PENDING_PER_HOST_MAX);
  });
});

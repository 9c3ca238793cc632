// Non-member identities leave no state behind: a key holder connecting with a fresh identity each time used to
// leave ~6.6 KiB per identity (peer store entry, address book) in every daemon it reached, for ever.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { multiaddr } from '@multiformats/multiaddr';
import { afterEach, describe, expect, it } from 'vitest';
import { readClusterKey } from '../../src/net/clusterkey.js';
import { createNetNode, forgetPeer, type NetNode } from '../../src/net/node.js';
import { Daemon } from '../../src/app/daemon.js';
import { waitFor } from '../net/helpers.js';
import { CLUSTER_KEY_FILE } from '../../src/config/files.js';

const dirs: string[] = [];
const daemons: Daemon[] = [];
const nodes: NetNode[] = [];
afterEach(async () => {
  await Promise.allSettled(nodes.splice(0).map((n) => n.stop()));
  await Promise.allSettled(daemons.splice(0).map((d) => d.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The daemon's libp2p node and address book (private: observed, not used). */
function internals(daemon: Daemon): { node: NetNode; addressBook: Map<string, string[]> } {
  const inner = (daemon as unknown as { daemon: { node: NetNode; peers: { addressBook: Map<string, string[]> } } }).daemon;
  return { node: inner.node, addressBook: inner.peers.addressBook };
}

describe('non-member state', () => {
  it('a daemon forgets every identity that connected without being a member once it disconnects', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qd-forget-'));
    dirs.push(dir);
    const daemon = await Daemon.start({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], http: '127.0.0.1:0', join: [], clusterKeyFile: undefined, mdns: false, logLevel: 'silent' });
    daemons.push(daemon);
    const clusterKey = await readClusterKey(join(dir, CLUSTER_KEY_FILE));
    const { node } = internals(daemon);
    const addr = multiaddr(daemon.listenAddrs().find((a) => a.includes('/ip4/127.0.0.1/')) as string);
    const strangers: string[] = [];
    for (let i = 0; i < 8; i++) {
      const stranger = await createNetNode({ privateKey: await generateKeyPair('Ed25519'), clusterKey, listen: ['/ip4/127.0.0.1/tcp/0'] });
      nodes.push(stranger);
      const id = stranger.peerId.toString();
      strangers.push(id);
      await stranger.dial(addr);
      // Identify has told the daemon the stranger's addresses and protocols.
      await waitFor(() => internals(daemon).addressBook.has(id), 'the daemon identified the stranger');
      await stranger.stop();
    }
    await waitFor(() => node.getPeers().length === 0, 'every stranger disconnected');
    await waitFor(() => strangers.every((id) => !internals(daemon).addressBook.has(id)), 'address book entries dropped');
    const known = async (): Promise<string[]> => (await node.peerStore.all()).map((p) => p.id.toString()).filter((id) => strangers.includes(id));
    const deadline = Date.now() + 5_000;
    while ((await known()).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await known()).toEqual([]);
  });

  it('forgetPeer keeps a connected peer and the node itself', async () => {
    const key = (await import('../../src/net/clusterkey.js')).generateClusterKey();
    const [a, b] = await Promise.all([0, 1].map(async () => createNetNode({ privateKey: await generateKeyPair('Ed25519'), clusterKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] })));
    nodes.push(a!, b!);
    await a!.dial(b!.getMultiaddrs()[0]!);
    expect(await forgetPeer(a!, b!.peerId.toString())).toBe(false);
    expect(await forgetPeer(a!, a!.peerId.toString())).toBe(false);
    expect(await forgetPeer(a!, 'not a peer id')).toBe(false);
    await a!.hangUp(b!.peerId);
    await waitFor(() => a!.getConnections(b!.peerId).length === 0, 'closed');
    expect(await forgetPeer(a!, b!.peerId.toString())).toBe(true);
    expect(await a!.peerStore.has(b!.peerId)).toBe(false);
  });
});

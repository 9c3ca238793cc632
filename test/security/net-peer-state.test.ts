// What a key holder that is not a member leaves behind in a daemon's memory. docs/security.md: "Its state is
// dropped: when a non-member disconnects, its peer-store entry and the daemon's address-book entry go", and every
// count and field a peer sends has a limit. A heartbeat's (and a join request's) store id had no length limit
// and the daemon kept the last one of every peer ID (up to 1,024 peers) even after a non-member disconnected:
// fresh identities sending 4 MiB store ids could pin some 4 GiB. Loopback only.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readClusterKey } from '../../src/net/clusterkey.js';
import { Daemon } from '../../src/app/daemon.js';
import { waitFor } from '../helpers/wait.js';
import { Cleanup, startPeer } from '../net/helpers.js';
import { CLUSTER_KEY_FILE } from '../../src/config/files.js';

const dirs: string[] = [];
const running = new Set<Daemon>();
const cleanup = new Cleanup();

afterEach(() => cleanup.run());
afterAll(async () => {
  await Promise.allSettled([...running].map((d) => d.stop()));
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('a key holder that is not a member', () => {
  it('cannot make a daemon keep a long store id, nor keep its store id once it has gone', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-peerstate-'));
    dirs.push(root);
    // 1. A founds a cluster; no automatic admission (X stays a non-member).
    const a = await Daemon.start({
      dataDir: join(root, 'a'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      http: '127.0.0.1:0',
      join: [],
      clusterKeyFile: undefined,
      mdns: false,
      logLevel: 'silent',
      autoAdmit: false,
    });
    running.add(a);
    const key = await readClusterKey(join(root, 'a', CLUSTER_KEY_FILE));

    // 2. X (the cluster key, a fresh identity) connects and sends a heartbeat whose store id is 1 MiB long.
    const x = await startPeer(cleanup, key);
    await x.transport.dial(a.listenAddrs()[0] as string);
    const long = 's'.repeat(1024 * 1024);
    x.transport.send(a.peerId, { type: 'heartbeat', opId: 1, epoch: 0, store: long });
    // A well-formed one from a second identity afterwards, and time for both to arrive.
    const y = await startPeer(cleanup, key);
    await y.transport.dial(a.listenAddrs()[0] as string);
    y.transport.send(a.peerId, { type: 'heartbeat', opId: 1, epoch: 0, store: 'cd'.repeat(16) });
    await waitFor('Y\'s heartbeat to arrive', () => a.storeOf(y.peerId) !== undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));

    // 3. A store id is 32 hex characters: a megabyte one is refused, never kept.
    expect(a.storeOf(x.peerId)?.length ?? 0).toBeLessThan(1024);

    // 4. Y disconnects: it is no member, so nothing of it stays (as its peer store and address book entries).
    await y.node.stop();
    await waitFor('A to see Y gone', () => !a.isAlive(y.peerId));
    expect(a.storeOf(y.peerId)).toBeUndefined();
  }, 30_000);
});

// A device joining with a pinned --join address must not be captured by another key holder during its join.
// docs/security.md: "a device that is not a member ... trusts the member it asked to join (the operator's --join
// address ...) ... Pin the join with --join where this matters." The join loop asked every connected peer too, so
// any key holder that dials the joining device (a removed device under a new peer.key, say) was asked, and its
// answer — a configuration of its own making that seats the device — was adopted. Loopback only.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { MembershipConfig } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { readClusterKey } from '../../src/net/clusterkey.js';
import { Daemon } from '../../src/app/daemon.js';
import { put, status } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { Cleanup, startPeer } from '../net/helpers.js';
import { CLUSTER_KEY_FILE } from '../../src/config/files.js';

const dirs: string[] = [];
const running = new Set<Daemon>();
const cleanup = new Cleanup();

async function startDevice(dataDir: string, extra: { join?: string[]; clusterKeyFile?: string } = {}): Promise<Daemon> {
  const daemon = await Daemon.start({
    dataDir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    http: '127.0.0.1:0',
    join: extra.join ?? [],
    clusterKeyFile: extra.clusterKeyFile,
    mdns: false,
    logLevel: 'silent',
    requestTimeoutMs: 1_500,
    autoAdmit: false,
  });
  running.add(daemon);
  return daemon;
}

afterEach(() => cleanup.run());
afterAll(async () => {
  await Promise.allSettled([...running].map((d) => d.stop()));
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('a device joining through a pinned --join address', () => {
  it('is not captured by a key holder that connects to it while it waits for approval', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-capture-'));
    dirs.push(root);
    // 1. A founds the cluster (no automatic admission: a new device waits for `quorumd approve`).
    const a = await startDevice(join(root, 'a'));
    const keyFile = join(root, 'a', CLUSTER_KEY_FILE);
    // 2. D starts with the cluster key and --join pinned to A, and waits for approval there.
    const d = await startDevice(join(root, 'd'), { join: [a.listenAddrs()[0] as string], clusterKeyFile: keyFile });
    await waitFor('D to wait for approval at A', () => a.membership.pending.some((p) => p.peerId === d.peerId));

    // 3. X, another key holder (e.g. a removed device with a new peer.key), dials D and answers the join
    //    request D sends it with a configuration of its own: a cluster of X and D.
    const x = await startPeer(cleanup, await readClusterKey(keyFile));
    await x.transport.dial(d.listenAddrs()[0] as string);
    let answered = false;
    const answer = (): boolean => {
      const request = x.received.find((r) => r.from === d.peerId && r.msg.type === 'joinRequest');
      if (request === undefined || request.msg.type !== 'joinRequest') return false;
      if (!answered) {
        answered = true;
        const fake: MembershipConfig = {
          clusterId: 'attacker-cluster',
          epoch: 1,
          voters: [
            { peerId: x.peerId, addrs: [x.addr], store: 'sX' },
            { peerId: d.peerId, addrs: request.msg.addrs, store: request.msg.store },
          ],
          learners: [],
          removed: [],
          previousVoters: [],
        };
        const reply: Message = { type: 'joinReply', opId: request.msg.opId, epoch: 1, ok: true, error: '', config: fake };
        x.transport.send(d.peerId, reply);
      }
      return true;
    };
    // D asks its connected peers within a join retry (or at once on the new connection).
    const deadline = Date.now() + 8_000;
    while (Date.now() < deadline && !answer()) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    // 4. D must still be waiting for A's approval: not a voter of X's cluster.
    const s = await status(d.httpEndpoint);
    expect(s.epoch).toBe(0);
    expect(s.role).not.toBe('voter');
    // 5. And what D's clients write must never reach X.
    await put(d.httpEndpoint, 'private', 'from-d');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(x.received.filter((r) => r.msg.type === 'write')).toEqual([]);
    expect(answered).toBe(false);
  }, 30_000);
});

// How long one frame from a key holder that is not a member may hold a daemon's event loop. Frames are budgeted
// in bytes (docs/security.md), but decoding a 4 MiB frame of configuration announcements (1,024 voters, previous
// voters and replaced seats in each of the 17 configurations an announcement may carry) took ~1 s of the event
// loop here (2.8 s before configProblem was made linear): a non-member sending such frames back to back keeps
// the daemon's only thread busy (HTTP, heartbeats, quorum operations wait behind it) at ~7 MB/s of traffic. Its
// messages are all dropped once decoded (it is no member), so what it may make us decode must be bounded before
// decoding. Loopback only.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerIdFromString } from '@libp2p/peer-id';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { MembershipConfig } from '../../src/core/membership.js';
import { readClusterKey } from '../../src/net/clusterkey.js';
import { REPLICA_PROTOCOL } from '../../src/net/constants.js';
import { framePrefix } from '../../src/net/frame-decoder.js';
import { Daemon } from '../../src/app/daemon.js';
import { encodeFrame } from '../../src/wire/replica.js';
import { get } from '../helpers/http.js';
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

/** A 4 MiB frame of the costliest configuration announcements the decoder accepts. */
function costlyFrame(): Uint8Array {
  const ids = Array.from({ length: 1024 }, (_, i) => i.toString(36).padStart(3, '0'));
  const config = (epoch: number): MembershipConfig => ({
    clusterId: 'c',
    epoch,
    voters: ids.map((peerId) => ({ peerId, addrs: [] })),
    learners: [],
    removed: [],
    previousVoters: [...ids].reverse(),
    replaced: [...ids].reverse(),
  });
  const msg = { type: 'config' as const, epoch: 27, config: config(27), chain: Array.from({ length: 16 }, (_, i) => config(10 + i)) };
  const one = encodeFrame([msg]).length;
  const body = encodeFrame(Array.from({ length: Math.floor((4 * 1024 * 1024 - 16) / one) }, () => msg));
  const prefix = framePrefix(body.length);
  const frame = new Uint8Array(prefix.length + body.length);
  frame.set(prefix, 0);
  frame.set(body, prefix.length);
  return frame;
}

describe('frames from a key holder that is not a member', () => {
  it('never hold the event loop for long', async () => {
    // 1. The frames are built first (building them takes this process's event loop too).
    const frame = costlyFrame();
    const root = await mkdtemp(join(tmpdir(), 'quorumd-flood-'));
    dirs.push(root);
    // 2. A founds a cluster; X holds the cluster key and is no member.
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
    const x = await startPeer(cleanup, await readClusterKey(join(root, 'a', CLUSTER_KEY_FILE)));
    await x.transport.dial(a.listenAddrs()[0] as string);

    // 3. Measure the longest stall of the event loop while X sends three such frames on a replica stream.
    let maxGapMs = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
    }, 10);
    try {
      const stream = await x.node.dialProtocol(peerIdFromString(a.peerId), REPLICA_PROTOCOL);
      for (let i = 0; i < 3; i++) if (!stream.send(frame)) await stream.onDrain();
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    } catch {
      // A stream reset by A is an answer too: what counts is how long A was stalled.
    } finally {
      clearInterval(timer);
    }
    console.log(`longest event-loop stall: ${Math.round(maxGapMs)} ms`);

    // 4. The daemon kept answering: no stall near a heartbeat interval, and the API answers.
    expect(maxGapMs).toBeLessThan(300);
    expect((await get(a.httpEndpoint, 'nothing')).status).toBe(404);
  }, 60_000);
});

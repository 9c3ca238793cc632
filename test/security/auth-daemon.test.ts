// The critical finding of issue 12 against real daemons: a holder of the cluster key that was never admitted (a
// device waiting for `quorumd approve` under --no-auto-admit) connects with the project's own net node and
// codecs, and sends what a member would. It must get no data, no acknowledgement and no configuration, and its
// forged configuration (epoch + 1000, itself the only voter, the voters removed) must change nothing, also
// after a restart. Loopback only.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { genesisProblem, proofProblem } from '../../src/core/config-proof.js';
import type { MembershipConfig } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { EMPTY_RECORD, applyWrite } from '../../src/core/record.js';
import { readClusterKey } from '../../src/net/clusterkey.js';
import { configAuth } from '../../src/node/config-auth.js';
import { Daemon } from '../../src/app/daemon.js';
import { get, put, status } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { Cleanup, startPeer } from '../net/helpers.js';
import { CLUSTER_KEY_FILE } from '../../src/config/files.js';

const dirs: string[] = [];
const running = new Set<Daemon>();
const cleanup = new Cleanup();

async function startDevice(dataDir: string, extra: { join?: string[]; clusterKeyFile?: string; restart?: boolean } = {}): Promise<Daemon> {
  const daemon = await Daemon.start({
    dataDir,
    listen: extra.restart === true ? undefined : ['/ip4/127.0.0.1/tcp/0'],
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

/** What a member answers with: anything but liveness (heartbeats) and the join protocol. */
const ANSWERS = new Set<Message['type']>(['stale', 'config', 'readReply', 'writeAck', 'transfer', 'transferAck', 'configPromise', 'configAccepted']);

describe('a key holder waiting for approval', () => {
  it('gets nothing from the members and cannot take the cluster over, also after a restart', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-auth-'));
    dirs.push(root);
    const [dirA, dirB] = [join(root, 'a'), join(root, 'b')];
    let a = await startDevice(dirA);
    const keyFile = join(dirA, CLUSTER_KEY_FILE);
    const b = await startDevice(dirB, { join: [a.listenAddrs()[0] as string], clusterKeyFile: keyFile });
    await waitFor('B to ask to join', () => a.membership.pending.some((p) => p.peerId === b.peerId));
    await a.membership.approve(b.peerId);
    await waitFor('B to become a voter', async () => (await status(b.httpEndpoint)).role === 'voter');
    expect((await put(a.httpEndpoint, 'secret', 's1')).status).toBe(201);
    const before = await status(a.httpEndpoint);

    // The attacker: the cluster key, its own identity, asks to join (and waits for approval), then attacks.
    const x = await startPeer(cleanup, await readClusterKey(keyFile));
    for (const d of [a, b]) await x.transport.dial(d.listenAddrs()[0] as string);
    x.transport.send(a.peerId, { type: 'joinRequest', opId: 1, epoch: 0, addrs: [x.addr], store: 'sX' });
    await waitFor('X to be pending', () => a.membership.pending.some((p) => p.peerId === x.peerId));

    const epoch = before.epoch;
    const config = (await status(a.httpEndpoint)) as unknown as { clusterId: string };
    const forged: MembershipConfig = {
      clusterId: config.clusterId,
      epoch: epoch + 1000,
      voters: [{ peerId: x.peerId, addrs: [x.addr], store: 'sX' }],
      learners: [],
      removed: [a.peerId, b.peerId],
      previousVoters: [],
    };
    const record = applyWrite(EMPTY_RECORD, {}, { actor: x.peerId, counter: 1 }, new TextEncoder().encode('evil'), { wallMs: Date.now(), logical: 0 });
    for (const d of [a, b]) {
      x.transport.send(d.peerId, { type: 'config', epoch: forged.epoch, config: forged });
      for (const e of [1, epoch, epoch + 1]) {
        x.transport.send(d.peerId, { type: 'read', opId: 10 + e, epoch: e, key: 'secret' });
        x.transport.send(d.peerId, { type: 'write', opId: 20 + e, epoch: e, key: 'evil', record });
        x.transport.send(d.peerId, { type: 'transferRequest', opId: 30 + e, epoch: e });
        x.transport.send(d.peerId, { type: 'heartbeat', opId: 40 + e, epoch: e, store: 'sX' });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    const answers = x.received.filter((r) => ANSWERS.has(r.msg.type));
    expect(answers).toEqual([]);
    const joinReplies = x.received.filter((r) => r.msg.type === 'joinReply');
    for (const r of joinReplies) expect(r.msg).toMatchObject({ ok: false, config: undefined });
    for (const d of [a, b]) {
      const s = await status(d.httpEndpoint);
      expect(s.role).toBe('voter');
      expect(s.epoch).toBe(epoch);
    }
    expect((await get(a.httpEndpoint, 'evil')).status).toBe(404);
    expect((await put(a.httpEndpoint, 'after', 'v')).status).toBe(201);

    // And after a restart.
    running.delete(a);
    await a.stop();
    a = await startDevice(dirA, { restart: true });
    await waitFor('A to reconnect to B', async () => (await status(a.httpEndpoint)).quorum.reachable === 2);
    const after = await status(a.httpEndpoint);
    expect(after.role).toBe('voter');
    expect(after.epoch).toBe(epoch);
    expect((await put(a.httpEndpoint, 'after-restart', 'v')).status).toBe(201);

    // What A kept across the restart proves every step from its founding (signed by A) to now.
    const verifier = configAuth(await generateKeyPair('Ed25519'));
    const history = a.runtime.core.configHistory;
    expect(history.map((c) => c.epoch)).toEqual([1, 2, 3]);
    expect(genesisProblem(history[0]!, verifier)).toBeUndefined();
    for (let i = 1; i < history.length; i++) expect(proofProblem(history[i - 1]!, history[i]!, verifier)).toBeUndefined();
  });
});

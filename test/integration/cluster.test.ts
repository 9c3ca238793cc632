// Three real libp2p daemons in one process on 127.0.0.1: join, quorum writes and reads, losing one and then
// two devices (503 quorum_unavailable, w=one still local), restart and read repair.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app/daemon.js';
import { call, get, openWatch, put, status } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { CLUSTER_KEY_FILE } from '../../src/config/files.js';

const dirs: string[] = [];
const running = new Set<Daemon>();

async function startDevice(
  dataDir: string,
  extra: { join?: string[]; clusterKeyFile?: string; restart?: boolean; autoRemoveAfterMs?: number; maxVoters?: number } = {},
): Promise<Daemon> {
  const daemon = await Daemon.start({
    dataDir,
    listen: extra.restart === true ? undefined : ['/ip4/127.0.0.1/tcp/0'],
    http: '127.0.0.1:0',
    join: extra.join ?? [],
    clusterKeyFile: extra.clusterKeyFile,
    mdns: false,
    logLevel: 'silent',
    requestTimeoutMs: 1_500,
    autoRemoveAfterMs: extra.autoRemoveAfterMs,
    maxVoters: extra.maxVoters,
  });
  running.add(daemon);
  return daemon;
}

async function stopDevice(daemon: Daemon): Promise<void> {
  running.delete(daemon);
  await daemon.stop();
}

afterAll(async () => {
  await Promise.allSettled([...running].map((d) => d.stop()));
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('a three-device cluster in one process', () => {
  it('writes at quorum, survives one loss, refuses at two, and repairs after restart', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-int-'));
    dirs.push(root);
    const [dirA, dirB, dirC] = ['a', 'b', 'c'].map((n) => join(root, n)) as [string, string, string];
    const a = await startDevice(dirA);
    const keyFile = join(dirA, CLUSTER_KEY_FILE);
    expect((await status(a.httpEndpoint)).epoch).toBe(1);
    // Data written before anyone joins: a joiner receives it before it counts in quorums.
    for (let i = 0; i < 300; i++) expect((await put(a.httpEndpoint, `early/${i}`, `v${i}`)).status).toBe(201);

    let b = await startDevice(dirB, { join: [a.listenAddrs()[0] as string], clusterKeyFile: keyFile });
    await waitFor('B to become a voter', async () => (await status(b.httpEndpoint)).role === 'voter');
    for (const i of [0, 150, 299]) {
      const local = await get(b.httpEndpoint, `early/${i}`, '?r=one');
      expect(local.text).toBe(`v${i}`);
    }
    expect((await status(b.httpEndpoint)).keys).toBe(300);
    let c = await startDevice(dirC, { join: [a.listenAddrs()[0] as string], clusterKeyFile: keyFile });
    await waitFor('C to become a voter', async () => (await status(c.httpEndpoint)).role === 'voter');
    await waitFor('all three connected', async () => (await status(a.httpEndpoint)).quorum.reachable === 3);
    expect((await status(a.httpEndpoint)).epoch).toBe(5); // each voter added: joint epoch, then finalized

    // A quorum write on A is read at r=quorum on C.
    const first = await put(a.httpEndpoint, 'greeting', 'hello');
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ required: 2 });
    const read = await get(c.httpEndpoint, 'greeting');
    expect(read.status).toBe(200);
    expect(read.text).toBe('hello');
    // A context token issued by one member is accepted by every other member (same cluster key), for its key.
    const viaA = await call(a.httpEndpoint, 'PUT', '/kv/greeting', 'hello', { 'X-Causal-Context': read.context as string });
    expect(viaA.status).toBe(200);
    expect((await get(c.httpEndpoint, 'greeting')).status).toBe(200); // one version: the token covered C's read

    const bListen = b.listenAddrs();
    // Lose C: quorum writes still succeed.
    await stopDevice(c);
    const second = await put(a.httpEndpoint, 'greeting', 'hello again', '');
    expect(second.status).toBe(200);
    expect(second.json).toMatchObject({ acks: 2, required: 2 });
    expect((await put(a.httpEndpoint, 'missed-by-c', 'on A and B')).status).toBe(201);

    // Lose B too: a quorum write is refused with the figures, w=one still succeeds locally.
    await stopDevice(b);
    await waitFor('A to see B gone', async () => (await status(a.httpEndpoint)).quorum.reachable === 1);
    const refused = await put(a.httpEndpoint, 'greeting', 'lonely');
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ error: 'quorum_unavailable', acks: 1, required: 2, voters: 3 });
    const local = await put(a.httpEndpoint, 'solo', 'only on A', '?w=one');
    expect(local.status).toBe(201);
    expect(local.json).toMatchObject({ acks: 1, required: 1 });

    // Restart B and C (same data dirs, no flags): they reconnect by themselves.
    b = await startDevice(dirB, { restart: true });
    c = await startDevice(dirC, { restart: true });
    expect(b.listenAddrs()).toEqual(bListen); // same ports as before: the others find it where it was
    await waitFor('all three connected again', async () => (await status(c.httpEndpoint)).quorum.reachable === 3);
    // C missed "hello again" (and "lonely", which reached A durably before the 503: indeterminate, as
    // documented). Hinted handoff and anti-entropy bring it soon after the reconnection (test/integration/
    // anti-entropy.test.ts); a quorum read on C returns the newer value at once and repairs C's copy if needed.
    const before = await get(c.httpEndpoint, 'greeting', '?r=one');
    expect(['hello', 'hello again', 'lonely']).toContain(before.text);
    const after = await get(c.httpEndpoint, 'greeting');
    expect(after.status).toBe(200);
    expect(['hello again', 'lonely']).toContain(after.text);
    const repaired = await waitFor('C repaired by the quorum read', async () => {
      const mine = await get(c.httpEndpoint, 'greeting', '?r=one');
      return mine.text === after.text ? mine : undefined;
    });
    expect(repaired.status).toBe(200);

    // D joins through C, which missed "missed-by-c" while down (on A and B only; C may have it back by now
    // through a hint or anti-entropy): the join's sync gathers from the other voters too, so the new voter holds
    // every quorum-acknowledged write either way.
    const d = await startDevice(join(root, 'd'), { join: [c.listenAddrs()[0] as string], clusterKeyFile: keyFile });
    await waitFor('D to become a voter', async () => (await status(d.httpEndpoint)).role === 'voter');
    expect((await get(d.httpEndpoint, 'missed-by-c', '?r=one')).text).toBe('on A and B');
    expect((await status(d.httpEndpoint)).epoch).toBe(7);
  });

  it('a device holding the key but no membership waits to join instead of founding a second cluster', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-int-'));
    dirs.push(root);
    const a = await startDevice(join(root, 'a'));
    const waiting = await startDevice(join(root, 'w'), { clusterKeyFile: join(root, 'a', CLUSTER_KEY_FILE) });
    const seen = await status(waiting.httpEndpoint);
    expect(seen).toMatchObject({ epoch: 0, role: 'waiting', clusterId: null });
    const refused = await put(waiting.httpEndpoint, 'k', 'v');
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ error: 'not_member' });
    await stopDevice(waiting);
    // Restarted without flags it still waits: the copied key is kept, no cluster is founded.
    const again = await startDevice(join(root, 'w'), { restart: true });
    expect((await status(again.httpEndpoint)).role).toBe('waiting');
    expect((await status(a.httpEndpoint)).voters).toHaveLength(1);
  });

  it('autoRemoveAfterMs removes a voter that stays down, and a learner is promoted into its seat', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-int-'));
    dirs.push(root);
    const opts = { autoRemoveAfterMs: 2_000, maxVoters: 3 };
    const a = await startDevice(join(root, 'a'), opts);
    const key = join(root, 'a', CLUSTER_KEY_FILE);
    const joinVia = { ...opts, join: [a.listenAddrs()[0] as string], clusterKeyFile: key };
    const b = await startDevice(join(root, 'b'), joinVia);
    await waitFor('B voter', async () => (await status(b.httpEndpoint)).role === 'voter');
    const c = await startDevice(join(root, 'c'), joinVia);
    await waitFor('C voter', async () => (await status(c.httpEndpoint)).role === 'voter');
    const d = await startDevice(join(root, 'd'), joinVia);
    await waitFor('D learner', async () => (await status(d.httpEndpoint)).role === 'learner', 20_000);
    expect((await put(a.httpEndpoint, 'before', 'x')).status).toBe(201);
    await stopDevice(c);
    const after = await waitFor(
      'C removed and D promoted',
      async () => {
        const s = (await status(a.httpEndpoint)) as unknown as { removed: string[]; role: string; voters: Array<{ peerId: string }>; learners: unknown[] };
        return s.removed.includes(c.peerId) && s.role === 'voter' && s.voters.length === 3 && s.learners.length === 0 ? s : undefined;
      },
      30_000,
    );
    expect(after.voters.map((v) => v.peerId).sort()).toEqual([a.peerId, b.peerId, d.peerId].sort());
    expect((await get(d.httpEndpoint, 'before', '?r=one')).text).toBe('x');
    expect((await put(a.httpEndpoint, 'after', 'y')).json).toMatchObject({ required: 2 });
  });

  it('replicas holding the same records show the same digest root; a w=one write makes them differ', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-int-'));
    dirs.push(root);
    const a = await startDevice(join(root, 'a'));
    const joinVia = { join: [a.listenAddrs()[0] as string], clusterKeyFile: join(root, 'a', CLUSTER_KEY_FILE) };
    const b = await startDevice(join(root, 'b'), joinVia);
    await waitFor('B voter', async () => (await status(b.httpEndpoint)).role === 'voter');
    const digest = async (d: Daemon): Promise<{ root: string; keys: number }> => (await status(d.httpEndpoint)).digest as { root: string; keys: number };
    for (let i = 0; i < 50; i++) expect((await put(a.httpEndpoint, `k${i}`, `v${i}`, '?w=all')).status).toBe(201);
    await waitFor('equal digests', async () => {
      const [da, db] = [await digest(a), await digest(b)];
      return da.root === db.root && da.keys === 50 ? true : undefined;
    });
    const before = await digest(b);
    await stopDevice(b);
    expect((await put(a.httpEndpoint, 'only-here', 'x', '?w=one')).status).toBe(201); // B is down: A alone
    const b2 = await startDevice(join(root, 'b'), { restart: true });
    // B's digest, rebuilt from its store at start-up, equals the one it kept incrementally; A's moved on.
    expect(await digest(b2)).toEqual(before);
    const after = await digest(a);
    expect(after.keys).toBe(51);
    expect(after.root).not.toBe(before.root);
  });

  it('/watch on one device delivers a change written through another; the audit log shows the join', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-int-'));
    dirs.push(root);
    const a = await startDevice(join(root, 'a'));
    const b = await startDevice(join(root, 'b'), { join: [a.listenAddrs()[0] as string], clusterKeyFile: join(root, 'a', CLUSTER_KEY_FILE) });
    await waitFor('B voter', async () => (await status(b.httpEndpoint)).role === 'voter');
    const watcher = await openWatch(b.httpEndpoint, '?prefix=remote%2F');
    try {
      expect((await put(a.httpEndpoint, 'remote/1', 'from A', '?w=one')).status).toBe(201);
      // Replicated to B (a w=one write is still sent to every replica), then announced by B's feed.
      const event = await watcher.next(10_000);
      expect(JSON.parse(event.data)).toMatchObject({ key: 'remote/1', kind: 'put' });
    } finally {
      watcher.close();
    }
    // A's audit log recorded the membership changes that added B (joint phase, then final).
    const audit = (await call(a.httpEndpoint, 'GET', '/audit?kind=membership')).json as { entries: Array<{ epoch: number; voters: string[] }> };
    expect(audit.entries.at(-1)).toMatchObject({ voters: expect.arrayContaining([a.peerId, b.peerId]) });
    await Promise.all([a, b].map(stopDevice));
  });

  it('durability receipts: a w=one write waits for quorum in vain while a voter is down, then the receipt shows it everywhere', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-int-'));
    dirs.push(root);
    const a = await startDevice(join(root, 'a'));
    const b = await startDevice(join(root, 'b'), { join: [a.listenAddrs()[0] as string], clusterKeyFile: join(root, 'a', CLUSTER_KEY_FILE) });
    await waitFor('B voter', async () => (await status(b.httpEndpoint)).role === 'voter');
    await stopDevice(b);
    await waitFor('A to see B down', async () => !(await status(a.httpEndpoint)).quorum.writable);
    const accepted = await call(a.httpEndpoint, 'PUT', '/kv/receipt?w=one&wait=quorum&timeoutMs=300', 'v');
    expect(accepted.status).toBe(202);
    expect(accepted.json).toMatchObject({ acks: 1, complete: false, receipt: '/kv/receipt?explain=1' });
    // Stricter than w and not reached, with nothing durable beyond w either: still an error.
    expect((await call(a.httpEndpoint, 'PUT', '/kv/receipt2?w=all&wait=all&timeoutMs=300', 'v')).status).toBe(503);
    const partial = await call(a.httpEndpoint, 'GET', '/kv/receipt?explain=1');
    expect(partial.status).toBe(200);
    expect(partial.json).toMatchObject({ key: 'receipt', deleted: false, votersHolding: 1, quorum: 2, atQuorum: false, everywhere: false });
    const replicas = partial.json?.replicas as Array<{ peer: string; state: string; holdsCurrent: boolean | null }>;
    expect(replicas.find((r) => r.peer === a.peerId)).toMatchObject({ state: 'replied', holdsCurrent: true });
    expect(replicas.find((r) => r.peer === b.peerId)).toMatchObject({ holdsCurrent: null });
    // B returns: the hint (or gossip) brings it the write; the receipt follows it to quorum and everywhere.
    const b2 = await startDevice(join(root, 'b'), { restart: true });
    const full = await waitFor('the receipt to show the write on both', async () => {
      const r = await call(a.httpEndpoint, 'GET', '/kv/receipt?explain=1');
      return r.json?.everywhere === true ? r.json : undefined;
    });
    expect(full).toMatchObject({ votersHolding: 2, atQuorum: true });
    await Promise.all([a, b2].map(stopDevice));
  });
});

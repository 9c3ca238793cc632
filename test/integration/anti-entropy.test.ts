// Anti-entropy between real daemons in one process on 127.0.0.1: a device that missed 2,000 writes converges by
// gossip alone (no reads); tombstones are purged only once every member holds them and deleted keys stay deleted
// when a device that missed the delete returns; a removed device cannot push old data back; a wiped device gets its
// seat back under its new store by a data sync; a new device shows its transfer in /status, and an interrupted
// transfer resumes where it stopped.
import { cp, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app/daemon.js';
import { call, del, get, put, status } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { CLUSTER_KEY_FILE, DATABASE_FILE } from '../../src/config/files.js';

const dirs: string[] = [];
const running = new Set<Daemon>();

interface AeStatus {
  digest: { root: string; keys: number };
  storedKeys: number;
  antiEntropy: {
    converged: boolean;
    rounds: number;
    keysRepaired: number;
    tombstones: { waiting: number; blockedBy: string | null; purged: number };
    wire: { bytesSent: number; bytesReceived: number };
  };
  voters: Array<{ peerId: string; sync?: { matched: boolean | null; lastRoundAgoMs: number | null; keysDiffering: number; bytes: number } }>;
}

async function aeStatus(d: Daemon): Promise<AeStatus> {
  return (await status(d.httpEndpoint)) as unknown as AeStatus;
}

async function startDevice(
  dataDir: string,
  extra: { join?: string[]; clusterKeyFile?: string; restart?: boolean; transferBatchRecords?: number } = {},
): Promise<Daemon> {
  const daemon = await Daemon.start({
    dataDir,
    transferBatchRecords: extra.transferBatchRecords,
    listen: extra.restart === true ? undefined : ['/ip4/127.0.0.1/tcp/0'],
    http: '127.0.0.1:0',
    join: extra.join ?? [],
    clusterKeyFile: extra.clusterKeyFile,
    mdns: false,
    logLevel: 'silent',
    requestTimeoutMs: 5_000, // generous: on a loaded 2-core CI machine a quorum write can take over a second
    antiEntropyIntervalMs: 300,
    tombstoneGraceMs: 300,
  });
  running.add(daemon);
  return daemon;
}

async function stopDevice(daemon: Daemon): Promise<void> {
  running.delete(daemon);
  await daemon.stop();
}

async function threeDevices(
  root: string,
  extra: { transferBatchRecords?: number } = {},
): Promise<{ a: Daemon; b: Daemon; c: Daemon; dirs: [string, string, string]; keyFile: string }> {
  const [dirA, dirB, dirC] = ['a', 'b', 'c'].map((n) => join(root, n)) as [string, string, string];
  const a = await startDevice(dirA, extra);
  const keyFile = join(dirA, CLUSTER_KEY_FILE);
  const b = await startDevice(dirB, { ...extra, join: [a.listenAddrs()[0] as string], clusterKeyFile: keyFile });
  await waitFor('B to become a voter', async () => (await status(b.httpEndpoint)).role === 'voter');
  const c = await startDevice(dirC, { ...extra, join: [a.listenAddrs()[0] as string], clusterKeyFile: keyFile });
  await waitFor('C to become a voter', async () => (await status(c.httpEndpoint)).role === 'voter');
  await waitFor('three reachable voters', async () => (await status(a.httpEndpoint)).quorum.reachable === 3);
  return { a, b, c, dirs: [dirA, dirB, dirC], keyFile };
}

/** Runs `n` calls with `concurrency` in flight. */
async function parallel(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

function allConverged(devices: readonly Daemon[]): () => Promise<boolean> {
  return async () => {
    const all = await Promise.all(devices.map(aeStatus));
    const roots = new Set(all.map((s) => s.digest.root));
    return roots.size === 1 && all.every((s) => s.antiEntropy.converged);
  };
}

afterAll(async () => {
  await Promise.allSettled([...running].map((d) => d.stop()));
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('anti-entropy between real devices', () => {
  it('a device that missed 2,000 quorum writes converges by hinted handoff and gossip alone, within seconds', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-ae-'));
    dirs.push(root);
    const { a, b, c, dirs: d } = await threeDevices(root);
    await waitFor('an idle converged cluster', allConverged([a, b, c]), 20_000);

    await stopDevice(c);
    await parallel(2_000, 32, async (i) => {
      const res = await put(i % 2 === 0 ? a.httpEndpoint : b.httpEndpoint, `missed/${i}`, `value-${i}`);
      expect(res.status).toBe(201);
    });
    // Every write missed C: its coordinator holds a durable hint for each key.
    const hintsBefore = (await Promise.all([a, b].map((dev) => status(dev.httpEndpoint)))).map((x) => (x as unknown as { antiEntropy: { hints: { queued: number } } }).antiEntropy.hints.queued);
    expect(hintsBefore[0]! + hintsBefore[1]!).toBe(2_000);
    const restartedAt = performance.now();
    const c2 = await startDevice(d[2], { restart: true });
    await waitFor('C to hold all 2,000 keys with the same digest, by anti-entropy alone', allConverged([a, b, c2]), 20_000, 25);
    const seconds = (performance.now() - restartedAt) / 1000;
    console.log(`MEASURE restart → converged (2,000 missed keys, hinted handoff + gossip, no reads): ${seconds.toFixed(2)} s`);
    const s = await aeStatus(c2);
    expect(s.digest.keys).toBe(2_000);
    // The restarted device's view of each peer: a recent matching round.
    for (const v of s.voters.filter((m) => m.sync !== undefined)) expect(v.sync?.matched).toBe(true);
    // The hints were handed over (and are gone); anti-entropy confirmed the rest.
    await waitFor('the hints to be delivered', async () => {
      const hs = (await Promise.all([a, b].map((dev) => status(dev.httpEndpoint)))).map((x) => (x as unknown as { antiEntropy: { hints: { queued: number; delivered: number } } }).antiEntropy.hints);
      return hs.every((h) => h.queued === 0) && hs[0]!.delivered + hs[1]!.delivered === 2_000;
    });
    // No read was involved; the data is there locally.
    expect((await get(c2.httpEndpoint, 'missed/1999', '?r=one')).text).toBe('value-1999');
    await Promise.all([a, b, c2].map(stopDevice));
  }, 90_000);

  it('purges tombstones once every member holds them; a device that missed the delete does not bring keys back', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-ae-'));
    dirs.push(root);
    const { a, b, c, dirs: d } = await threeDevices(root);
    for (let i = 0; i < 50; i++) expect((await put(a.httpEndpoint, `doomed/${i}`, `v${i}`, '?w=all')).status).toBe(201);
    for (let i = 0; i < 10; i++) expect((await put(a.httpEndpoint, `kept/${i}`, `v${i}`, '?w=all')).status).toBe(201);
    await stopDevice(c); // C keeps the live versions
    const cId = c.peerId;
    for (let i = 0; i < 50; i++) expect((await del(a.httpEndpoint, `doomed/${i}`)).status).toBe(200);
    // While C is away its tombstones wait, and /status names C as the member holding back the purge.
    await waitFor('tombstones waiting on C', async () => {
      const s = await aeStatus(a);
      return s.antiEntropy.tombstones.waiting === 50 && s.antiEntropy.tombstones.blockedBy === cId;
    });
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // well past the 300 ms grace: still no purge
    expect((await aeStatus(a)).storedKeys).toBe(60);

    const c2 = await startDevice(d[2], { restart: true });
    await waitFor(
      'every device to purge the 50 tombstones',
      async () => {
        const all = await Promise.all([a, b, c2].map(aeStatus));
        return all.every((s) => s.storedKeys === 10 && s.antiEntropy.tombstones.waiting === 0);
      },
      20_000,
    );
    await waitFor('converged after the purge', allConverged([a, b, c2]), 20_000);
    for (const device of [a, b, c2]) {
      expect((await get(device.httpEndpoint, 'doomed/7', '?r=one')).status).toBe(404);
      expect((await get(device.httpEndpoint, 'doomed/7', '?r=all')).status).toBe(404);
      expect((await get(device.httpEndpoint, 'kept/7', '?r=one')).text).toBe('v7');
    }
    const purged = (await Promise.all([a, b, c2].map(aeStatus))).map((s) => s.antiEntropy.tombstones.purged);
    expect(purged.every((n) => n >= 50)).toBe(true);
    await Promise.all([a, b, c2].map(stopDevice));
  }, 90_000);

  it('a removed device that returns with old data cannot push it back (kv679)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-ae-'));
    dirs.push(root);
    const { a, b, c, dirs: d } = await threeDevices(root);
    for (let i = 0; i < 20; i++) expect((await put(a.httpEndpoint, `old/${i}`, `v${i}`, '?w=all')).status).toBe(201);
    await stopDevice(c);
    // Keep a copy of C's data as it was (a device restored from an old backup behaves the same).
    const stale = join(root, 'c-stale');
    await cp(d[2], stale, { recursive: true });
    const removed = await call(a.httpEndpoint, 'POST', '/cluster/remove', JSON.stringify({ peer: c.peerId }), { 'content-type': 'application/json' });
    expect(removed.status).toBe(200);
    for (let i = 0; i < 20; i++) expect((await del(a.httpEndpoint, `old/${i}`)).status).toBe(200);
    await waitFor(
      'A and B to purge the tombstones (C is no member any more)',
      async () => (await Promise.all([a, b].map(aeStatus))).every((s) => s.storedKeys === 0),
      20_000,
    );
    const back = await startDevice(stale, { restart: true });
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // several rounds' worth of chances
    for (const device of [a, b]) {
      const s = await aeStatus(device);
      expect(s.storedKeys).toBe(0);
      expect((await get(device.httpEndpoint, 'old/3', '?r=all')).status).toBe(404);
    }
    await Promise.all([a, b, back].map(stopDevice));
  }, 90_000);

  it('a device whose data dir was wiped gets its seat back under its new store by a data sync, then serves reads', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-ae-'));
    dirs.push(root);
    const { a, b, c, dirs: d } = await threeDevices(root);
    await parallel(3_000, 32, async (i) => {
      expect((await put(i % 2 === 0 ? a.httpEndpoint : b.httpEndpoint, `data/${i}`, `value-${i}`.padEnd(100, '.'))).status).toBe(201);
    });
    const cId = c.peerId;
    interface SeatStatus {
      epoch: number;
      role: string;
      storeId: string;
      voters: Array<{ peerId: string; store: string | null }>;
      digest: { keys: number };
    }
    const before = (await status(a.httpEndpoint)) as unknown as SeatStatus;
    const oldStore = before.voters.find((v) => v.peerId === cId)?.store;
    expect(oldStore).toMatch(/^[0-9a-f]{32}$/);
    await stopDevice(c);
    // Wipe the database (records, membership, clocks, store id); keep the identity and the cluster key. The old
    // files are kept aside: the "SD card" comes back later.
    const oldCard = join(root, 'old-card');
    await mkdir(oldCard);
    for (const file of await readdir(d[2])) if (file.startsWith(DATABASE_FILE)) await rename(join(d[2], file), join(oldCard, file));
    const startedAt = performance.now();
    const c2 = await startDevice(d[2], { join: [a.listenAddrs()[0] as string] });
    expect(c2.peerId).toBe(cId);
    const newStore = ((await status(c2.httpEndpoint)) as unknown as SeatStatus).storeId;
    expect(newStore).not.toBe(oldStore);
    // The member it asks gives the seat to the new store (joint phase, data sync, final epoch): no operator.
    const done = await waitFor(
      'C to hold its seat again under its new store, with every key',
      async () => {
        const s = (await status(c2.httpEndpoint)) as unknown as SeatStatus;
        const seat = s.voters.find((v) => v.peerId === cId);
        return s.role === 'voter' && seat?.store === newStore && s.digest.keys === 3_000 ? s : undefined;
      },
      30_000,
    );
    console.log(`MEASURE wiped device reseated: ${done.digest.keys} keys in ${((performance.now() - startedAt) / 1000).toFixed(2)} s, epoch ${before.epoch} -> ${done.epoch}`);
    expect(done.epoch).toBe(before.epoch + 2); // the replacement's joint epoch and its final one
    expect((await get(a.httpEndpoint, 'data/10', '?r=all')).status).toBe(200);
    expect((await get(c2.httpEndpoint, 'data/2999', '?r=one')).text).toBe('value-2999'.padEnd(100, '.'));
    // Its new writes use a fresh dot actor, so they cannot collide with the dots it issued before the wipe.
    const w = await put(c2.httpEndpoint, 'data/0', 'after-wipe');
    expect(w.status).toBe(200);
    expect((await get(a.httpEndpoint, 'data/0', '?r=all')).text).toBe('after-wipe');
    // Losing another voter now loses nothing: every key is on the new store too.
    await waitFor('C to reach both other voters', async () => (await status(c2.httpEndpoint)).quorum.reachable === 3);
    await stopDevice(a);
    expect((await get(c2.httpEndpoint, 'data/2998', '?r=quorum')).text).toBe('value-2998'.padEnd(100, '.'));
    // The old card put back: its store was seated once and its seat went to another store. It stays out (its
    // data may hold values whose deletes were purged since) and says why.
    await stopDevice(c2);
    for (const file of await readdir(d[2])) if (file.startsWith(DATABASE_FILE)) await rm(join(d[2], file));
    for (const file of await readdir(oldCard)) await rename(join(oldCard, file), join(d[2], file));
    const a2 = await startDevice(d[0], { restart: true });
    const old = await startDevice(d[2], { join: [a2.listenAddrs()[0] as string] });
    await waitFor('the old store to notice it lost its seat', async () => {
      const s = (await status(old.httpEndpoint)) as unknown as SeatStatus;
      return s.epoch === done.epoch && s.role === 'stale-store' ? s : undefined;
    });
    const seat = ((await status(a2.httpEndpoint)) as unknown as SeatStatus).voters.find((v) => v.peerId === cId);
    expect(seat?.store).toBe(newStore);
    expect((await get(old.httpEndpoint, 'data/1', '?r=quorum')).status).toBe(503);
    await Promise.all([a2, b, old].map(stopDevice));
  }, 120_000);

  it('a new device receives the data with progress in /status; stopped halfway, it resumes where it stopped', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-ae-'));
    dirs.push(root);
    const total = 6_000;
    // Small batches make the transfer long enough to stop halfway (300 batches, each durable before its ack).
    const a = await startDevice(join(root, 'a'), { transferBatchRecords: 20 });
    await parallel(total, 32, async (i) => {
      expect((await put(a.httpEndpoint, `data/${i}`, `value-${i}`.padEnd(100, '.'))).status).toBe(201);
    });
    const dirD = join(root, 'd');
    const d = await startDevice(dirD, { join: [a.listenAddrs()[0] as string], clusterKeyFile: join(root, 'a', CLUSTER_KEY_FILE) });
    interface Progress {
      role: string;
      catchUp: { state: string; keysHeld: number; totalKeys: number | null; percent: number | null; records: number; bytes: number; bytesPerSec: number } | null;
      transfers: Array<{ role: string; records: number; total: number | null; resumedAfter: string | null; done: boolean }>;
    }
    const halfway = await waitFor(
      'D to be receiving the data, a tenth of it in',
      async () => {
        const s = (await status(d.httpEndpoint)) as unknown as Progress;
        return s.catchUp?.state === 'receiving' && s.catchUp.keysHeld >= total / 10 ? s : undefined;
      },
      30_000,
      5,
    );
    await stopDevice(d);
    console.log(`MEASURE new device receiving: ${JSON.stringify(halfway.catchUp)}`);
    expect(halfway.role).toBe('catching-up');
    expect(halfway.catchUp?.totalKeys).toBe(total);
    expect(halfway.catchUp?.bytes).toBeGreaterThan(0);
    const heldAtStop = halfway.catchUp?.keysHeld ?? 0;
    expect(heldAtStop).toBeLessThan(total); // else the transfer was not interrupted

    // Back with the same data dir: the admitting device's retried sync resumes the push after what D kept.
    const back = await startDevice(dirD, { restart: true });
    const done = await waitFor(
      'D to hold everything and be a voter',
      async () => {
        const s = (await status(back.httpEndpoint)) as unknown as Progress & { digest: { keys: number } };
        return s.role === 'voter' && s.catchUp === null && s.digest.keys === total ? s : undefined;
      },
      30_000,
    );
    const resumed = done.transfers.find((t) => t.role === 'receiving' && t.done);
    console.log(`MEASURE new device resumed: held ${heldAtStop} of ${total} at the stop; the resumed push sent ${resumed?.records} records after ${resumed?.resumedAfter}`);
    expect(resumed?.resumedAfter).not.toBeNull();
    // Only what it lacked (plus the opening batch and a window in flight at the stop) crossed the wire again.
    expect(resumed?.records ?? total).toBeLessThanOrEqual(total - heldAtStop + 100);
    const [rootA, rootD] = await Promise.all([a, back].map(async (x) => (await aeStatus(x)).digest.root));
    expect(rootD).toBe(rootA);
    expect((await get(back.httpEndpoint, `data/${total - 1}`, '?r=one')).text).toBe(`value-${total - 1}`.padEnd(100, '.'));
    await Promise.all([a, back].map(stopDevice));
  }, 120_000);

  it('a new voter stopped during its transfer, whose change finished without it, fills up by rounds from where it stopped', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-ae-'));
    dirs.push(root);
    const total = 6_000;
    const { a, b, c } = await threeDevices(root, { transferBatchRecords: 20 });
    await parallel(total, 32, async (i) => {
      expect((await put(i % 2 === 0 ? a.httpEndpoint : b.httpEndpoint, `data/${i}`, `value-${i}`.padEnd(100, '.'))).status).toBe(201);
    });
    const dirD = join(root, 'd');
    const d = await startDevice(dirD, { join: [a.listenAddrs()[0] as string], clusterKeyFile: join(root, 'a', CLUSTER_KEY_FILE) });
    const halfway = await waitFor(
      'D to be receiving the data, a tenth of it in',
      async () => {
        const s = (await status(d.httpEndpoint)) as unknown as { catchUp: { state: string; keysHeld: number } | null };
        return s.catchUp?.state === 'receiving' && s.catchUp.keysHeld >= total / 10 ? s : undefined;
      },
      30_000,
      5,
    );
    await stopDevice(d);
    const heldAtStop = halfway.catchUp?.keysHeld ?? 0;
    // With D gone the coordinator pushes to another voter instead (a majority of the 4 holds everything) and
    // finishes the change: D is a voter now, without its data.
    await waitFor('the change to finish without D', async () => {
      const s = (await status(a.httpEndpoint)) as unknown as { epoch: number; voters: unknown[]; quorum: { joint?: unknown } };
      return s.voters.length === 4 && s.quorum.joint === undefined;
    });
    // Back, D notices its transfer never completed and fills up by anti-entropy rounds. It serves reads
    // meanwhile: the change put every record on a majority of the voters without it.
    const back = await startDevice(dirD, { restart: true });
    const done = await waitFor(
      'D to hold everything and serve reads',
      async () => {
        const s = (await status(back.httpEndpoint)) as unknown as {
          role: string;
          catchUp: unknown;
          digest: { keys: number };
          voters: Array<{ self: boolean; sync?: { recordsReceived: number } }>;
        };
        return s.role === 'voter' && s.catchUp === null && s.digest.keys === total ? s : undefined;
      },
      30_000,
    );
    const fetched = done.voters.reduce((sum, v) => sum + (v.sync?.recordsReceived ?? 0), 0);
    console.log(`MEASURE new voter caught up by rounds: held ${heldAtStop} of ${total} at the stop, fetched ${fetched} records`);
    // The rounds fetch what D lacks, not everything again (a few keys may arrive twice from two voters).
    expect(fetched).toBeLessThanOrEqual(total - heldAtStop + 200);
    const roots = await Promise.all([a, b, c, back].map(async (x) => (await aeStatus(x)).digest.root));
    expect(new Set(roots).size).toBe(1);
    await Promise.all([a, b, c, back].map(stopDevice));
  }, 120_000);
});

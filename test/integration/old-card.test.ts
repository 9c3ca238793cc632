// An old store put back into a device whose seat went to a new store, against real daemons on 127.0.0.1: the
// members that already told the device's peer ID about their epoch never tell the old store, so it keeps its
// old configuration (which seats it) and gossips its old data into the cluster, bringing back purged deletes.
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app/daemon.js';
import { del, get, put, status } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { CLUSTER_KEY_FILE, DATABASE_FILE } from '../../src/config/files.js';

const dirs: string[] = [];
const running = new Set<Daemon>();

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

interface SeatStatus {
  epoch: number;
  role: string;
  storeId: string;
  storedKeys: number;
  voters: Array<{ peerId: string; store: string | null }>;
  antiEntropy: { tombstones: { waiting: number } };
}
const seatStatus = async (d: Daemon): Promise<SeatStatus> => (await status(d.httpEndpoint)) as unknown as SeatStatus;

afterAll(async () => {
  await Promise.allSettled([...running].map((d) => d.stop()));
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('an old store put back after the device was re-seated', () => {
  it('is told the newer configuration and stays out: deletes purged meanwhile stay deleted', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-oldcard-'));
    dirs.push(root);
    const [dirA, dirB, dirC, dirD] = ['a', 'b', 'c', 'd'].map((n) => join(root, n)) as [string, string, string, string];
    const a = await startDevice(dirA);
    const keyFile = join(dirA, CLUSTER_KEY_FILE);
    const joinA = [a.listenAddrs()[0] as string];
    const b = await startDevice(dirB, { join: joinA, clusterKeyFile: keyFile });
    await waitFor('B to become a voter', async () => (await status(b.httpEndpoint)).role === 'voter');
    const c = await startDevice(dirC, { join: joinA, clusterKeyFile: keyFile });
    await waitFor('C to become a voter', async () => (await status(c.httpEndpoint)).role === 'voter');
    for (let i = 0; i < 20; i++) expect((await put(a.httpEndpoint, `doomed/${i}`, `v${i}`, '?w=all')).status).toBe(201);

    // C's card is pulled (kept aside); C comes back with an empty store and gets its seat back through A.
    await stopDevice(c);
    const oldCard = join(root, 'old-card');
    await mkdir(oldCard);
    for (const file of await readdir(dirC)) if (file.startsWith(DATABASE_FILE)) await rename(join(dirC, file), join(oldCard, file));
    let c2 = await startDevice(dirC, { join: joinA });
    await waitFor('C re-seated under its new store with the data', async () => {
      const s = await seatStatus(c2);
      return s.role === 'voter' && s.storedKeys === 20 && (await seatStatus(a)).epoch === s.epoch;
    }, 30_000);

    // While C is off for a moment the cluster changes again (a fourth voter joins), so C comes back on an older
    // epoch and every member tells its peer ID the current one (and remembers having done so).
    await stopDevice(c2);
    const d = await startDevice(dirD, { join: joinA, clusterKeyFile: keyFile });
    await waitFor('D to become a voter', async () => (await status(d.httpEndpoint)).role === 'voter', 30_000);
    const epoch = (await seatStatus(a)).epoch;
    c2 = await startDevice(dirC, { restart: true });
    await waitFor('C on the current epoch', async () => (await seatStatus(c2)).epoch === epoch, 20_000);

    // The keys are deleted and the tombstones purged everywhere (C's new store holds them too).
    for (let i = 0; i < 20; i++) expect((await del(a.httpEndpoint, `doomed/${i}`)).status).toBe(200);
    await waitFor('every device to purge the tombstones', async () => {
      const all = await Promise.all([a, b, c2, d].map(seatStatus));
      return all.every((s) => s.storedKeys === 0 && s.antiEntropy.tombstones.waiting === 0);
    }, 30_000);

    // The old card goes back in (the new one is pulled).
    await stopDevice(c2);
    for (const file of await readdir(dirC)) if (file.startsWith(DATABASE_FILE)) await rm(join(dirC, file));
    for (const file of await readdir(oldCard)) await rename(join(oldCard, file), join(dirC, file));
    const old = await startDevice(dirC, { restart: true });
    await new Promise((resolve) => setTimeout(resolve, 4_000)); // many heartbeats and anti-entropy rounds
    const oldStatus = await seatStatus(old);
    const stored = await Promise.all([a, b, d].map(async (x) => (await seatStatus(x)).storedKeys));
    const back = (await get(a.httpEndpoint, 'doomed/7', '?r=quorum')).status;
    console.log(`old card after 4 s: epoch ${oldStatus.epoch} (cluster ${epoch}), role ${oldStatus.role}; keys on A, B, D: ${stored.join(', ')}; GET doomed/7 r=quorum -> ${back}`);
    expect(stored).toEqual([0, 0, 0]);
    expect(back).toBe(404);
    expect(oldStatus.role).toBe('stale-store');
    await Promise.all([a, b, d, old].map(stopDevice));
  }, 150_000);
});

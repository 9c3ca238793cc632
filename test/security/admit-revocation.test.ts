// Revocation that holds, against real daemons on 127.0.0.1: a removed device that deletes its peer.key (a new
// identity holding the cluster key) is not admitted automatically; it waits for an operator (approve, or an
// admission window opened with POST /cluster/admit). A wiped device that kept its peer.key is re-seated without
// any operator action, window or not. Operator actions on a device that is not a member answer 409, never 500.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app/daemon.js';
import { call, get, put, status } from '../helpers/http.js';
import { runCli } from '../helpers/procs.js';
import { waitFor } from '../helpers/wait.js';
import { CLUSTER_KEY_FILE, databaseFiles, PEER_KEY_FILE } from '../../src/config/files.js';

const dirs: string[] = [];
const running = new Set<Daemon>();

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
  });
  running.add(daemon);
  return daemon;
}

async function stopDevice(daemon: Daemon): Promise<void> {
  running.delete(daemon);
  await daemon.stop();
}

/** Deletes the store (quorumd.db and its -wal/-shm); with `identity`, the peer.key too (a new identity). */
async function wipe(dataDir: string, identity: boolean): Promise<void> {
  for (const file of [...databaseFiles(), ...(identity ? [PEER_KEY_FILE] : [])]) {
    await rm(join(dataDir, file), { force: true });
  }
}

const json = { 'Content-Type': 'application/json' };
const post = (base: string, path: string, body: object): ReturnType<typeof call> => call(base, 'POST', path, JSON.stringify(body), json);

afterAll(async () => {
  await Promise.allSettled([...running].map((d) => d.stop()));
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('revocation by peer ID holds against a removed device with a new peer.key', () => {
  it('keeps the new identity pending until an operator decides; re-seats a wiped device without one', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-admit-'));
    dirs.push(root);
    const [dirA, dirB, dirW] = ['a', 'b', 'w'].map((n) => join(root, n)) as [string, string, string];
    const a = await startDevice(dirA);
    const keyFile = join(dirA, CLUSTER_KEY_FILE);
    const joinA = [a.listenAddrs()[0] as string];
    // A fresh cluster admits key holders by itself (the README's setup): no device was ever removed.
    expect((await status(a.httpEndpoint)).admission).toEqual({ open: true, reason: 'genesis', until: null });
    let b = await startDevice(dirB, { join: joinA, clusterKeyFile: keyFile });
    await waitFor('B to become a voter', async () => (await status(b.httpEndpoint)).role === 'voter');
    expect((await put(a.httpEndpoint, 'k', 'v')).status).toBe(201);

    // A device waiting to join cannot approve, or open a window: 409 with a reason, not a 500.
    const waiting = await startDevice(dirW, { clusterKeyFile: keyFile });
    expect((await status(waiting.httpEndpoint)).admission).toBeNull(); // it admits nobody
    const approveOnWaiting = await post(waiting.httpEndpoint, '/cluster/approve', { peer: a.peerId });
    expect(approveOnWaiting.status).toBe(409);
    expect(approveOnWaiting.json).toMatchObject({ error: 'membership_change_failed', message: expect.stringMatching(/not a member/) });
    const admitOnWaiting = await post(waiting.httpEndpoint, '/cluster/admit', { forMs: 60_000 });
    expect(admitOnWaiting.status).toBe(409);
    expect((await post(waiting.httpEndpoint, '/cluster/remove', { peer: a.peerId })).status).toBe(409);
    expect((await call(waiting.httpEndpoint, 'POST', '/cluster/leave', '', json)).status).toBe(409);
    await stopDevice(waiting);

    // B is removed (lost, or sold): from then on automatic admission is closed.
    const oldB = b.peerId;
    expect((await post(a.httpEndpoint, '/cluster/remove', { peer: oldB })).status).toBe(200);
    await stopDevice(b);
    expect((await status(a.httpEndpoint)).admission).toEqual({ open: false, reason: 'closed', until: null });
    // ...and the removed peer ID is never approved again.
    const approveRemoved = await post(a.httpEndpoint, '/cluster/approve', { peer: oldB });
    expect(approveRemoved.status).toBe(409);
    expect(approveRemoved.json?.message).toMatch(/removed/);

    // The removed device deletes its peer.key (and its store) and comes back: a new identity with the key.
    await wipe(dirB, true);
    b = await startDevice(dirB, { join: joinA });
    expect(b.peerId).not.toBe(oldB);
    await waitFor('the new identity to be pending on A', async () =>
      ((await status(a.httpEndpoint)).pending as Array<{ peerId: string }>).some((p) => p.peerId === b.peerId),
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // several join attempts
    const refused = await status(a.httpEndpoint);
    expect(refused.voters).toHaveLength(1);
    expect(refused.learners).toEqual([]);
    expect((await status(b.httpEndpoint)).role).toBe('pending');
    expect((await get(b.httpEndpoint, 'k', '?r=one')).status).toBe(503);

    // Bad windows are refused with 400.
    for (const body of [{ forMs: -1 }, { forMs: 1.5 }, { forMs: 2 * 60 * 60 * 1000 }, { forMs: '10m' }, { forMs: 1000, extra: 1 }]) {
      const bad = await post(a.httpEndpoint, '/cluster/admit', body);
      expect(bad.status).toBe(400);
      expect(bad.json).toMatchObject({ error: 'bad_request' });
    }
    // The CLI wants a duration with a unit, an hour at most.
    for (const bad of [['--for', '10'], ['--for', '2h'], ['--for', '1m', '--close']]) {
      const refusedCli = await runCli(['admit', ...bad, '--api', a.httpEndpoint]);
      expect(refusedCli.code, refusedCli.stderr).toBe(2);
      expect(refusedCli.stderr.trim().split('\n')).toHaveLength(1);
    }
    // An operator opens a window on A: the waiting device joins through it at its next attempt.
    const opened = await runCli(['admit', '--for', '1m', '--api', a.httpEndpoint]);
    expect(opened.code, opened.stderr).toBe(0);
    expect(opened.stdout).toMatch(/^open until \S+ on this device/);
    expect((await status(a.httpEndpoint)).admission).toMatchObject({ open: true, reason: 'window' });
    await waitFor('the new identity to become a voter', async () => (await status(b.httpEndpoint)).role === 'voter');
    const closed = await post(a.httpEndpoint, '/cluster/admit', { forMs: 0 });
    expect(closed.json).toMatchObject({ open: false, reason: 'closed' });
    expect((await runCli(['status', '--api', a.httpEndpoint])).stdout).toMatch(/^admission closed: new devices wait/m);

    // B's storage dies, its peer.key survives: the same identity, re-seated with no operator action although
    // admission is closed.
    const bId = b.peerId;
    await stopDevice(b);
    await wipe(dirB, false);
    b = await startDevice(dirB, { join: joinA });
    expect(b.peerId).toBe(bId);
    await waitFor('B to be re-seated as a voter', async () => (await status(b.httpEndpoint)).role === 'voter', 30_000);
    expect((await get(b.httpEndpoint, 'k', '?r=one')).text).toBe('v');
    expect((await status(a.httpEndpoint)).admission).toMatchObject({ open: false });
  });
});

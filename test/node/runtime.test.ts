// The runtime over a real SQLite store (issue 11's argued risks): its hybrid logical clock is kept durably, so a
// restart with the wall clock behind (a device without a real-time clock boots in 1970) never issues timestamps
// below its earlier ones, and remote records cannot drag it far ahead of the wall clock; and a read answers only
// once what it shows is durable here.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config/defaults.js';
import { type Hlc, hlcCompare } from '../../src/core/hlc.js';
import type { MembershipConfig } from '../../src/core/membership.js';
import { applyWrite, EMPTY_RECORD } from '../../src/core/record.js';
import { DotAllocator } from '../../src/node/dots.js';
import { Runtime } from '../../src/node/runtime.js';
import type { StoragePort } from '../../src/storage/port.js';
import { openSqliteStore } from '../../src/storage/sqlite.js';
import { DATABASE_FILE } from '../../src/config/files.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
const NOW_MS = 1_700_000_000_000;

function config(ids: readonly string[]): MembershipConfig {
  return { clusterId: 'c', epoch: 1, voters: ids.map((peerId) => ({ peerId, addrs: [] })), learners: [], removed: [], previousVoters: [] };
}

async function start(store: StoragePort, cfg: MembershipConfig, wallClockMs: () => number): Promise<Runtime> {
  const runtime = new Runtime({
    self: 'A',
    store,
    dots: await DotAllocator.open(store, 'A', 100),
    config: cfg,
    acceptor: undefined,
    requestTimeoutMs: 1_000,
    transferIdleMs: 1_000,
    transferBatchRecords: 100,
    transferBatchBytes: 1 << 20,
    opsInFlightMax: 100,
    opIdBase: 0,
    storeId: 'store-A',
    legacySeat: true, // the seats below name no store
    antiEntropy: { intervalMs: 1_000, bytesPerSec: 1 << 20, requestTimeoutMs: 1_000, tombstoneGraceMs: DEFAULTS.tombstoneGraceMs },
    hints: { hintsMax: 100, hintTtlMs: 60_000 },
    log: silent,
    wallClockMs,
  });
  runtime.attachTransport({ send: () => true, isConnected: () => true });
  return runtime;
}

/** The timestamp of the version this device just wrote. */
async function writeHlc(runtime: Runtime, key: string): Promise<Hlc> {
  const { record } = await runtime.write(key, new TextEncoder().encode('v'), undefined, 'one');
  const mine = record.siblings.filter((s) => s.dot.actor === 'A');
  return mine[mine.length - 1]!.hlc;
}

function tempStore(): { path: string; open: () => StoragePort } {
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-clock-'));
  dirs.push(dir);
  const path = join(dir, DATABASE_FILE);
  return { path, open: () => openSqliteStore(path) };
}

describe('the runtime clock', () => {
  it('continues after a restart from at least its last timestamp, even with the wall clock in 1970', async () => {
    const db = tempStore();
    let store = db.open();
    let runtime = await start(store, config(['A']), () => NOW_MS);
    const before = await writeHlc(runtime, 'k');
    const later = await writeHlc(runtime, 'k2');
    expect(hlcCompare(later, before)).toBe(1);
    runtime.stop();
    await store.close();

    store = db.open();
    runtime = await start(store, config(['A']), () => 5_000); // booted without a real-time clock
    const after = await writeHlc(runtime, 'k3');
    expect(hlcCompare(after, later)).toBe(1);
    const next = await writeHlc(runtime, 'k4');
    expect(hlcCompare(next, after)).toBe(1);
    runtime.stop();
    await store.close();
  });

  it('stores a record whose timestamp is far ahead of the wall clock without moving its own clock there', async () => {
    const store = tempStore().open();
    let nowMs = NOW_MS;
    const runtime = await start(store, config(['A', 'B']), () => nowMs);
    const forged = applyWrite(EMPTY_RECORD, {}, { actor: 'B', counter: 1 }, new TextEncoder().encode('far'), { wallMs: Number.MAX_SAFE_INTEGER, logical: 0 });
    runtime.receive('B', { type: 'write', opId: 1, epoch: 1, key: 'far', record: forged });
    await store.flush();
    expect(store.get('far')?.siblings.map((s) => s.dot.actor)).toEqual(['B']); // kept: data is never dropped
    const ahead = applyWrite(EMPTY_RECORD, {}, { actor: 'B', counter: 2 }, new TextEncoder().encode('ahead'), { wallMs: NOW_MS + DEFAULTS.hlcDriftMaxMs + 1, logical: 0 });
    runtime.receive('B', { type: 'write', opId: 2, epoch: 1, key: 'ahead', record: ahead });
    expect(await writeHlc(runtime, 'mine')).toEqual({ wallMs: NOW_MS, logical: 0 });
    // A peer slightly ahead (within the bound) is followed.
    const near = applyWrite(EMPTY_RECORD, {}, { actor: 'B', counter: 3 }, new TextEncoder().encode('near'), { wallMs: NOW_MS + 2_000, logical: 0 });
    runtime.receive('B', { type: 'write', opId: 3, epoch: 1, key: 'near', record: near });
    expect(await writeHlc(runtime, 'mine2')).toEqual({ wallMs: NOW_MS + 2_000, logical: 1 });
    // The bound follows the wall clock as messages arrive, not as of the last local write: an hour later, a
    // peer 2 s ahead is followed again.
    nowMs = NOW_MS + 3_600_000;
    const hourLater = applyWrite(EMPTY_RECORD, {}, { actor: 'B', counter: 4 }, new TextEncoder().encode('later'), { wallMs: nowMs + 2_000, logical: 0 });
    runtime.receive('B', { type: 'write', opId: 4, epoch: 1, key: 'later', record: hourLater });
    expect(await writeHlc(runtime, 'mine3')).toEqual({ wallMs: nowMs + 2_000, logical: 1 });
    runtime.stop();
    await store.close();
  });
});

describe('answers after durability', () => {
  it('a read shows a staged write only once it is committed', async () => {
    const store = tempStore().open();
    const runtime = await start(store, config(['A', 'B']), () => NOW_MS);
    const record = applyWrite(EMPTY_RECORD, {}, { actor: 'B', counter: 1 }, new TextEncoder().encode('v'), { wallMs: NOW_MS, logical: 0 });
    runtime.receive('B', { type: 'write', opId: 1, epoch: 1, key: 'k', record }); // staged: committed at the turn's end
    const commitsBefore = store.stats().commits;
    let commitsWhenAnswered = -1;
    const { record: seen } = await runtime.read('k', 'one').then((outcome) => {
      commitsWhenAnswered = store.stats().commits;
      return outcome;
    });
    expect(seen?.siblings.map((s) => s.dot.actor)).toEqual(['B']);
    expect(commitsWhenAnswered).toBeGreaterThan(commitsBefore);
    runtime.stop();
    await store.close();
  });
});

#!/usr/bin/env node
// `npm run bench:sync`: anti-entropy figures on 127.0.0.1 with daemon processes (temp data dirs). Not a test.
//   1. two devices holding N keys of V bytes that differ in d = 1 % (one side lacks them): time to converge and
//      bytes on the wire (sync protocol frames), against the goal (< 1 s, <= 2x missing data + 64 KiB);
//   2. d = 1 key (round trips, bytes); 3. d = 0 (cost of an idle round);
//   4. bootstrap of a fresh third device (join + catch-up) to the same digest;
//   5. RSS of a device holding N keys; 6. idle CPU of the converged three-device cluster.
// The stores are filled directly (SQLite, while the daemons are stopped) so the figures are about sync alone.
//   node bench/sync.mjs [--keys 100000] [--value-size 100] [--diff-percent 1] [--idle-seconds 20]
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { sleep, waitForFile } from './lib.mjs';
import '../dist/polyfill.js';
import { applyWrite, EMPTY_RECORD } from '../dist/core/record.js';
import { openSqliteStore } from '../dist/storage/sqlite.js';
import { encodeRecord } from '../dist/wire/record.js';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '100000' },
    'value-size': { type: 'string', default: '100' },
    'diff-percent': { type: 'string', default: '1' },
    'idle-seconds': { type: 'string', default: '30' },
    out: { type: 'string', default: '' },
  },
});
const keyCount = Number(values.keys);
const valueSize = Number(values['value-size']);
const diffCount = Math.round((keyCount * Number(values['diff-percent'])) / 100);
const idleSeconds = Number(values['idle-seconds']);
const BIN = resolve(import.meta.dirname, '../bin/quorumd');
const CLK_TCK = 100; // Linux USER_HZ for /proc/<pid>/stat

const children = new Map(); // dataDir -> child
function killAll() {
  for (const child of children.values()) if (child.exitCode === null) child.kill('SIGKILL');
}
process.on('exit', killAll);
process.on('SIGINT', () => process.exit(130));


async function start(dataDir, args = []) {
  const nodeArgs = (process.env.QUORUMD_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean); // e.g. --cpu-prof
  const child = spawn(process.execPath, [...nodeArgs, BIN, 'start', '--data-dir', dataDir, '--http', '127.0.0.1:0', '--no-mdns', '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.set(dataDir, child);
  const info = await waitForFile(join(dataDir, 'daemon.json'), child.pid);
  return { ...info, dataDir, child };
}

async function stop(device) {
  const exited = new Promise((r) => device.child.once('exit', r));
  device.child.kill('SIGTERM');
  await exited;
  children.delete(device.dataDir);
}

async function status(device) {
  const res = await fetch(`${device.http}/status`);
  return res.json();
}

async function until(what, probe, timeoutMs = 120_000, everyMs = 5) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

const value = (i) => new TextEncoder().encode(`v${i}-`.padEnd(valueSize, 'x'));
const keyOf = (i) => `bench/${String(i).padStart(6, '0')}`;

/** Writes records straight into a stopped device's store. */
async function fill(dataDir, entries) {
  const store = openSqliteStore(join(dataDir, 'quorumd.db'));
  let batch = [];
  for (const [key, record] of entries) {
    batch.push(store.put(key, record));
    if (batch.length >= 5000) {
      await Promise.all(batch);
      batch = [];
    }
  }
  await Promise.all(batch);
  await store.close();
}

function recordFor(i, actor, counter, bytes) {
  return applyWrite(EMPTY_RECORD, {}, { actor, counter }, bytes, { wallMs: 1_800_000_000_000 + i, logical: 0 });
}

/** Sync-protocol frame bytes moved so far by both devices (each counts what it sent). */
async function syncBytes(devices) {
  let total = 0;
  let messages = 0;
  for (const d of devices) {
    const s = await status(d);
    total += s.antiEntropy.wire.bytesSent;
    messages += s.antiEntropy.wire.messagesSent;
  }
  return { bytes: total, messages };
}

async function rootsEqual(devices) {
  const all = await Promise.all(devices.map(status));
  return all.every((s) => s.digest.root === all[0].digest.root) ? all : undefined;
}

function cpuTicks(pid) {
  return readFile(`/proc/${pid}/stat`, 'utf8').then((text) => {
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  });
}

async function rssMb(pid) {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(text)[1]) / 1024;
}

const results = { keys: keyCount, valueSize, diffKeys: diffCount, node: process.version, when: new Date().toISOString() };
const root = await mkdtemp(join(tmpdir(), 'quorumd-bench-sync-'));
const [dirA, dirB, dirC] = ['a', 'b', 'c'].map((n) => join(root, n));
try {
  // A two-device cluster, then both stopped and filled directly.
  let a = await start(dirA, ['--listen', '/ip4/127.0.0.1/tcp/0']);
  let b = await start(dirB, ['--listen', '/ip4/127.0.0.1/tcp/0', '--join', a.listen[0], '--cluster-key', join(dirA, 'cluster.key')]);
  await until('B to be a voter', async () => (await status(b)).role === 'voter', 30_000, 50);
  await Promise.all([stop(a), stop(b)]);
  const actor = 'bench~1';
  const records = Array.from({ length: keyCount }, (_, i) => [keyOf(i), recordFor(i, actor, i + 1, value(i))]);
  const missing = new Set(Array.from({ length: diffCount }, (_, j) => Math.floor((j * keyCount) / diffCount)));
  let missingBytes = 0;
  let missingStoredBytes = 0; // keys + records as stored (value, clock, causal context): what has to move
  for (const i of missing) {
    missingBytes += keyOf(i).length + valueSize;
    missingStoredBytes += keyOf(i).length + encodeRecord(records[i][1]).length;
  }
  const t0 = performance.now();
  await fill(dirA, records);
  await fill(dirB, records.filter((_, i) => !missing.has(i)));
  console.log(`filled ${keyCount} keys (B lacks ${diffCount}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // 1. d = 1 %: restart both; the round that follows the connection repairs the difference.
  a = await start(dirA);
  b = await start(dirB);
  const upAt = performance.now();
  await until('d=1% converged', () => rootsEqual([a, b]), 120_000, 2);
  const wallMs = performance.now() - upAt;
  // The round's initiator records it once the last reply is in (just after the digests became equal).
  const repairs = await until('the repair round to be recorded', async () => {
    const [sa, sb] = await Promise.all([status(a), status(b)]);
    const found = [...sa.voters, ...sb.voters].map((m) => m.sync?.lastRepair).filter((r) => r);
    return found.length > 0 ? found : undefined;
  }, 10_000, 5);
  const after1 = await syncBytes([a, b]);
  const roundMs = repairs.length > 0 ? Math.max(...repairs.map((r) => r.durationMs)) : NaN;
  const goalBytes = 2 * missingBytes + 64 * 1024;
  const goalStoredBytes = 2 * missingStoredBytes + 64 * 1024;
  const roundBytes = Math.max(...repairs.map((r) => r.bytes));
  results.diff1pct = {
    missingKeys: diffCount, missingBytes, missingStoredBytes, wallFromStartMs: Math.round(wallMs), repairRoundMs: roundMs, repairRoundBytes: roundBytes,
    syncBytes: after1.bytes, syncMessages: after1.messages, goalBytes, goalStoredBytes, goalMs: 1000,
  };
  console.log(`d=${diffCount} keys: repair round ${roundMs} ms (restart → equal digests ${Math.round(wallMs)} ms), ${after1.bytes} sync bytes on the wire, ` +
    `${after1.messages} messages; missing: ${missingBytes} B of keys + values (goal <= ${goalBytes} B: ${(after1.bytes / goalBytes).toFixed(2)} of it), ` +
    `${missingStoredBytes} B as stored records (goal <= ${goalStoredBytes} B: ${(after1.bytes / goalStoredBytes).toFixed(2)} of it)`);

  // 3. d = 0: idle rounds of the converged pair.
  await sleep(1000);
  const idle0 = await syncBytes([a, b]);
  const rounds0 = (await status(a)).antiEntropy.rounds + (await status(b)).antiEntropy.rounds;
  await sleep(idleSeconds * 1000);
  const idle1 = await syncBytes([a, b]);
  const rounds1 = (await status(a)).antiEntropy.rounds + (await status(b)).antiEntropy.rounds;
  const idleRounds = rounds1 - rounds0;
  results.idle = { seconds: idleSeconds, rounds: idleRounds, bytes: idle1.bytes - idle0.bytes, messages: idle1.messages - idle0.messages, bytesPerRound: (idle1.bytes - idle0.bytes) / Math.max(1, idleRounds) };
  console.log(`d=0: ${idleRounds} idle rounds in ${idleSeconds} s, ${(results.idle.bytesPerRound).toFixed(0)} B and ${(results.idle.messages / Math.max(1, idleRounds)).toFixed(1)} messages per round`);

  // 2. d = 1 key: B is stopped, one key changed in its store, restarted.
  await stop(b);
  await fill(dirB, [[keyOf(7), recordFor(7, 'bench~2', 1, new TextEncoder().encode('changed'))]]);
  const before2 = await syncBytes([a]);
  b = await start(dirB);
  const up2 = performance.now();
  await until('d=1 converged', () => rootsEqual([a, b]), 60_000, 2);
  const wall2 = performance.now() - up2;
  const repairs2 = await until('the d=1 repair round to be recorded', async () => {
    const [sa2, sb2] = await Promise.all([status(a), status(b)]);
    const found = [...sa2.voters, ...sb2.voters].map((m) => m.sync?.lastRepair).filter((r) => r && r.keys < 5 && r.agoMs < wall2 + 1000);
    return found.length > 0 ? found : undefined;
  }, 10_000, 5);
  const after2a = await syncBytes([a]);
  const after2b = await syncBytes([b]);
  results.diff1key = {
    wallFromStartMs: Math.round(wall2),
    repairRoundMs: repairs2.length > 0 ? Math.min(...repairs2.map((r) => r.durationMs)) : NaN,
    repairRoundBytes: repairs2.length > 0 ? Math.min(...repairs2.map((r) => r.bytes)) : NaN,
    syncBytes: after2a.bytes - before2.bytes + after2b.bytes,
    syncMessages: after2a.messages - before2.messages + after2b.messages,
  };
  console.log(`d=1 key: repair round ${results.diff1key.repairRoundMs} ms and ${results.diff1key.repairRoundBytes} B; ${results.diff1key.syncBytes} sync bytes, ${results.diff1key.syncMessages} messages on the wire from B's restart to equal digests`);

  // 5. RSS of a device holding the keys (after its repair work).
  results.rssMb = { a: Math.round(await rssMb(a.pid)), b: Math.round(await rssMb(b.pid)) };
  results.heapUsedMb = { a: Math.round((await status(a)).process.heapUsedBytes / 1048576) };

  // 4. Bootstrap: a fresh device joins and catches up.
  await mkdir(dirC, { recursive: true });
  const joinAt = performance.now();
  const c = await start(dirC, ['--listen', '/ip4/127.0.0.1/tcp/0', '--join', a.listen[0], '--cluster-key', join(dirA, 'cluster.key')]);
  const upC = performance.now();
  const progress = setInterval(() => {
    status(c).then((s) => {
      const t = Math.round(performance.now() - joinAt);
      const cu =
        s.catchUp === null
          ? 'done'
          : s.catchUp.state === 'catching-up'
            ? `${s.catchUp.keysHeld}/${s.catchUp.totalKeys} synced with ${s.catchUp.syncedWith.length}/${s.catchUp.needed}`
            : `${s.catchUp.state} ${s.catchUp.keysHeld}/${s.catchUp.totalKeys} at ${s.catchUp.recordsPerSec ?? 0} records/s`;
      console.log(`  bootstrap +${t} ms: role ${s.role}, ${s.digest.keys} keys, catch-up ${cu}, streams ${JSON.stringify(s.transfers)}`);
    }, () => undefined);
  }, 1000);
  await until('C to be a voter', async () => (await status(c)).role === 'voter', 120_000, 10);
  clearInterval(progress);
  const memberMs = performance.now() - joinAt;
  await until('C caught up with equal digests', async () => {
    const [x, y] = await Promise.all([status(a), status(c)]);
    return x.digest.root === y.digest.root && y.catchUp === null;
  }, 120_000, 5);
  const bootMs = performance.now() - joinAt;
  const sc = await status(c);
  results.bootstrap = { keys: sc.digest.keys, processStartMs: Math.round(upC - joinAt), voterMs: Math.round(memberMs), caughtUpMs: Math.round(bootMs), goalMs: 5000 };
  console.log(`bootstrap: a fresh device holds all ${sc.digest.keys} keys ${Math.round(bootMs)} ms after its process started (voter at ${Math.round(memberMs)} ms; process up after ${Math.round(upC - joinAt)} ms)`);

  // 6. Idle CPU of the converged three-device cluster, once the bootstrap's aftermath (V8 shrinking its heap
  // with background GCs for several seconds) is over.
  await sleep(15_000);
  if (process.env.DEBUG_BENCH) {
    for (const d of [a, b, c]) {
      const s = await status(d);
      console.log(JSON.stringify({ role: s.role, epoch: s.epoch, keys: s.digest.keys, root: s.digest.root, ae: s.antiEntropy, transfers: s.transfers, changes: s.membershipChanges, opsInFlight: s.opsInFlight }));
    }
  }
  const devices = [a, b, c];
  const ticks0 = await Promise.all(devices.map((d) => cpuTicks(d.pid)));
  const idleStart = performance.now();
  await sleep(idleSeconds * 1000);
  const ticks1 = await Promise.all(devices.map((d) => cpuTicks(d.pid)));
  const secs = (performance.now() - idleStart) / 1000;
  results.idleCpuPercent = devices.map((_, i) => Math.round(((ticks1[i] - ticks0[i]) / CLK_TCK / secs) * 1000) / 10);
  results.rssMb.c = Math.round(await rssMb(c.pid));
  results.heapUsedMb.c = Math.round((await status(c)).process.heapUsedBytes / 1048576);
  results.rssMb.aAfterIdle = Math.round(await rssMb(a.pid));
  console.log(`idle CPU per device over ${idleSeconds} s (converged, 3 devices): ${results.idleCpuPercent.join('%, ')}% (goal < 1%)`);
  console.log(`RSS with ${keyCount} keys: A ${results.rssMb.a} MB (${results.rssMb.aAfterIdle} MB after the idle phase; V8 heap used ${results.heapUsedMb.a} MB), B ${results.rssMb.b} MB, C ${results.rssMb.c} MB (heap used ${results.heapUsedMb.c} MB) (goal <= 100 MB)`);

  const outDir = resolve(import.meta.dirname, 'results');
  await mkdir(outDir, { recursive: true });
  const out = values.out || join(outDir, `sync-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`results: ${out}`);
  await Promise.all(devices.map(stop));
} finally {
  killAll();
  await rm(root, { recursive: true, force: true });
}

#!/usr/bin/env node
// `npm run bench`: starts a 3-process quorumd cluster on 127.0.0.1 (temp data dirs), then drives concurrent
// keep-alive HTTP clients doing 100-byte quorum PUTs and GETs at C = 1, 16, 64 for a fixed time, spread over
// the three devices. Prints ops/s, p50 and p99 per run and writes JSON to bench/results/. Not a test.
//   node bench/cluster.mjs [--duration 10] [--concurrency 1,16,64] [--ops put,get] [--value-size 100]
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { waitForFile } from './lib.mjs';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '1,16,64' },
    ops: { type: 'string', default: 'put,get' },
    'value-size': { type: 'string', default: '100' },
    keys: { type: 'string', default: '10000' },
    out: { type: 'string', default: '' },
    // Start the cluster, print its HTTP endpoints and wait (for driving it with another load client).
    serve: { type: 'boolean', default: false },
  },
});
const durationS = Number(values.duration);
const warmupS = Number(values.warmup);
const levels = values.concurrency.split(',').map(Number);
const ops = values.ops.split(',');
const valueSize = Number(values['value-size']);
const keyCount = Number(values.keys);
const BIN = resolve(import.meta.dirname, '../bin/quorumd');

const children = [];
function killAll() {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
}
process.on('exit', killAll);
if (!values.serve) process.on('SIGINT', () => process.exit(130));


async function startDevice(dataDir, args) {
  const nodeArgs = (process.env.QUORUMD_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean); // e.g. --cpu-prof
  const child = spawn(process.execPath, [...nodeArgs, BIN, 'start', '--data-dir', dataDir, '--http', '127.0.0.1:0', '--no-mdns',
    '--listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'warn', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  return waitForFile(join(dataDir, 'daemon.json'), child.pid);
}

async function getJson(url) {
  const res = await fetch(url);
  return res.json();
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
function request(base, method, path, body) {
  return new Promise((resolvePromise, reject) => {
    const url = new URL(path, base);
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method, agent,
      headers: body ? { 'content-length': body.length } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolvePromise(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function run(endpoints, op, concurrency) {
  const value = Buffer.alloc(valueSize, 'x');
  const latencies = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  const worker = async (i) => {
    const base = endpoints[i % endpoints.length];
    let n = i;
    while (!stop) {
      const key = `bench/${(n * 7919) % keyCount}`;
      n += concurrency;
      const t0 = performance.now();
      let status;
      try {
        status = op === 'put' ? await request(base, 'PUT', `/kv/${encodeURIComponent(key)}`, value)
          : await request(base, 'GET', `/kv/${encodeURIComponent(key)}`);
      } catch { status = 0; }
      const t1 = performance.now();
      if (!measuring) continue;
      if (status === 200 || status === 201 || status === 300) latencies.push(t1 - t0);
      else errors += 1;
    }
  };
  const workers = Array.from({ length: concurrency }, (_, i) => worker(i));
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  measuring = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, durationS * 1000));
  measuring = false;
  const elapsed = (performance.now() - start) / 1000;
  stop = true;
  await Promise.all(workers);
  latencies.sort((x, y) => x - y);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return { op, concurrency, ops: latencies.length, errors, opsPerSec: latencies.length / elapsed,
    p50Ms: pct(0.5), p99Ms: pct(0.99), valueSize, durationS };
}

const root = await mkdtemp(join(tmpdir(), 'quorumd-bench-'));
try {
  const a = await startDevice(join(root, 'a'), []);
  const joinArgs = ['--join', a.listen[0], '--cluster-key', join(root, 'a', 'cluster.key')];
  const b = await startDevice(join(root, 'b'), joinArgs);
  for (;;) { if ((await getJson(`${b.http}/status`)).role === 'voter') break; await new Promise((r) => setTimeout(r, 100)); }
  const c = await startDevice(join(root, 'c'), joinArgs);
  for (;;) {
    const s = await getJson(`${c.http}/status`);
    if (s.role === 'voter' && s.quorum.reachable === 3) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const endpoints = [a.http, b.http, c.http];
  if (values.serve) {
    console.log(`endpoints ${endpoints.join(',')}`);
    await new Promise((r) => { process.once('SIGTERM', r); process.once('SIGINT', r); });
    throw new Error('stopped');
  }
  // Preload every key once so GETs find values.
  await run(endpoints, 'put', 64).catch(() => undefined);
  const results = [];
  for (const op of ops) {
    for (const concurrency of levels) {
      const result = await run(endpoints, op, concurrency);
      results.push(result);
      console.log(`${op.toUpperCase().padEnd(4)} C=${String(concurrency).padEnd(3)} ${result.opsPerSec.toFixed(0).padStart(7)} ops/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  errors ${result.errors}`);
    }
  }
  for (const base of endpoints) {
    const s = await getJson(`${base}/status`);
    const n = s.network;
    console.log(`${base}: ${s.storage.commits} commits, ${s.storage.recordsCommitted} records (${(s.storage.recordsCommitted / s.storage.commits).toFixed(1)} per commit); ` +
      `${n.framesSent} frames sent, ${(n.messagesSent / n.framesSent).toFixed(1)} messages per frame`);
  }
  const outDir = resolve(import.meta.dirname, 'results');
  await mkdir(outDir, { recursive: true });
  const out = values.out || join(outDir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2)}\n`);
  console.log(`results written to ${out}`);
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 1500));
  killAll();
  agent.destroy();
  await rm(root, { recursive: true, force: true });
}

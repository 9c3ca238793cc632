#!/usr/bin/env node
// `npm run nemesis`: a black-box fault run against real quorumd daemons, on 127.0.0.1 or (`--net netns`, root)
// each in its own network namespace on one bridge (scripts/netns.mjs). Starts a cluster of `bin/quorumd start`
// processes (temp data dirs, --no-mdns, explicit --join), drives writers, context-carrying deletes and quorum
// readers over the HTTP API while injecting faults chosen from a seed (kill -9 + restart, SIGSTOP/SIGCONT, storage
// wipe, removal, join of a fresh device; with netns also a minority|majority partition, one device isolated, a
// flapping link), heals, waits for readiness, reads every key from every device and checks the history
// (scripts/nemesis-check.mjs). Uses only the CLI, the HTTP API and signals, so it runs against any build
// (`--bin`). Exits 1 on any lost write, stale read, resurrection, unexpected value, crash, failed fault step or
// an outage that outlives the faults by more than --outage-limit.
//   node scripts/nemesis.mjs [--devices 5] [--duration 60] [--seed N] [--runs K] [--net loopback|netns]
//                            [--faults kill,stop,wipe,remove,join,partition,isolate,flap] [--max-faulty 1]
//                            [--heal-timeout 30] [--keep] [--bin PATH] [--self-test] (--help: all)
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkHistory, runSelfTest } from './nemesis-check.mjs';
import { FORWARDER_SCRIPT, createTestbed, deleteStaleNamespaces, netnsSupport } from './netns.mjs';

const PROCESS_FAULTS = ['kill', 'stop', 'wipe', 'remove', 'join'];
/** Network faults: only with `--net netns`. */
const NET_FAULTS = ['partition', 'isolate', 'flap'];
const FAULT_KINDS = [...PROCESS_FAULTS, ...NET_FAULTS];
const NET_MODES = ['loopback', 'netns'];
/** In a namespace every daemon has the device's address to itself: fixed ports. */
const NETNS_HTTP_PORT = 7401;
const NETNS_P2P_PORT = 7000;
const OPTIONS = {
  devices: { type: 'string', default: '5', help: 'devices in the cluster' },
  duration: { type: 'string', default: '60', help: 'seconds of the fault phase' },
  seed: { type: 'string', default: '', help: 'seed of the fault schedule and workload (default: random, printed)' },
  runs: { type: 'string', default: '1', help: 'runs with seeds seed..seed+K-1, summary at the end' },
  net: { type: 'string', default: 'loopback', help: 'loopback: every daemon on 127.0.0.1; netns: each in its own network namespace on one bridge (root; needed for partition, isolate, flap)' },
  faults: { type: 'string', default: '', help: `fault kinds: ${FAULT_KINDS.join(',')} (default: ${PROCESS_FAULTS.join(',')}, with --net netns all)` },
  'max-faulty': { type: 'string', default: '1', help: 'devices faulty at once (faulty: from the fault until ready and caught up again)' },
  'heal-timeout': { type: 'string', default: '30', help: 'seconds to wait after healing for every device to be ready and caught up' },
  'outage-limit': { type: 'string', default: '30', help: 'seconds an outage may outlive the faults' },
  warmup: { type: 'string', default: '2', help: 'seconds of workload before the first fault' },
  clients: { type: 'string', default: '8', help: 'concurrent clients (each writes, deletes and reads)' },
  keys: { type: 'string', default: '1000', help: 'key space' },
  rate: { type: 'string', default: '150', help: 'requests per second, all clients together' },
  'value-size': { type: 'string', default: '64', help: 'bytes per value' },
  w: { type: 'string', default: 'quorum', help: 'write level of the workload (weaker levels must make the check fail)' },
  r: { type: 'string', default: 'quorum', help: 'read level of the workload and the final check (likewise)' },
  'request-timeout': { type: 'string', default: '10', help: 'seconds a client waits for an answer' },
  'log-level': { type: 'string', default: 'info', help: 'daemon log level (logs in <run dir>/logs)' },
  bin: { type: 'string', default: resolve(import.meta.dirname, '../bin/quorumd'), help: 'the quorumd to test' },
  keep: { type: 'boolean', default: false, help: 'keep data dirs, logs and history (always kept when a run fails)' },
  quiet: { type: 'boolean', default: false, help: 'no per-fault lines' },
  'self-test': { type: 'boolean', default: false, help: 'check the checker on synthetic histories and exit' },
  help: { type: 'boolean', default: false, help: 'this text' },
};

function usage() {
  const lines = ['usage: node scripts/nemesis.mjs [options]', ''];
  for (const [name, o] of Object.entries(OPTIONS)) {
    lines.push(`  --${name}${o.type === 'string' ? ' V' : ''}`.padEnd(24) + `${o.help}${o.type === 'string' && o.default !== '' ? ` (${o.default})` : ''}`);
  }
  return lines.join('\n');
}

function fail(message, code = 2) {
  process.stderr.write(`nemesis: ${message}\n`);
  process.exit(code);
}

let values;
try {
  ({ values } = parseArgs({ options: Object.fromEntries(Object.entries(OPTIONS).map(([k, o]) => [k, { type: o.type, default: o.default }])) }));
} catch (error) {
  fail(`${error.message}\n${usage()}`);
}
if (values.help) {
  process.stdout.write(`${usage()}\n`);
  process.exit(0);
}
if (values['self-test']) {
  const failures = runSelfTest();
  for (const f of failures) process.stdout.write(`FAIL ${f}\n`);
  process.stdout.write(failures.length === 0 ? 'checker self-test: all cases got the expected verdict\n' : `checker self-test: ${failures.length} case(s) failed\n`);
  process.exit(failures.length === 0 ? 0 : 1);
}

const num = (name, { min = 0, integer = false } = {}) => {
  const v = Number(values[name]);
  if (!Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) fail(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(values[name])}`);
  return v;
};
const cfg = {
  devices: num('devices', { min: 1, integer: true }),
  durationMs: num('duration') * 1000,
  runs: num('runs', { min: 1, integer: true }),
  maxFaulty: num('max-faulty', { min: 1, integer: true }),
  healTimeoutMs: num('heal-timeout') * 1000,
  outageLimitMs: num('outage-limit') * 1000,
  warmupMs: num('warmup') * 1000,
  clients: num('clients', { min: 1, integer: true }),
  keys: num('keys', { min: 1, integer: true }),
  rate: num('rate', { min: 1 }),
  valueSize: num('value-size', { min: 16, integer: true }),
  requestTimeoutMs: num('request-timeout', { min: 0.1 }) * 1000,
  w: values.w,
  r: values.r,
  net: values.net,
  faults: (values.faults === '' ? (values.net === 'netns' ? FAULT_KINDS : PROCESS_FAULTS).join(',') : values.faults).split(',').map((s) => s.trim()).filter(Boolean),
  bin: resolve(values.bin),
  logLevel: values['log-level'],
  keep: values.keep,
  quiet: values.quiet,
};
if (!NET_MODES.includes(cfg.net)) fail(`--net must be one of ${NET_MODES.join(', ')}, got ${JSON.stringify(cfg.net)}`);
for (const f of cfg.faults) if (!FAULT_KINDS.includes(f)) fail(`unknown fault kind ${JSON.stringify(f)} (known: ${FAULT_KINDS.join(', ')})`);
if (cfg.faults.length === 0) fail('--faults names no fault kind');
for (const f of cfg.faults) if (NET_FAULTS.includes(f) && cfg.net !== 'netns') fail(`fault kind ${f} needs --net netns`);
if (cfg.net === 'netns') {
  const support = netnsSupport();
  if (!support.ok) fail(`--net netns: ${support.reason}`);
  const stale = deleteStaleNamespaces();
  if (stale.length > 0) process.stderr.write(`nemesis: deleted ${stale.length} namespace(s) left by an earlier run that was killed: ${stale.join(' ')}\n`);
}
const firstSeed = values.seed === '' ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isSafeInteger(firstSeed) || firstSeed < 0) fail(`--seed must be a non-negative integer, got ${JSON.stringify(values.seed)}`);

// ------------------------------------------------------------------------------------------- processes

/** Every daemon and CLI child we started: SIGKILLed on exit, failure, SIGINT and SIGTERM. */
const children = new Set();
const runDirs = new Set(); // removed on exit unless kept
let currentRoot = '';
/** The current run's namespaces (--net netns); scripts/netns.mjs also deletes them on exit and signals. */
let currentBed;
function killAll() {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
}
process.on('exit', () => {
  killAll();
  for (const dir of runDirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));
process.on('uncaughtException', (error) => {
  process.stderr.write(`nemesis: ${error.stack ?? error}\n`);
  process.exit(3);
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const exited = (child) =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));

/** Seeded PRNG (mulberry32): the fault schedule and the workload replay from the seed as far as timing allows. */
function rngFrom(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    between: (lo, hi) => lo + (hi - lo) * next(),
    int: (n) => Math.floor(next() * n),
    pick: (list) => list[Math.floor(next() * list.length)],
  };
}

/**
 * One HTTP request without keep-alive to a device's API `{ base, socketPath?, token? }` (socketPath: the forwarder
 * into the device's namespace); rejects with `.code` (ECONNREFUSED: never sent; TIMEOUT; ECONNRESET…).
 */
function request(api, method, path, { body, headers = {}, timeoutMs }) {
  return new Promise((resolvePromise, reject) => {
    const url = new URL(path, api.base);
    const req = http.request({
      host: url.hostname, port: url.port, path: url.pathname + url.search, method, agent: false,
      ...(api.socketPath === undefined ? {} : { socketPath: api.socketPath }),
      headers: {
        host: url.host, ...(api.token === undefined ? {} : { authorization: `Bearer ${api.token}` }), ...headers,
        ...(body === undefined ? {} : { 'content-length': Buffer.byteLength(body) }),
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        if (res.headers['x-forwarder-refused'] !== undefined) {
          // The forwarder could not connect to the daemon: nothing reached it.
          const error = new Error(`${method} ${path}: connection refused (in the device)`);
          error.code = 'ECONNREFUSED';
          reject(error);
          return;
        }
        resolvePromise({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const timer = setTimeout(() => {
      const error = new Error(`${method} ${path}: no answer within ${timeoutMs} ms`);
      error.code = 'TIMEOUT';
      req.destroy(error);
    }, timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(body);
  });
}

async function getJson(api, path, timeoutMs = 2000) {
  const res = await request(api, 'GET', path, { timeoutMs });
  return { status: res.status, json: JSON.parse(res.body.toString('utf8')) };
}

/** Runs a CLI command to completion (SIGKILL after `timeoutMs`); with `device.net`, inside its namespace. */
function runCli(device, args, timeoutMs) {
  return new Promise((resolvePromise) => {
    const argv = [process.execPath, cfg.bin, ...args];
    const options = { stdio: ['ignore', 'pipe', 'pipe'] };
    const child = device.net === null ? spawn(argv[0], argv.slice(1), options) : currentBed.spawnIn(device.net, argv, options);
    children.add(child);
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolvePromise({ code, signal, output: output.trim() });
    });
  });
}

// ------------------------------------------------------------------------------------------------ run

async function runOnce(seed) {
  const root = await mkdtemp(join(tmpdir(), 'quorumd-nemesis-'));
  runDirs.add(root);
  currentRoot = root;
  await mkdir(join(root, 'logs'));
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const stamp = () => `[${(now() / 1000).toFixed(1).padStart(6)} s]`;
  const say = (line) => {
    if (!cfg.quiet) process.stdout.write(`${stamp()} ${line}\n`);
  };
  const faultRng = rngFrom(seed);
  const history = [];
  const crashes = [];
  const faultFailures = [];
  const faultCounts = Object.fromEntries(cfg.faults.map((f) => [f, 0]));
  const recoveries = [];
  const devices = []; // every device ever started, in order; `removed` ones stay listed
  const members = () => devices.filter((d) => !d.removed);
  const killTimes = new Map(); // `${device}#${generation}` -> time its process was SIGKILLed
  let nextDevice = 0;
  let clusterKey = '';
  let runOver = false;

  // --net netns: the namespaces of this run; each device gets one (net: { index, ns, ip }) and a forwarder from a
  // Unix socket in the run dir to its API (this process stays in the default namespace).
  const bed = cfg.net === 'netns' ? await createTestbed({ devices: 0 }) : undefined;
  currentBed = bed;

  async function newDevice() {
    const name = `d${nextDevice++}`;
    const device = {
      name, dir: join(root, name), gen: 0, child: null, info: null, api: null, p2pPort: 0, state: 'new', faulty: false, removed: false,
      net: null, socketPath: undefined,
    };
    if (bed !== undefined) {
      device.net = await bed.addDevice();
      device.p2pPort = NETNS_P2P_PORT;
      device.socketPath = join(root, `${name}.sock`);
      const forwarder = bed.spawnIn(device.net, [process.execPath, '-e', FORWARDER_SCRIPT, device.socketPath, device.net.ip, String(NETNS_HTTP_PORT)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.add(forwarder);
      forwarder.on('exit', (code, signal) => {
        children.delete(forwarder);
        if (!runOver) {
          faultFailures.push(`the API forwarder of ${name} exited (${code ?? signal})`);
          say(`the API forwarder of ${name} EXITED (code ${code}, signal ${signal})`);
        }
      });
      await new Promise((resolvePromise, reject) => {
        forwarder.stdout.once('data', () => resolvePromise());
        forwarder.once('exit', (code, signal) => reject(new Error(`the API forwarder of ${name} exited (${code ?? signal}) while starting`)));
      });
      forwarder.stdout.resume();
      say(`${name}: namespace ${device.net.ns}, ${device.net.ip}`);
    }
    devices.push(device);
    return device;
  }

  /** The device's address for `--join`: its listen address on the LAN (netns) or on loopback. */
  function joinAddress(device) {
    const prefix = device.net === null ? '/ip4/127.0.0.1/' : `/ip4/${device.net.ip}/`;
    return device.info.listen.find((a) => a.startsWith(prefix)) ?? device.info.listen[0];
  }

  /** Starts (or restarts) a device's daemon and waits for its daemon.json; joins through the running members. */
  async function start(device, { join: joining }) {
    let lastError;
    for (let attempt = 0; attempt < 3; attempt++) {
      device.gen += 1;
      // Loopback, last try: any port (the old one may be taken). A namespace has its address to itself.
      const listenPort = attempt === 2 && device.net === null ? 0 : device.p2pPort;
      const host = device.net === null ? '127.0.0.1' : device.net.ip;
      const args = ['start', '--data-dir', device.dir, '--http', `${host}:${device.net === null ? 0 : NETNS_HTTP_PORT}`, '--no-mdns',
        '--listen', `/ip4/${host}/tcp/${listenPort}`, '--log-level', cfg.logLevel];
      if (joining) {
        args.push('--cluster-key', clusterKey);
        for (const other of members()) {
          if (other === device || other.state !== 'up') continue;
          args.push('--join', joinAddress(other));
        }
      }
      await rm(join(device.dir, 'daemon.json'), { force: true });
      const log = openSync(join(root, 'logs', `${device.name}.log`), 'a');
      // Each daemon in its own session: job control never touches it (a shell's SIGHUP/SIGCONT to an orphaned
      // process group holding a SIGSTOPped daemon, Ctrl-C); this process kills it on exit.
      // With netns, `ip netns exec` execs the daemon: the child's pid is the daemon's.
      const options = { stdio: ['ignore', log, log], env: { ...process.env, QUORUMD_LOG_FORMAT: 'json' }, detached: true };
      const child = device.net === null
        ? spawn(process.execPath, [cfg.bin, ...args], options)
        : bed.spawnIn(device.net, [process.execPath, cfg.bin, ...args], options);
      closeSync(log);
      children.add(child);
      const gen = device.gen;
      child.on('exit', (code, signal) => {
        children.delete(child);
        if (child.expectedExit || device.child !== child || device.state === 'starting') return; // start() reports those
        device.state = 'down';
        crashes.push({ device: device.name, gen, code, signal, at: now() });
        say(`${device.name} EXITED unexpectedly (code ${code}, signal ${signal})`);
      });
      device.child = child;
      device.state = 'starting';
      const deadline = performance.now() + 30_000;
      try {
        for (;;) {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited with ${child.exitCode ?? child.signalCode} while starting`);
          try {
            const info = JSON.parse(await readFile(join(device.dir, 'daemon.json'), 'utf8'));
            if (info.pid === child.pid) {
              device.info = info;
              // Off loopback the API wants the data dir's token (the daemon wrote it before daemon.json).
              device.api = device.net === null
                ? { base: info.http }
                : { base: info.http, socketPath: device.socketPath, token: readFileSync(join(device.dir, 'api.token'), 'utf8').trim() };
              device.state = 'up';
              const port = /\/ip4\/127\.0\.0\.1\/tcp\/(\d+)/.exec(info.listen.join(' '));
              if (port !== null && device.net === null) device.p2pPort = Number(port[1]);
              return;
            }
          } catch {
            // not written yet
          }
          if (performance.now() > deadline) throw new Error('no daemon.json within 30 s');
          await sleep(25);
        }
      } catch (error) {
        lastError = error;
        child.expectedExit = true;
        child.kill('SIGKILL');
        await exited(child);
        say(`${device.name} did not start (${error.message}); ${attempt < 2 ? 'retrying' : 'giving up'}`);
      }
    }
    device.state = 'down';
    throw new Error(`${device.name} did not start: ${lastError?.message}`);
  }

  /** SIGKILL; resolves once the process is gone (its files are closed, its ports free). */
  function kill9(device) {
    const child = device.child;
    child.expectedExit = true;
    child.kill('SIGKILL');
    killTimes.set(`${device.name}#${device.gen}`, now()); // after the signal: never earlier than the real kill
    device.state = 'down';
    return exited(child);
  }

  /** Ready: /readyz 200, a voter or learner, not catching up. Returns the reason when not. */
  async function notReady(device) {
    if (device.state !== 'up') return `${device.state}`;
    try {
      const ready = await getJson(device.api, '/readyz');
      if (ready.status !== 200) return `readyz ${ready.status}: ${ready.json.message}`;
      const status = (await getJson(device.api, '/status')).json;
      if (status.role !== 'voter' && status.role !== 'learner') return `role ${status.role}`;
      if (status.catchUp !== null && status.catchUp !== undefined) return `catching up (${status.catchUp.state}, ${status.catchUp.percent ?? '?'} %)`;
      return undefined;
    } catch (error) {
      return `no answer (${error.code ?? error.message})`;
    }
  }

  async function waitReady(device, timeoutMs) {
    const deadline = performance.now() + timeoutMs;
    let reason;
    while ((reason = await notReady(device)) !== undefined) {
      if (performance.now() > deadline || runOver) return reason;
      await sleep(200);
    }
    return undefined;
  }

  // ------------------------------------------------------------------------------------- form the cluster
  say(`seed ${seed}: ${cfg.devices} devices${bed === undefined ? '' : ` in network namespaces ${bed.prefix}* (${bed.subnet}.0/24)`}, faults ${cfg.faults.join(',')}, max faulty ${cfg.maxFaulty}, ${cfg.durationMs / 1000} s; run dir ${root}`);
  const founder = await newDevice();
  await start(founder, { join: false });
  clusterKey = join(root, 'cluster.key');
  await copyFile(join(founder.dir, 'cluster.key'), clusterKey);
  for (let i = 1; i < cfg.devices; i++) {
    const device = await newDevice();
    await start(device, { join: true });
    const reason = await waitReady(device, 30_000);
    if (reason !== undefined) throw new Error(`${device.name} did not join within 30 s: ${reason}`);
  }
  for (const device of members()) {
    const reason = await waitReady(device, 30_000);
    if (reason !== undefined) throw new Error(`${device.name} not ready within 30 s: ${reason}`);
  }
  say(`cluster formed: ${members().map((d) => `${d.name} ${d.info.http}`).join(', ')}`);

  // ---------------------------------------------------------------------------------------------- workload
  let stopWorkload = false;
  let opId = 0;
  const valuePad = 'x'.repeat(cfg.valueSize);
  const keyName = (k) => `nemesis/${k}`;
  const decodeGet = (res) => {
    if (res.status === 200) return [res.body.toString('utf8')];
    if (res.status === 404) return [];
    return JSON.parse(res.body.toString('utf8')).siblings.filter((s) => !s.deleted).map((s) => Buffer.from(s.value, 'base64').toString('utf8'));
  };

  /** Sends one request through `device` and records it in the history. */
  async function perform(op, device, method, path, body, headers) {
    Object.assign(op, { id: opId++, device: device.name, gen: device.gen });
    history.push(op);
    const api = device.api;
    op.start = now();
    try {
      const res = await request(api, method, path, { body, headers, timeoutMs: cfg.requestTimeoutMs });
      op.end = now();
      op.status = res.status;
      const ok = op.kind === 'get' ? [200, 300, 404].includes(res.status) : [200, 201].includes(res.status);
      op.outcome = ok ? 'ok' : res.status >= 500 ? 'failed' : 'rejected';
      if (op.outcome === 'rejected') op.error = res.body.toString('utf8').slice(0, 200);
      if (op.kind === 'get' && ok) op.values = decodeGet(res);
      return res;
    } catch (error) {
      op.end = now();
      op.error = error.code ?? error.message;
      op.outcome = error.code === 'ECONNREFUSED' ? 'not-sent' : 'unknown';
      return undefined;
    }
  }

  async function client(index) {
    const rng = rngFrom((seed * 7919 + index * 104_729 + 1) >>> 0);
    const owned = [];
    for (let k = index; k < cfg.keys; k += cfg.clients) owned.push(k);
    const interval = (1000 * cfg.clients) / cfg.rate;
    let nextAt = now();
    let n = 0;
    while (!stopWorkload) {
      nextAt = Math.max(nextAt + interval, now() - interval);
      await sleep(Math.max(0, nextAt - now()));
      if (stopWorkload) break;
      const targets = members().filter((d) => d.info !== null);
      const device = rng.pick(targets);
      const r = rng.next();
      if (r < 0.3) {
        const key = keyName(rng.int(cfg.keys));
        await perform({ kind: 'get', key }, device, 'GET', `/kv/${encodeURIComponent(key)}?r=${cfg.r}`);
        continue;
      }
      const key = keyName(owned.length === 0 ? rng.int(cfg.keys) : rng.pick(owned));
      const value = `${seed}-${index}-${n++}-${valuePad}`.slice(0, Math.max(cfg.valueSize, 24));
      const path = `/kv/${encodeURIComponent(key)}?w=${cfg.w}`;
      if (r < 0.65) {
        await perform({ kind: 'put', key, value, ctx: null }, device, 'PUT', path, value);
        continue;
      }
      // Context-carrying: read at quorum, then write or delete with the context of that read.
      const readOp = { kind: 'get', key };
      const res = await perform(readOp, rng.pick(targets), 'GET', `/kv/${encodeURIComponent(key)}?r=${cfg.r}`);
      if (readOp.outcome !== 'ok') continue;
      const context = res.status === 300 ? JSON.parse(res.body.toString('utf8')).context : res.headers['x-causal-context'];
      if (r < 0.82) {
        if (context === undefined) await perform({ kind: 'put', key, value, ctx: null }, device, 'PUT', path, value);
        else await perform({ kind: 'put', key, value, ctx: readOp.values }, device, 'PUT', path, value, { 'x-causal-context': context });
      } else if (readOp.values.length > 0 && context !== undefined) {
        await perform({ kind: 'del', key, ctx: readOp.values }, device, 'DELETE', path, undefined, { 'x-causal-context': context });
      }
    }
  }

  const workload = Promise.all(Array.from({ length: cfg.clients }, (_, i) => client(i)));
  await sleep(cfg.warmupMs);

  // ------------------------------------------------------------------------------------------------ faults
  let healNow;
  let healing = false;
  const healSignal = new Promise((r) => (healNow = r));
  const faultSleep = (ms) => Promise.race([sleep(ms), healSignal]);
  const repairs = []; // each fault's repair step (restart, SIGCONT, removal): healing waits for all of them
  const faultEnd = now() + cfg.durationMs;
  const faultyCount = () => devices.filter((d) => d.faulty).length;

  /**
   * The device is faulty from now until `repaired` (the repair step) resolved and it is ready and caught up
   * again, so that by default no fault overlaps another one's recovery. `repaired` resolving to false: the device
   * is gone (removed), nothing to wait for.
   */
  function track(device, kind, repaired) {
    device.faulty = true;
    const step = repaired.catch((error) => {
      faultFailures.push(`${kind} ${device.name}: ${error.message}`);
      say(`FAULT STEP FAILED: ${kind} ${device.name}: ${error.message}`);
      return false;
    });
    repairs.push(step);
    void step.then(async (ok) => {
      if (ok !== false && !device.removed) {
        const since = now();
        const reason = await waitReady(device, 120_000);
        const ms = now() - since;
        if (runOver) return;
        recoveries.push({ device: device.name, kind, ms, ok: reason === undefined });
        say(reason === undefined ? `${device.name} ready again ${(ms / 1000).toFixed(1)} s after its ${kind} ended` : `${device.name} NOT ready 120 s after its ${kind}: ${reason}`);
      }
      device.faulty = false;
    });
  }

  async function inject(kind) {
    const healthy = members().filter((d) => d.state === 'up' && !d.faulty);
    const count = members().length;
    if (kind === 'join') {
      if (count > cfg.devices) return false;
      const device = await newDevice();
      say(`join: fresh device ${device.name}`);
      faultCounts.join += 1;
      track(device, 'join', (async () => {
        if (!devices.some((d) => d.removed)) return start(device, { join: true });
        // After a removal a new device joins only by an operator's decision: an admission window on the member it
        // asks. Windows are per device and a restart closes one, so keep one open on every member that is up
        // until the new device is in.
        const openWindows = () => Promise.all(members().filter((d) => d !== device && d.state === 'up').map((member) =>
          request(member.api, 'POST', '/cluster/admit', { body: JSON.stringify({ forMs: 600_000 }), headers: { 'content-type': 'application/json' }, timeoutMs: 5_000 })
            .catch((error) => say(`admit on ${member.name} failed: ${error.code ?? error.message}`))));
        await openWindows();
        const started = await start(device, { join: true });
        void (async () => {
          for (let i = 0; i < 40 && !runOver; i++) {
            await sleep(3_000);
            if (device.state !== 'up' || (await notReady(device)) === undefined) return;
            await openWindows();
          }
        })();
        return started;
      })());
      return true;
    }
    if (kind === 'remove' && (count <= 3 || count < cfg.devices)) return false;
    if (kind === 'partition') {
      // Only on a whole, healthy cluster: the largest minority (2 of 5, 1 of 3) on a bridge of its own, the rest
      // keeps a quorum. The minority counts as faulty (also beyond --max-faulty) until ready again.
      const minoritySize = Math.floor((count - 1) / 2);
      if (minoritySize < 1 || healthy.length !== count || devices.some((d) => d.faulty)) return false;
      const rest = [...healthy];
      const minority = Array.from({ length: minoritySize }, () => rest.splice(faultRng.int(rest.length), 1)[0]);
      const partitionMs = Math.round(faultRng.between(2000, 10_000));
      faultCounts.partition += 1;
      say(`partition for ${(partitionMs / 1000).toFixed(1)} s: ${minority.map((d) => d.name).join(',')} | ${rest.map((d) => d.name).join(',')}`);
      const repaired = (async () => {
        await bed.partition(rest.map((d) => d.net), minority.map((d) => d.net));
        await faultSleep(partitionMs);
        await bed.heal();
        say(`partition healed: ${minority.map((d) => d.name).join(',')} back`);
      })();
      for (const d of minority) track(d, kind, repaired);
      return true;
    }
    if (healthy.length === 0) return false;
    const victim = faultRng.pick(healthy);
    const downMs = Math.round(faultRng.between(1000, 5000));
    faultCounts[kind] += 1;
    if (kind === 'kill') {
      say(`kill -9 ${victim.name}, restart in ${(downMs / 1000).toFixed(1)} s`);
      track(victim, kind, (async () => {
        await kill9(victim);
        await faultSleep(downMs);
        await start(victim, { join: true });
      })());
    } else if (kind === 'stop') {
      const stopMs = Math.round(faultRng.between(1000, 6000));
      say(`SIGSTOP ${victim.name} for ${(stopMs / 1000).toFixed(1)} s`);
      victim.child.kill('SIGSTOP');
      victim.state = 'stopped';
      track(victim, kind, faultSleep(stopMs).then(() => {
        victim.child.kill('SIGCONT');
        if (victim.state === 'stopped') victim.state = 'up';
      }));
    } else if (kind === 'wipe') {
      say(`wipe ${victim.name}: kill -9, remove quorumd.db*, restart in ${(downMs / 1000).toFixed(1)} s`);
      track(victim, kind, (async () => {
        await kill9(victim);
        for (const suffix of ['', '-wal', '-shm', '-journal']) await rm(join(victim.dir, `quorumd.db${suffix}`), { force: true });
        await faultSleep(downMs);
        await start(victim, { join: true });
      })());
    } else if (kind === 'isolate') {
      const isolateMs = Math.round(faultRng.between(2000, 10_000));
      say(`isolate ${victim.name}: its bridge port down for ${(isolateMs / 1000).toFixed(1)} s`);
      track(victim, kind, (async () => {
        await bed.cut(victim.net);
        await faultSleep(isolateMs);
        await bed.restore(victim.net);
      })());
    } else if (kind === 'flap') {
      // Down and up in turns of 0.2-1.5 s for 2-6 s in all, ending up.
      const phases = [];
      for (let total = faultRng.between(2000, 6000); total > 0;) {
        const ms = Math.round(faultRng.between(200, 1500));
        phases.push(ms);
        total -= ms;
      }
      say(`flap ${victim.name}: its bridge port down/up ${phases.length} times (${phases.map((ms) => (ms / 1000).toFixed(1)).join('/')} s)`);
      track(victim, kind, (async () => {
        for (let i = 0; i < phases.length && !healing; i++) {
          await (i % 2 === 0 ? bed.cut(victim.net) : bed.restore(victim.net));
          await faultSleep(phases[i]);
        }
        await bed.restore(victim.net);
      })());
    } else if (kind === 'remove') {
      say(`remove ${victim.name}: kill -9, then \`quorumd remove\` through another member`);
      track(victim, kind, (async () => {
        await kill9(victim);
        const deadline = performance.now() + 30_000;
        let last = '';
        while (performance.now() < deadline) {
          const via = members().filter((d) => d !== victim && d.state === 'up');
          if (via.length > 0) {
            const through = faultRng.pick(via);
            const auth = through.api.token === undefined ? [] : ['--token', through.api.token];
            const res = await runCli(through, ['remove', victim.info.peerId, '--api', through.info.http, ...auth], 20_000);
            if (res.code === 0) {
              victim.removed = true;
              say(`${victim.name} removed through ${through.name}: ${res.output.split('\n')[0]}`);
              await rm(victim.dir, { recursive: true, force: true });
              return false;
            }
            last = res.output.split('\n')[0] || `exit ${res.code ?? res.signal}`;
          }
          await sleep(500);
        }
        say(`remove of ${victim.name} did not succeed within 30 s (${last}); restarting it`);
        faultFailures.push(`remove ${victim.name}: not done within 30 s: ${last}`);
        await start(victim, { join: true });
        return true;
      })());
    }
    return true;
  }

  while (now() < faultEnd) {
    await sleep(Math.round(faultRng.between(500, 3000)));
    if (now() >= faultEnd) break;
    if (faultyCount() >= cfg.maxFaulty) {
      while (faultyCount() >= cfg.maxFaulty && now() < faultEnd) await sleep(100);
      continue;
    }
    const kinds = [...cfg.faults];
    let injected = false;
    while (!injected && kinds.length > 0) {
      const kind = kinds.splice(faultRng.int(kinds.length), 1)[0];
      injected = await inject(kind);
    }
  }

  // -------------------------------------------------------------------------------------------------- heal
  say('heal: ending every fault');
  stopWorkload = true;
  healing = true;
  healNow();
  // Every fault's repair step runs now (its sleep ended); then anything still down (a crash) is started again.
  await Promise.all(repairs);
  if (bed !== undefined) {
    // Every repair step has run; should one have failed, no port stays down or split off.
    try {
      await bed.heal();
      for (const device of devices) await bed.restore(device.net);
    } catch (error) {
      faultFailures.push(`heal the network: ${error.message}`);
    }
  }
  for (const device of members()) {
    if (device.state === 'down') {
      say(`${device.name} is down (crashed or failed to start): starting it`);
      await start(device, { join: true }).catch((error) => faultFailures.push(`heal ${device.name}: ${error.message}`));
    }
  }
  const healAt = now();
  say('healed: every device running');
  await workload;

  // Time to converge: ready (readyz), caught up (ready, voter/learner, not catching up), equal digests.
  const conv = { readyMs: null, caughtUpMs: null, digestsEqualMs: null, notReady: [], lastPollMs: 0 };
  let pollDone = false;
  const poller = (async () => {
    while (!pollDone) {
      const running = members().filter((d) => d.state === 'up');
      const answers = await Promise.all(running.map(async (d) => {
        try {
          const readyz = await getJson(d.api, '/readyz');
          const ready = readyz.status === 200;
          const s = (await getJson(d.api, '/status')).json;
          return { d, ready, why: readyz.json.message, caughtUp: ready && (s.role === 'voter' || s.role === 'learner') && s.catchUp == null, root: s.digest?.root, s };
        } catch (error) {
          return { d, ready: false, caughtUp: false, root: undefined, error: error.code ?? error.message };
        }
      }));
      const t = now() - healAt;
      conv.lastPollMs = t;
      const all = running.length === members().length;
      if (conv.readyMs === null && all && answers.every((a) => a.ready)) conv.readyMs = t;
      if (conv.caughtUpMs === null && all && answers.every((a) => a.caughtUp)) conv.caughtUpMs = t;
      if (conv.digestsEqualMs === null && conv.caughtUpMs !== null && answers.every((a) => a.root !== undefined && a.root === answers[0].root)) conv.digestsEqualMs = t;
      conv.notReady = answers.filter((a) => !a.caughtUp).map((a) => `${a.d.name}: ${a.error ?? (a.ready ? `role ${a.s.role}, catching up ${a.s.catchUp?.percent ?? '?'} %` : `readyz 503 (role ${a.s.role}): ${a.why}`)}`);
      if (conv.digestsEqualMs !== null) break;
      await sleep(200);
    }
  })();
  const readyDeadline = healAt + cfg.healTimeoutMs;
  while (conv.caughtUpMs === null && now() < readyDeadline) await sleep(100);
  if (conv.caughtUpMs === null) say(`not every device ready and caught up ${cfg.healTimeoutMs / 1000} s after healing: ${conv.notReady.join('; ')}`);
  else say(`every device ready after ${(conv.readyMs / 1000).toFixed(1)} s, caught up after ${(conv.caughtUpMs / 1000).toFixed(1)} s`);

  // ----------------------------------------------------------------------------------------- final check
  const keysTouched = [...new Set(history.filter((o) => o.kind !== 'get').map((o) => o.key))];
  const finalDevices = members().filter((d) => d.state === 'up');
  const retryUntil = healAt + cfg.outageLimitMs;
  const finalCheckUntil = now() + 180_000;
  let unavailableAfterHeal = 0;
  const unavailableByDevice = {};
  let unavailableAtLimit = 0;
  let finalUnchecked = 0;
  const jobs = keysTouched.flatMap((key) => finalDevices.map((device) => ({ key, device })));
  say(`final check: ${keysTouched.length} keys from ${finalDevices.length} devices at r=${cfg.r}`);
  const finalWorker = async () => {
    for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) {
      let first = true;
      for (;;) {
        if (now() > finalCheckUntil) {
          finalUnchecked += 1;
          break;
        }
        const op = { kind: 'get', key: job.key, final: true };
        await perform(op, job.device, 'GET', `/kv/${encodeURIComponent(job.key)}?r=${cfg.r}`);
        if (op.outcome === 'ok') break;
        if (first) {
          unavailableAfterHeal += 1;
          unavailableByDevice[job.device.name] = (unavailableByDevice[job.device.name] ?? 0) + 1;
        }
        first = false;
        if (now() > retryUntil) {
          unavailableAtLimit += 1;
          break;
        }
        await sleep(500);
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, finalWorker));
  const finalCheckMs = now() - healAt;
  // Not caught up yet: keep watching until the outage limit; then at most 5 s more for equal digests.
  while (conv.caughtUpMs === null && now() < healAt + cfg.outageLimitMs) await sleep(100);
  await Promise.race([poller, sleep(5000)]);
  pollDone = true;
  await poller;
  runOver = true;

  // -------------------------------------------------------------------------------------------- verdict
  for (const op of history) {
    if (op.outcome === 'unknown') {
      const killedAt = killTimes.get(`${op.device}#${op.gen}`);
      if (killedAt !== undefined) op.effEnd = killedAt;
    }
  }
  const checked = checkHistory(history.filter((o) => o.outcome !== 'rejected'));
  const inFaults = history.filter((o) => !o.final && o.end <= healAt);
  const summary = {
    seed, net: cfg.net, devices: cfg.devices, faults: cfg.faults, maxFaulty: cfg.maxFaulty, durationS: cfg.durationMs / 1000,
    attempted: checked.writesAttempted + checked.deletesAttempted,
    acked: checked.writesAcked + checked.deletesAcked,
    writesAcked: checked.writesAcked, deletesAcked: checked.deletesAcked,
    reads: checked.reads - checked.finalReads, finalReads: checked.finalReads,
    lost: checked.lost, staleReads: checked.staleReads, resurrected: checked.resurrected, unexpected: checked.unexpected,
    uncheckedWrites: checked.uncheckedWrites, finalUnchecked,
    unavailableDuringFaults: inFaults.filter((o) => o.outcome === 'failed' || o.outcome === 'unknown').length,
    refusedDuringFaults: inFaults.filter((o) => o.outcome === 'not-sent').length,
    rejected: history.filter((o) => o.outcome === 'rejected').length,
    unavailableAfterHeal, unavailableAfterHealByDevice: unavailableByDevice, unavailableAtLimit,
    readyMs: round(conv.readyMs), caughtUpMs: round(conv.caughtUpMs), digestsEqualMs: round(conv.digestsEqualMs),
    timeToConvergeMs: round(conv.caughtUpMs), finalCheckMs: round(finalCheckMs),
    notReadyAtEnd: conv.caughtUpMs === null ? conv.notReady : [],
    faultsInjected: faultCounts,
    recoveryMaxMs: round(Math.max(0, ...recoveries.map((r) => r.ms))),
    crashes: crashes.length, faultFailures,
  };
  const reasons = [];
  if (summary.lost > 0) reasons.push(`${summary.lost} lost`);
  if (summary.staleReads > 0) reasons.push(`${summary.staleReads} stale reads`);
  if (summary.resurrected > 0) reasons.push(`${summary.resurrected} resurrected`);
  if (summary.unexpected > 0) reasons.push(`${summary.unexpected} unexpected values`);
  if (summary.acked === 0) reasons.push('no write was acknowledged');
  if (summary.unavailableAtLimit > 0) reasons.push(`${summary.unavailableAtLimit} final reads still unavailable ${cfg.outageLimitMs / 1000} s after healing`);
  if (summary.finalUnchecked > 0) reasons.push(`${summary.finalUnchecked} final reads not done in time`);
  if (conv.caughtUpMs === null || conv.caughtUpMs > cfg.outageLimitMs) {
    reasons.push(`not every device ready and caught up within ${cfg.outageLimitMs / 1000} s of healing`);
  }
  if (summary.crashes > 0) reasons.push(`${summary.crashes} daemon crash(es)`);
  if (faultFailures.length > 0) reasons.push(`${faultFailures.length} fault step(s) failed`);
  summary.ok = reasons.length === 0;
  summary.failures = reasons;

  const lines = [
    `seed ${seed}: ${summary.ok ? 'PASS' : `FAIL (${reasons.join(', ')})`}`,
    `  attempted ${summary.attempted}  acked ${summary.acked} (writes ${summary.writesAcked}, deletes ${summary.deletesAcked})  reads ${summary.reads} + final ${summary.finalReads}`,
    `  lost ${summary.lost}  stale reads ${summary.staleReads}  resurrected ${summary.resurrected}  unexpected ${summary.unexpected}`,
    `  unavailable: during faults ${summary.unavailableDuringFaults} (+ ${summary.refusedDuringFaults} refused by a device that was down), after heal ${summary.unavailableAfterHeal}${summary.unavailableAfterHeal > 0 ? ` ${JSON.stringify(unavailableByDevice)}` : ''} (still at +${cfg.outageLimitMs / 1000} s: ${summary.unavailableAtLimit})`,
    `  time to converge ${fmtS(conv.caughtUpMs)} (ready ${fmtS(conv.readyMs)}, digests equal ${fmtS(conv.digestsEqualMs)})  final check done at +${fmtS(finalCheckMs)}`,
    `  faults ${Object.entries(faultCounts).map(([k, v]) => `${k} ${v}`).join(', ')}; slowest recovery ${fmtS(summary.recoveryMaxMs)}; crashes ${summary.crashes}; failed fault steps ${faultFailures.length}`,
  ];
  for (const [kind, list] of Object.entries(checked.examples)) for (const e of list.slice(0, 5)) lines.push(`  ${kind}: ${JSON.stringify(e)}`);
  const rejected = history.filter((o) => o.outcome === 'rejected');
  if (rejected.length > 0) lines.push(`  ${rejected.length} request(s) answered 4xx (not counted as writes), first: ${rejected[0].kind} ${rejected[0].key} ${rejected[0].status} ${rejected[0].error}`);
  for (const f of faultFailures) lines.push(`  fault step failed: ${f}`);
  for (const c of crashes) lines.push(`  crash: ${JSON.stringify(c)}`);
  for (const n of summary.notReadyAtEnd) lines.push(`  not ready: ${n}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stdout.write(`NEMESIS_RESULT ${JSON.stringify(summary)}\n`);

  // Clean up: kill every daemon; keep the run dir (data, logs, history) when asked or when the run failed.
  for (const device of devices) {
    if (device.child !== null && device.child.exitCode === null && device.child.signalCode === null) {
      device.child.expectedExit = true;
      device.child.kill('SIGKILL');
    }
  }
  if (bed !== undefined) {
    await bed.teardown();
    currentBed = undefined;
  }
  if (cfg.keep || !summary.ok) {
    await writeFile(join(root, 'history.json'), JSON.stringify({ summary, examples: checked.examples, history }));
    runDirs.delete(root);
    process.stdout.write(`  kept ${root} (logs/, history.json, data dirs)\n`);
  } else {
    await sleep(200);
    await rm(root, { recursive: true, force: true });
    runDirs.delete(root);
  }
  return summary;
}

function round(ms) {
  return ms === null || ms === undefined ? null : Math.round(ms);
}
function fmtS(ms) {
  return ms === null || ms === undefined ? 'never' : `${(ms / 1000).toFixed(1)} s`;
}

// ---------------------------------------------------------------------------------------------------- main
const results = [];
for (let i = 0; i < cfg.runs; i++) {
  const seed = firstSeed + i;
  try {
    results.push(await runOnce(seed));
  } catch (error) {
    process.stdout.write(`seed ${seed}: FAIL (the run itself failed: ${error.message})\n`);
    results.push({ seed, ok: false, failures: [`run failed: ${error.message}`] });
    killAll();
    await currentBed?.teardown();
    currentBed = undefined;
    runDirs.delete(currentRoot);
    process.stdout.write(`  kept ${currentRoot} (logs/, data dirs)\n`);
  }
}
const failed = results.filter((r) => !r.ok);
if (cfg.runs > 1) {
  const sum = (k) => results.reduce((a, r) => a + (r[k] ?? 0), 0);
  process.stdout.write(`\nsummary of ${results.length} runs (seeds ${firstSeed}..${firstSeed + cfg.runs - 1}): ${results.length - failed.length} passed, ${failed.length} failed\n`);
  for (const r of results) {
    process.stdout.write(`  seed ${r.seed}: ${r.ok ? 'pass' : 'FAIL'}  acked ${r.acked ?? '-'}  lost ${r.lost ?? '-'}  stale ${r.staleReads ?? '-'}  resurrected ${r.resurrected ?? '-'}  unavailable after heal ${r.unavailableAfterHeal ?? '-'}  converge ${fmtS(r.timeToConvergeMs)}${r.ok ? '' : `  (${r.failures.join(', ')})`}\n`);
  }
  process.stdout.write(`  total: acked ${sum('acked')}, lost ${sum('lost')}, stale ${sum('staleReads')}, resurrected ${sum('resurrected')}, unavailable after heal ${sum('unavailableAfterHeal')}\n`);
  process.stdout.write(`NEMESIS_SUMMARY ${JSON.stringify({ runs: results.length, passed: results.length - failed.length, failedSeeds: failed.map((r) => r.seed) })}\n`);
}
const replay = process.argv.slice(2).filter((a, i, all) => a !== '--seed' && all[i - 1] !== '--seed' && !a.startsWith('--seed=') && a !== '--runs' && all[i - 1] !== '--runs' && !a.startsWith('--runs='));
for (const r of failed) process.stdout.write(`replay: npm run nemesis -- ${[...replay, '--seed', String(r.seed)].join(' ')}\n`);
process.exit(failed.length === 0 ? 0 : 1);

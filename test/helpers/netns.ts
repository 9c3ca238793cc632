// Network-namespace LAN testbed for tests (root only): one bridge namespace plus one namespace per device, the
// processes run inside them, and their teardown (also on a crashed run, through exit and signal fallbacks).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { BIN, type DaemonInfo, type DeviceProcess, type ExecResult, runProcess } from './procs.js';
import { DAEMON_FILE } from '../../src/config/files.js';

export type { ExecResult } from './procs.js';
import { waitFor } from './wait.js';

export interface Device {
  /** 1-based; also the last octet of `ip` and the number of the bridge port `p<index>`. */
  readonly index: number;
  readonly ns: string;
  readonly ip: string;
}

export interface Testbed {
  /** `q` + 5 random base36 characters; every namespace of this testbed starts with it. */
  readonly prefix: string;
  /** The namespace that holds the bridge `br0` and the ports `p<i>`. */
  readonly bridgeNs: string;
  /** `10.a.b` of the testbed's /24. */
  readonly subnet: string;
  /** Every device, in index order, including the ones added later. */
  readonly devices: readonly Device[];
  addDevice(): Promise<Device>;
  /** Takes the device's bridge port down: nothing reaches it or leaves it; its own addresses and routes stay. */
  cut(device: Device): Promise<void>;
  restore(device: Device): Promise<void>;
  /**
   * Splits the LAN: the bridge ports of `groups[i]` (i >= 1) move to a bridge `br<i>` of their own, so devices
   * reach (unicast and multicast) only the devices of their group; devices in no group stay on `br0` with
   * `groups[0]`. Links stay up. Replaces any earlier partition.
   */
  partition(...groups: (readonly Device[])[]): Promise<void>;
  /** Ends a partition: every port back on `br0`. */
  heal(): Promise<void>;
  /** SIGKILLs every process started in the testbed and deletes its namespaces. Idempotent; never throws. */
  teardown(): Promise<void>;
}


export interface ProcessIn {
  readonly device: Device;
  readonly child: ChildProcess;
  readonly pid: number;
  /** stdout and stderr interleaved (last 200 kB). */
  output(): string;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

export interface DaemonIn extends DeviceProcess {
  readonly device: Device;
  kill(): Promise<void>;
}

export interface FetchInResponse {
  status: number;
  text: string;
  json: Record<string, unknown> | undefined;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
}

export interface FetchInInit {
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Default: curl when it is installed (≈40 ms a request), else node (≈120 ms). */
  client?: 'curl' | 'node';
}

export const DAEMON_HTTP_PORT = 7401;
export const DAEMON_P2P_PORT = 7000;

const IP_CANDIDATES = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'];

function findExecutable(name: string, candidates: readonly string[] = []): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  for (const path of [...candidates, ...dirs.map((d) => join(d, name))]) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

let supportCache: { ok: true } | { ok: false; reason: string } | undefined;
let ipPath: string | undefined;
let curlPath: string | null | undefined;

function ipBin(): string {
  ipPath ??= findExecutable('ip', IP_CANDIDATES);
  if (ipPath === undefined) throw new Error('the `ip` command (iproute2) was not found');
  return ipPath;
}

function curlBin(): string | undefined {
  if (curlPath === undefined) curlPath = findExecutable('curl', ['/usr/bin/curl', '/bin/curl']) ?? null;
  return curlPath ?? undefined;
}

/**
 * Whether testbeds can run here: root, `ip` present, and a throwaway namespace with a bridge and a veth pair
 * can really be created (a root shell in an unprivileged container cannot). Cached.
 */
export function netnsSupport(): { ok: true } | { ok: false; reason: string } {
  if (supportCache !== undefined) return supportCache;
  supportCache = probeSupport();
  return supportCache;
}

function probeSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'network-namespace tests need root' };
  const ip = findExecutable('ip', IP_CANDIDATES);
  if (ip === undefined) return { ok: false, reason: 'the `ip` command (iproute2) is not installed' };
  const ns = `${newPrefix()}probe`;
  try {
    execFileSync(ip, ['netns', 'add', ns], { stdio: 'pipe' });
  } catch (error) {
    return { ok: false, reason: `cannot create a network namespace: ${errorText(error)}` };
  }
  try {
    execFileSync(ip, ['-n', ns, 'link', 'add', 'b0', 'type', 'bridge'], { stdio: 'pipe' });
    execFileSync(ip, ['-n', ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'], { stdio: 'pipe' });
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: `cannot create a bridge or veth pair in a namespace: ${errorText(error)}` };
  } finally {
    try {
      execFileSync(ip, ['netns', 'del', ns], { stdio: 'pipe' });
    } catch {
      // nothing more to do
    }
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error && 'stderr' in error) {
    const stderr = String((error as { stderr: unknown }).stderr).trim();
    if (stderr !== '') return stderr;
  }
  return error instanceof Error ? error.message : String(error);
}

function newPrefix(): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  return `q${[...randomBytes(5)].map((b) => alphabet[b % 36]).join('')}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Bookkeeping: every live testbed, its namespaces and processes, so that teardown and the exit fallback find them.

interface TestbedState {
  readonly prefix: string;
  /** Namespaces in creation order (bridge first); recorded before `ip netns add` so partial setups are removed. */
  readonly namespaces: string[];
  readonly children: Set<ChildProcess>;
  closed: boolean;
}

const live = new Set<TestbedState>();
const stateByNs = new Map<string, TestbedState>();

function stateOf(device: Device): TestbedState {
  const state = stateByNs.get(device.ns);
  if (state === undefined || state.closed) throw new Error(`device ${device.ns} does not belong to a live testbed`);
  return state;
}

function track(state: TestbedState, child: ChildProcess): void {
  state.children.add(child);
  child.once('exit', () => state.children.delete(child));
  // A child that fails to spawn emits 'error' and no 'exit'.
  child.once('error', () => state.children.delete(child));
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let fallbacksInstalled = false;

function onExit(): void {
  for (const state of [...live]) cleanupSync(state);
}

function onSignal(signal: NodeJS.Signals): void {
  onExit();
  uninstallFallbacks();
  // Re-raise with the default action unless someone else handles the signal.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installFallbacks(): void {
  if (fallbacksInstalled) return;
  fallbacksInstalled = true;
  process.on('exit', onExit);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

function uninstallFallbacks(): void {
  if (!fallbacksInstalled) return;
  fallbacksInstalled = false;
  process.off('exit', onExit);
  for (const signal of SIGNALS) process.off(signal, onSignal);
}

function killPid(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** PIDs of processes inside one of our namespaces (grandchildren of what we started, e.g. a shell's children). */
function pidsIn(ns: string): number[] {
  try {
    const out = execFileSync(ipBin(), ['netns', 'pids', ns], { stdio: 'pipe', encoding: 'utf8' });
    return out.split('\n').map((l) => Number(l.trim())).filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}

/** Synchronous teardown for process exit: no awaiting possible, so kill, then delete namespaces. */
function cleanupSync(state: TestbedState): void {
  state.closed = true;
  for (const child of state.children) killPid(child.pid);
  state.children.clear();
  for (const ns of [...state.namespaces].reverse()) {
    for (const pid of pidsIn(ns)) killPid(pid);
    try {
      execFileSync(ipBin(), ['netns', 'del', ns], { stdio: 'pipe' });
    } catch {
      // not created, or already deleted
    }
    stateByNs.delete(ns);
  }
  live.delete(state);
  if (live.size === 0) uninstallFallbacks();
}

// ---------------------------------------------------------------------------------------------------------------
// Running `ip`.

async function ip(args: string[]): Promise<void> {
  const result = await run([ipBin(), ...args], { timeoutMs: 10_000 });
  if (result.code !== 0) throw new Error(`ip ${args.join(' ')} failed (${result.code}): ${result.stderr.trim()}`);
}

async function ipQuiet(args: string[]): Promise<ExecResult | undefined> {
  try {
    return await run([ipBin(), ...args], { timeoutMs: 10_000 });
  } catch {
    return undefined;
  }
}

function run(argv: string[], opts: { timeoutMs: number; input?: string; state?: TestbedState }): Promise<ExecResult> {
  const state = opts.state;
  return runProcess(argv, { timeoutMs: opts.timeoutMs, input: opts.input, onSpawn: state === undefined ? undefined : (child) => track(state, child) });
}

// ---------------------------------------------------------------------------------------------------------------
// The testbed.

export async function createTestbed(options: { devices: number }): Promise<Testbed> {
  const support = netnsSupport();
  if (!support.ok) throw new Error(`network namespaces are not available: ${support.reason}`);
  if (!Number.isInteger(options.devices) || options.devices < 0 || options.devices > 250) {
    throw new Error(`devices must be an integer in 0..250, got ${options.devices}`);
  }
  const prefix = newPrefix();
  const subnet = `10.${randomInt(100, 251)}.${randomInt(0, 256)}`;
  const bridgeNs = `${prefix}br`;
  const state: TestbedState = { prefix, namespaces: [], children: new Set(), closed: false };
  live.add(state);
  installFallbacks();
  const devices: Device[] = [];
  let teardownPromise: Promise<void> | undefined;

  const addNamespace = async (ns: string): Promise<void> => {
    state.namespaces.push(ns);
    stateByNs.set(ns, state);
    await ip(['netns', 'add', ns]);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  };

  const addDevice = async (): Promise<Device> => {
    if (state.closed) throw new Error(`testbed ${prefix} was torn down`);
    const index = devices.length + 1;
    if (index > 254) throw new Error('a testbed holds at most 254 devices');
    const device: Device = { index, ns: `${prefix}d${index}`, ip: `${subnet}.${index}` };
    await addNamespace(device.ns);
    // Interface names are per namespace, so `p<i>` and `eth0` cannot collide with another testbed.
    await ip(['-n', bridgeNs, 'link', 'add', `p${index}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', device.ns]);
    await ip(['-n', bridgeNs, 'link', 'set', `p${index}`, 'master', 'br0']);
    await ip(['-n', bridgeNs, 'link', 'set', `p${index}`, 'up']);
    await ip(['-n', device.ns, 'addr', 'add', `${device.ip}/24`, 'dev', 'eth0']);
    await ip(['-n', device.ns, 'link', 'set', 'eth0', 'multicast', 'on']);
    await ip(['-n', device.ns, 'link', 'set', 'eth0', 'up']);
    // multicast-dns sends via 0.0.0.0: without this route (there is no default route) mDNS fails silently.
    await ip(['-n', device.ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
    devices.push(device);
    return device;
  };

  const port = (device: Device): string => {
    if (devices[device.index - 1] !== device) throw new Error(`${device.ns} is not a device of testbed ${prefix}`);
    if (state.closed) throw new Error(`testbed ${prefix} was torn down`);
    return `p${device.index}`;
  };

  const teardown = (): Promise<void> => {
    teardownPromise ??= (async () => {
      if (!live.has(state)) return;
      state.closed = true;
      const children = [...state.children];
      for (const child of children) killPid(child.pid);
      await Promise.all(children.map((child) => exited(child, 2_000)));
      for (const ns of [...state.namespaces].reverse()) {
        for (const pid of pidsIn(ns)) killPid(pid);
        const result = await ipQuiet(['netns', 'del', ns]);
        if (result !== undefined && result.code !== 0 && !result.stderr.includes('No such file')) {
          console.warn(`testbed ${prefix}: ip netns del ${ns}: ${result.stderr.trim()}`);
        }
        stateByNs.delete(ns);
      }
      state.children.clear();
      live.delete(state);
      if (live.size === 0) uninstallFallbacks();
    })().catch((error: unknown) => {
      console.warn(`testbed ${prefix}: teardown failed, falling back to the synchronous path: ${String(error)}`);
      cleanupSync(state);
    });
    return teardownPromise;
  };

  // Bridges created for partitions (br0 always exists); every device's port is on exactly one of them.
  const bridges = new Set<number>([0]);
  const bridgeOf = new Map<Device, number>();
  const ensureBridge = async (i: number): Promise<void> => {
    if (bridges.has(i)) return;
    await ip(['-n', bridgeNs, 'link', 'add', `br${i}`, 'type', 'bridge', 'mcast_snooping', '0']);
    await ip(['-n', bridgeNs, 'link', 'set', `br${i}`, 'up']);
    bridges.add(i);
  };
  const moveTo = async (device: Device, i: number): Promise<void> => {
    if ((bridgeOf.get(device) ?? 0) === i) return;
    await ip(['-n', bridgeNs, 'link', 'set', port(device), 'master', `br${i}`]);
    bridgeOf.set(device, i);
  };
  const moveAllTo = async (i: number): Promise<void> => {
    for (const device of devices) await moveTo(device, i);
  };

  try {
    await addNamespace(bridgeNs);
    // mcast_snooping 0: flood multicast to every port, so mDNS needs no IGMP querier.
    await ip(['-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
    await ip(['-n', bridgeNs, 'link', 'set', 'br0', 'up']);
    for (let i = 0; i < options.devices; i++) await addDevice();
  } catch (error) {
    await teardown();
    throw error;
  }

  return {
    prefix,
    bridgeNs,
    subnet,
    devices,
    addDevice,
    cut: async (device) => ip(['-n', bridgeNs, 'link', 'set', port(device), 'down']),
    restore: async (device) => ip(['-n', bridgeNs, 'link', 'set', port(device), 'up']),
    partition: async (...groups) => {
      const seen = new Set<Device>();
      for (const group of groups) {
        for (const device of group) {
          if (seen.has(device)) throw new Error(`${device.ns} is in two groups of the partition`);
          seen.add(device);
        }
      }
      const target = new Map<Device, number>();
      for (let i = 1; i < groups.length; i++) {
        await ensureBridge(i);
        for (const device of groups[i] ?? []) target.set(device, i);
      }
      for (const device of devices) await moveTo(device, target.get(device) ?? 0);
    },
    heal: async () => moveAllTo(0),
    teardown,
  };
}

function exited(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    const timer = setTimeout(resolvePromise, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolvePromise();
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Processes inside a device.

/** Runs a command inside the device's namespace to completion. Rejects on timeout (the command is SIGKILLed). */
export async function execIn(device: Device, argv: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
  const state = stateOf(device);
  return run([ipBin(), 'netns', 'exec', device.ns, ...argv], { timeoutMs: opts.timeoutMs ?? 20_000, input: opts.input, state });
}

/**
 * Starts a long-running command inside the device's namespace; it is SIGKILLed at teardown. `ip netns exec`
 * execs the command without forking, so `pid` is the command's own PID.
 */
export function spawnIn(device: Device, argv: string[], opts: { env?: NodeJS.ProcessEnv } = {}): ProcessIn {
  const state = stateOf(device);
  const child = spawn(ipBin(), ['netns', 'exec', device.ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  track(state, child);
  if (child.pid === undefined) throw new Error(`could not spawn ${argv.join(' ')} in ${device.ns}`);
  let output = '';
  const append = (d: Buffer): void => {
    output = (output + d.toString()).slice(-200_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  child.on('error', (error) => append(Buffer.from(`spawn error: ${error.message}\n`)));
  return {
    device,
    child,
    pid: child.pid,
    output: () => output,
    kill: async () => {
      killPid(child.pid);
      await exited(child, 5_000);
    },
  };
}

/**
 * Starts `quorumd start` inside the device: HTTP on `<ip>:7401` and libp2p on `/ip4/<ip>/tcp/7000` unless
 * `extraArgs` has its own `--http` / `--listen`. Resolves when `<dataDir>/daemon.json` names this process.
 */
export async function spawnDaemonIn(device: Device, dataDir: string, extraArgs: string[] = [], readyTimeoutMs = 20_000): Promise<DaemonIn> {
  await rm(join(dataDir, DAEMON_FILE), { force: true });
  const defaults = [
    ...(extraArgs.includes('--http') ? [] : ['--http', `${device.ip}:${DAEMON_HTTP_PORT}`]),
    ...(extraArgs.includes('--listen') ? [] : ['--listen', `/ip4/${device.ip}/tcp/${DAEMON_P2P_PORT}`]),
  ];
  const proc = spawnIn(device, [process.execPath, BIN, 'start', '--data-dir', dataDir, ...defaults, ...extraArgs], {
    env: { ...process.env, QUORUMD_LOG_LEVEL: process.env.QUORUMD_LOG_LEVEL ?? 'info' },
  });
  try {
    const info = await waitFor(
      `daemon in ${device.ns} (${dataDir}) to be ready`,
      async () => {
        if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
          throw new Error(`daemon exited with ${proc.child.exitCode ?? proc.child.signalCode}: ${proc.output().slice(-2000)}`);
        }
        const parsed = JSON.parse(await readFile(join(dataDir, DAEMON_FILE), 'utf8')) as DaemonInfo;
        return parsed.pid === proc.pid ? parsed : undefined;
      },
      readyTimeoutMs,
    );
    return { device, child: proc.child, dataDir, info, output: proc.output, kill: proc.kill };
  } catch (error) {
    await proc.kill();
    throw error;
  }
}

/**
 * Whether `from` reaches `to` over TCP: a connection that is accepted or refused (RST) counts as reachable,
 * a timeout or EHOSTUNREACH does not. Needs no listener on the target.
 */
export async function canReach(from: Device, to: Device | string, opts: { port?: number; timeoutMs?: number } = {}): Promise<boolean> {
  const host = typeof to === 'string' ? to : to.ip;
  const timeoutMs = opts.timeoutMs ?? 1_000;
  const script = `
    const s = require('node:net').connect({ host: ${JSON.stringify(host)}, port: ${opts.port ?? 9} });
    s.setTimeout(${timeoutMs}, () => { process.stdout.write('timeout'); process.exit(1); });
    s.on('connect', () => { process.stdout.write('open'); process.exit(0); });
    s.on('error', (e) => { process.stdout.write(String(e.code)); process.exit(e.code === 'ECONNREFUSED' ? 0 : 1); });`;
  const result = await execIn(from, [process.execPath, '-e', script], { timeoutMs: timeoutMs + 10_000 });
  return result.code === 0;
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP from inside a device (the test process lives in the default namespace and cannot reach testbed addresses).

const CURL_MARK = '\n@@quorumd-testbed@@';

const NODE_HTTP_CLIENT = `
const http = require('node:http');
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const r = JSON.parse(input);
  const req = http.request(r.url, { method: r.method, headers: r.headers, timeout: r.timeoutMs }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      process.stdout.write(JSON.stringify({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
  });
  req.on('timeout', () => req.destroy(new Error('timed out after ' + r.timeoutMs + ' ms')));
  req.on('error', (e) => { process.stderr.write(String(e.code ?? '') + ' ' + e.message); process.exit(1); });
  req.end(r.body ?? undefined);
});`;

/** An HTTP request made from inside the device's namespace. Rejects when no response arrives. */
export async function fetchIn(device: Device, url: string, init: FetchInInit = {}): Promise<FetchInResponse> {
  const method = init.method ?? 'GET';
  const timeoutMs = init.timeoutMs ?? 10_000;
  const headers = init.headers ?? {};
  const curl = init.client === 'node' ? undefined : curlBin();
  if (init.client === 'curl' && curl === undefined) throw new Error('curl is not installed');
  let status: number;
  let text: string;
  let responseHeaders: Record<string, string>;
  if (curl !== undefined) {
    const argv = [curl, '-sS', '--max-time', String(timeoutMs / 1000), '-X', method, '-o', '-', '-w', `${CURL_MARK}%{http_code} %{header_json}`, '-H', 'Expect:'];
    for (const [name, value] of Object.entries(headers)) argv.push('-H', `${name}: ${value}`);
    if (init.body !== undefined) argv.push('--data-binary', '@-');
    argv.push(url);
    const result = await execIn(device, argv, { timeoutMs: timeoutMs + 5_000, input: init.body });
    if (result.code !== 0) throw new Error(`${method} ${url} from ${device.ns} failed: ${result.stderr.trim()} (curl exit ${result.code})`);
    const at = result.stdout.lastIndexOf(CURL_MARK);
    if (at < 0) throw new Error(`unexpected curl output: ${result.stdout.slice(-500)}`);
    text = result.stdout.slice(0, at);
    const trailer = result.stdout.slice(at + CURL_MARK.length);
    const space = trailer.indexOf(' ');
    status = Number(trailer.slice(0, space));
    const raw = JSON.parse(trailer.slice(space + 1)) as Record<string, string[]>;
    responseHeaders = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), v.join(', ')]));
  } else {
    const input = JSON.stringify({ url, method, headers, body: init.body ?? null, timeoutMs });
    const result = await execIn(device, [process.execPath, '-e', NODE_HTTP_CLIENT], { timeoutMs: timeoutMs + 5_000, input });
    if (result.code !== 0) throw new Error(`${method} ${url} from ${device.ns} failed: ${result.stderr.trim()}`);
    const parsed = JSON.parse(result.stdout) as { status: number; headers: Record<string, string | string[]>; body: string };
    status = parsed.status;
    text = parsed.body;
    responseHeaders = Object.fromEntries(Object.entries(parsed.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]));
  }
  let json: Record<string, unknown> | undefined;
  if ((responseHeaders['content-type'] ?? '').includes('application/json')) json = JSON.parse(text) as Record<string, unknown>;
  return { status, text, json, headers: responseHeaders };
}

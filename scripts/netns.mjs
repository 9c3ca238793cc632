// The nemesis's network-namespace LAN (root only): one bridge namespace plus one namespace per device, ports cut,
// restored, split onto separate bridges and healed, and the teardown of every namespace it created (on exit, on a
// failure, on SIGINT/SIGTERM/SIGHUP, and of earlier runs that were SIGKILLed). A plain-JS port of the part of
// test/helpers/netns.ts that scripts/nemesis.mjs needs (the tests keep using the TypeScript helper).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const IP_CANDIDATES = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'];
/** Namespace names of this module: `nem<owner pid>-<4 random>-<role>`; the pid lets a later run delete leftovers. */
const NAME_PATTERN = /^nem(\d+)-[0-9a-z]{4}-/;

function findExecutable(name, candidates = []) {
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

let ipPath;
/** The `ip` binary (iproute2); throws when it is missing. */
export function ipBin() {
  ipPath ??= findExecutable('ip', IP_CANDIDATES);
  if (ipPath === undefined) throw new Error('the `ip` command (iproute2) was not found');
  return ipPath;
}

function errorText(error) {
  const stderr = error?.stderr === undefined ? '' : String(error.stderr).trim();
  return stderr !== '' ? stderr : error instanceof Error ? error.message : String(error);
}

/** Whether namespaces can be used here: Linux, root, `ip`, and a throwaway namespace with a bridge and a veth. */
export function netnsSupport() {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'network namespaces need root' };
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

function newPrefix() {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  return `nem${process.pid}-${[...randomBytes(4)].map((b) => alphabet[b % 36]).join('')}-`;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

function killPid(pid) {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** PIDs of the processes inside a namespace. */
function pidsIn(ns) {
  try {
    const out = execFileSync(ipBin(), ['netns', 'pids', ns], { stdio: 'pipe', encoding: 'utf8' });
    return out.split('\n').map((l) => Number(l.trim())).filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}

function deleteNamespaceSync(ns) {
  for (const pid of pidsIn(ns)) killPid(pid);
  try {
    execFileSync(ipBin(), ['netns', 'del', ns], { stdio: 'pipe' });
    return true;
  } catch {
    return false; // not created, or already deleted
  }
}

/**
 * Deletes the namespaces left by earlier runs of this module whose process is gone (a SIGKILLed nemesis cannot
 * clean up). Returns their names.
 */
export function deleteStaleNamespaces() {
  let names;
  try {
    names = readdirSync('/var/run/netns');
  } catch {
    return [];
  }
  const deleted = [];
  for (const ns of names) {
    const m = NAME_PATTERN.exec(ns);
    if (m === null || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    if (deleteNamespaceSync(ns)) deleted.push(ns);
  }
  return deleted;
}

// ---------------------------------------------------------------------------------------------------------------
// Every live testbed: the exit and signal fallbacks tear them down synchronously.

const live = new Set();
let fallbacksInstalled = false;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function cleanupSync(state) {
  state.closed = true;
  for (const child of state.children) killPid(child.pid);
  state.children.clear();
  for (const ns of [...state.namespaces].reverse()) deleteNamespaceSync(ns);
  state.namespaces.length = 0;
  live.delete(state);
}

function onExit() {
  for (const state of [...live]) cleanupSync(state);
}

function onSignal(signal) {
  onExit();
  // Nobody else handles it: end the way the signal would have (the 'exit' fallback has nothing left to do).
  if (process.listenerCount(signal) === 1) process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[signal] ?? 0));
}

function installFallbacks() {
  if (fallbacksInstalled) return;
  fallbacksInstalled = true;
  process.on('exit', onExit);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

// ---------------------------------------------------------------------------------------------------------------
// Running `ip`.

function run(argv, { timeoutMs = 10_000, state } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    if (state !== undefined) track(state, child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${argv.join(' ')}: no exit within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

async function ip(args) {
  const result = await run([ipBin(), ...args]);
  if (result.code !== 0) throw new Error(`ip ${args.join(' ')} failed (${result.code}): ${result.stderr.trim()}`);
}

function track(state, child) {
  state.children.add(child);
  child.once('exit', () => state.children.delete(child));
  child.once('error', () => state.children.delete(child));
}

// ---------------------------------------------------------------------------------------------------------------
// The testbed.

/**
 * Creates a bridge namespace (`br0`) and `devices` device namespaces, device i (1-based) at `<subnet>.i` behind
 * the bridge port `p<i>`. Returns the testbed:
 *   { prefix, bridgeNs, subnet, devices, addDevice(), cut(d), restore(d), partition(...groups), heal(),
 *     spawnIn(d, argv, spawnOptions), execIn(d, argv, { timeoutMs }), teardown() }
 * `partition(g0, g1, ...)` moves the ports of g1, g2... onto bridges of their own (g0 and the devices in no group
 * stay on br0); links stay up. `cut` takes a port down. Processes started with spawnIn/execIn run inside the
 * device (`ip netns exec` execs the command, so the child's pid is the command's) and are SIGKILLed at teardown.
 */
export async function createTestbed({ devices: count }) {
  const support = netnsSupport();
  if (!support.ok) throw new Error(`network namespaces are not available: ${support.reason}`);
  if (!Number.isInteger(count) || count < 0 || count > 250) throw new Error(`devices must be an integer in 0..250, got ${count}`);
  const prefix = newPrefix();
  const subnet = `10.${randomInt(100, 251)}.${randomInt(0, 256)}`;
  const bridgeNs = `${prefix}br`;
  const state = { prefix, namespaces: [], children: new Set(), closed: false };
  live.add(state);
  installFallbacks();
  const devices = [];
  let teardownPromise;

  const addNamespace = async (ns) => {
    state.namespaces.push(ns); // before creating it: a failed setup still deletes it
    await ip(['netns', 'add', ns]);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  };

  const addDevice = async () => {
    if (state.closed) throw new Error(`testbed ${prefix} was torn down`);
    const index = devices.length + 1;
    if (index > 254) throw new Error('a testbed holds at most 254 devices');
    const device = { index, ns: `${prefix}d${index}`, ip: `${subnet}.${index}` };
    await addNamespace(device.ns);
    await ip(['-n', bridgeNs, 'link', 'add', `p${index}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', device.ns]);
    await ip(['-n', bridgeNs, 'link', 'set', `p${index}`, 'master', 'br0']);
    await ip(['-n', bridgeNs, 'link', 'set', `p${index}`, 'up']);
    await ip(['-n', device.ns, 'addr', 'add', `${device.ip}/24`, 'dev', 'eth0']);
    await ip(['-n', device.ns, 'link', 'set', 'eth0', 'up']);
    devices.push(device);
    return device;
  };

  const port = (device) => {
    if (devices[device.index - 1] !== device) throw new Error(`${device.ns} is not a device of testbed ${prefix}`);
    if (state.closed) throw new Error(`testbed ${prefix} was torn down`);
    return `p${device.index}`;
  };

  const teardown = () => {
    teardownPromise ??= (async () => {
      if (!live.has(state)) return;
      state.closed = true;
      const children = [...state.children];
      for (const child of children) killPid(child.pid);
      await Promise.all(children.map((child) => exited(child, 2_000)));
      for (const ns of [...state.namespaces].reverse()) {
        for (const pid of pidsIn(ns)) killPid(pid);
        const result = await run([ipBin(), 'netns', 'del', ns]).catch(() => undefined);
        if (result !== undefined && result.code !== 0 && !result.stderr.includes('No such file')) {
          process.stderr.write(`netns ${prefix}: ip netns del ${ns}: ${result.stderr.trim()}\n`);
        }
      }
      state.namespaces.length = 0;
      state.children.clear();
      live.delete(state);
    })().catch((error) => {
      process.stderr.write(`netns ${prefix}: teardown failed, falling back to the synchronous path: ${error}\n`);
      cleanupSync(state);
    });
    return teardownPromise;
  };

  const bridges = new Set([0]);
  const bridgeOf = new Map();
  const ensureBridge = async (i) => {
    if (bridges.has(i)) return;
    await ip(['-n', bridgeNs, 'link', 'add', `br${i}`, 'type', 'bridge']);
    await ip(['-n', bridgeNs, 'link', 'set', `br${i}`, 'up']);
    bridges.add(i);
  };
  const moveTo = async (device, i) => {
    if ((bridgeOf.get(device) ?? 0) === i) return;
    await ip(['-n', bridgeNs, 'link', 'set', port(device), 'master', `br${i}`]);
    bridgeOf.set(device, i);
  };

  try {
    await addNamespace(bridgeNs);
    await ip(['-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', bridgeNs, 'link', 'set', 'br0', 'up']);
    for (let i = 0; i < count; i++) await addDevice();
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
    cut: (device) => ip(['-n', bridgeNs, 'link', 'set', port(device), 'down']),
    restore: (device) => ip(['-n', bridgeNs, 'link', 'set', port(device), 'up']),
    partition: async (...groups) => {
      const seen = new Set();
      for (const group of groups) {
        for (const device of group) {
          if (seen.has(device)) throw new Error(`${device.ns} is in two groups of the partition`);
          seen.add(device);
        }
      }
      const target = new Map();
      for (let i = 1; i < groups.length; i++) {
        await ensureBridge(i);
        for (const device of groups[i]) target.set(device, i);
      }
      for (const device of devices) await moveTo(device, target.get(device) ?? 0);
    },
    heal: async () => {
      for (const device of devices) await moveTo(device, 0);
    },
    spawnIn: (device, argv, options = {}) => {
      port(device);
      const child = spawn(ipBin(), ['netns', 'exec', device.ns, ...argv], options);
      track(state, child);
      return child;
    },
    execIn: (device, argv, { timeoutMs = 20_000 } = {}) => {
      port(device);
      return run([ipBin(), 'netns', 'exec', device.ns, ...argv], { timeoutMs, state });
    },
    teardown,
  };
}

function exited(child, timeoutMs) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    const timer = setTimeout(resolvePromise, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolvePromise();
    });
  });
}

/**
 * A tiny TCP forwarder run inside a device (node -e): a Unix socket (reachable from the default namespace: it is
 * a file) to `<host>:<port>` in the device. When the connection to the target is refused it answers
 * `502` with `x-forwarder-refused: 1`, so the caller can tell "never reached the daemon" from a broken connection.
 * argv: socketPath host port.
 */
export const FORWARDER_SCRIPT = `
const net = require('node:net');
const fs = require('node:fs');
const [socketPath, host, port] = process.argv.slice(1);
try { fs.unlinkSync(socketPath); } catch {}
const server = net.createServer((client) => {
  client.pause();
  let connected = false;
  const upstream = net.connect({ host, port: Number(port) });
  upstream.on('connect', () => {
    connected = true;
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  upstream.on('error', (e) => {
    if (!connected && e.code === 'ECONNREFUSED') {
      client.end('HTTP/1.1 502 Bad Gateway\\r\\nx-forwarder-refused: 1\\r\\ncontent-length: 0\\r\\nconnection: close\\r\\n\\r\\n');
    } else client.destroy();
  });
  client.on('error', () => upstream.destroy());
  client.on('close', () => upstream.destroy());
});
server.listen(socketPath, () => process.stdout.write('forwarding ' + socketPath + ' to ' + host + ':' + port + '\\n'));
`;

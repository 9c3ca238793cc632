// Smoke test of the network-namespace LAN testbed (test/helpers/netns.ts): devices on one bridge reach each other
// by unicast and multicast, a cut port isolates a device until restored, a daemon runs inside, teardown is complete.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  canReach, type DaemonIn, type Device, execIn, fetchIn, netnsSupport, spawnDaemonIn, spawnIn, type Testbed, createTestbed,
} from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';
import { TOKEN_FILE } from '../../src/config/files.js';

const support = netnsSupport();
if (!support.ok) console.warn(`skipping the LAN testbed tests: ${support.reason}`);

const ipBin = ['/usr/sbin/ip', '/sbin/ip'].find((p) => {
  try {
    execFileSync(p, ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}) ?? 'ip';

function namespacesWith(prefix: string): string[] {
  const out = execFileSync(ipBin, ['netns', 'list'], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.split(' ')[0] ?? '').filter((name) => name.startsWith(prefix));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One TCP round trip from `from` to an echo server on `to`; resolves with what came back. */
async function echo(from: Device, to: Device, port: number, timeoutMs = 1_000): Promise<string> {
  const script = `
    const s = require('node:net').connect({ host: ${JSON.stringify(to.ip)}, port: ${port} }, () => s.end('ping from ${from.ns}'));
    let got = '';
    s.setTimeout(${timeoutMs}, () => { console.error('timeout'); process.exit(1); });
    s.on('data', (d) => (got += d));
    s.on('end', () => { process.stdout.write(got); process.exit(0); });
    s.on('error', (e) => { console.error(e.code); process.exit(1); });`;
  const result = await execIn(from, [process.execPath, '-e', script]);
  if (result.code !== 0) throw new Error(`echo ${from.ns} -> ${to.ns}: ${result.stderr.trim()}`);
  return result.stdout;
}

const ECHO_SERVER = `
  const [host, port] = process.argv.slice(1);
  require('node:net').createServer((s) => s.pipe(s)).listen(Number(port), host, () => console.log('listening'));`;

/** Receives one datagram on a multicast group inside the device and prints it. */
const MULTICAST_RECEIVER = `
  const [group, port] = process.argv.slice(1);
  const s = require('node:dgram').createSocket({ type: 'udp4', reuseAddr: true });
  s.on('message', (m) => { console.log('got ' + m); process.exit(0); });
  s.bind(Number(port), () => { s.addMembership(group); console.log('ready'); });`;

const MULTICAST_SENDER = `
  const [group, port, text] = process.argv.slice(1);
  const s = require('node:dgram').createSocket('udp4');
  let n = 0;
  const tick = () => s.send(text, Number(port), group, () => { if (++n < 20) setTimeout(tick, 50); else s.close(); });
  tick();`;

describe.skipIf(!support.ok)('network-namespace LAN testbed', () => {
  let bed: Testbed;
  let root = '';
  let createMs = 0;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'quorumd-lan-'));
    const started = performance.now();
    bed = await createTestbed({ devices: 3 });
    createMs = performance.now() - started;
  });

  afterAll(async () => {
    await bed?.teardown();
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  it('creates three devices with unique namespaces, addresses and a multicast route', async () => {
    console.info(`testbed ${bed.prefix} (${bed.subnet}.0/24) with 3 devices created in ${createMs.toFixed(0)} ms`);
    expect(bed.prefix).toMatch(/^q[0-9a-z]{5}$/);
    expect(bed.devices.map((d) => d.ns)).toEqual([1, 2, 3].map((i) => `${bed.prefix}d${i}`));
    expect(new Set(bed.devices.map((d) => d.ip)).size).toBe(3);
    expect(namespacesWith(bed.prefix).sort()).toEqual([bed.bridgeNs, ...bed.devices.map((d) => d.ns)].sort());
    for (const device of bed.devices) {
      const addr = await execIn(device, [ipBin, '-4', 'addr', 'show', 'dev', 'eth0']);
      expect(addr.stdout).toContain(`inet ${device.ip}/24`);
      const route = await execIn(device, [ipBin, 'route', 'show', '224.0.0.0/4']);
      expect(route.stdout).toMatch(/^224\.0\.0\.0\/4 dev eth0/m);
    }
  });

  it('delivers unicast between devices and multicast to every other device', async () => {
    const [d1, d2, d3] = bed.devices as [Device, Device, Device];
    const server = spawnIn(d2, [process.execPath, '-e', ECHO_SERVER, d2.ip, '5001']);
    await waitFor('echo server', () => server.output().includes('listening'), 5_000);
    expect(await echo(d1, d2, 5001)).toBe(`ping from ${d1.ns}`);
    expect(await canReach(d3, d1)).toBe(true);

    const group = '239.255.77.77';
    const receivers = [d2, d3].map((d) => spawnIn(d, [process.execPath, '-e', MULTICAST_RECEIVER, group, '5400']));
    await waitFor('multicast receivers', () => receivers.every((r) => r.output().includes('ready')), 5_000);
    const sent = await execIn(d1, [process.execPath, '-e', MULTICAST_SENDER, group, '5400', `hello from ${d1.ns}`]);
    expect(sent.code, sent.stderr).toBe(0);
    await waitFor('multicast delivery', () => receivers.every((r) => r.output().includes(`got hello from ${d1.ns}`)), 5_000);
  });

  it('cut isolates a device at its bridge port and restore reconnects it, keeping its routes', async () => {
    const [d1, d2, d3] = bed.devices as [Device, Device, Device];
    await bed.cut(d2);
    await expect(echo(d1, d2, 5001)).rejects.toThrow();
    expect(await canReach(d1, d2)).toBe(false);
    expect(await canReach(d2, d3)).toBe(false);
    expect(await canReach(d1, d3)).toBe(true);

    await bed.restore(d2);
    await waitFor('d2 reachable again', () => canReach(d1, d2), 5_000);
    expect(await echo(d1, d2, 5001)).toBe(`ping from ${d1.ns}`);
    const route = await execIn(d2, [ipBin, 'route', 'show', '224.0.0.0/4']);
    expect(route.stdout).toMatch(/^224\.0\.0\.0\/4 dev eth0/m);
  });

  it('adds a device to the running LAN', async () => {
    const d4 = await bed.addDevice();
    expect(d4.index).toBe(4);
    expect(d4.ns).toBe(`${bed.prefix}d4`);
    expect(bed.devices).toHaveLength(4);
    expect(namespacesWith(bed.prefix)).toContain(d4.ns);
    expect(await echo(d4, bed.devices[1] as Device, 5001)).toBe(`ping from ${d4.ns}`);
    const route = await execIn(d4, [ipBin, 'route', 'show', '224.0.0.0/4']);
    expect(route.stdout).toMatch(/^224\.0\.0\.0\/4 dev eth0/m);
  });

  it('partition splits the LAN into groups that reach only each other; heal joins them again', async () => {
    const [d1, d2, d3, d4] = bed.devices as [Device, Device, Device, Device];
    await bed.partition([d1, d2], [d3, d4]);
    const [in1, in2, across1, across2] = await Promise.all([
      canReach(d1, d2), canReach(d3, d4), canReach(d1, d3), canReach(d4, d2),
    ]);
    expect({ in1, in2, across1, across2 }).toEqual({ in1: true, in2: true, across1: false, across2: false });
    // Multicast stays inside a group too.
    const group = '239.255.77.78';
    const receivers = [d2, d3].map((d) => spawnIn(d, [process.execPath, '-e', MULTICAST_RECEIVER, group, '5401']));
    await waitFor('multicast receivers', () => receivers.every((r) => r.output().includes('ready')), 5_000);
    const sent = await execIn(d1, [process.execPath, '-e', MULTICAST_SENDER, group, '5401', 'split']);
    expect(sent.code, sent.stderr).toBe(0);
    await waitFor('multicast inside the group', () => receivers[0]?.output().includes('got split'), 5_000);
    expect(receivers[1]?.output()).not.toContain('got split');
    await Promise.all(receivers.map((r) => r.kill()));

    await bed.heal();
    await waitFor('d1 reaches d3 after heal', () => canReach(d1, d3), 5_000);
    expect(await canReach(d4, d2)).toBe(true);
  });

  let daemon: DaemonIn | undefined;

  it('runs a quorumd daemon inside a device, reachable over HTTP from the LAN', async () => {
    const [d1, d2] = bed.devices as [Device, Device];
    const started = performance.now();
    daemon = await spawnDaemonIn(d1, join(root, 'd1'), ['--no-mdns']);
    console.info(`daemon in ${d1.ns} ready in ${(performance.now() - started).toFixed(0)} ms`);
    expect(daemon.info.pid).toBe(daemon.child.pid);
    expect(daemon.info.http).toBe(`http://${d1.ip}:7401`);
    expect(daemon.info.listen.some((a) => a.startsWith(`/ip4/${d1.ip}/tcp/7000/p2p/`))).toBe(true);

    const local = await fetchIn(d1, `${daemon.info.http}/healthz`);
    expect(local.status, local.text).toBe(200);
    const t0 = performance.now();
    const viaCurl = await fetchIn(d2, `${daemon.info.http}/healthz`, { client: 'curl' });
    const t1 = performance.now();
    const viaNode = await fetchIn(d2, `${daemon.info.http}/healthz`, { client: 'node' });
    console.info(`fetchIn: curl ${(t1 - t0).toFixed(0)} ms, node ${(performance.now() - t1).toFixed(0)} ms`);
    expect(viaCurl.status).toBe(200);
    expect(viaNode.status).toBe(200);
    expect(viaNode.text).toBe(viaCurl.text);
    expect(viaNode.headers['content-type']).toBe(viaCurl.headers['content-type']);

    // Its API listens on the LAN: without the data dir's token a request is refused; with it, answered.
    const anonymous = await fetchIn(d2, `${daemon.info.http}/kv/${encodeURIComponent('no such key')}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.json).toMatchObject({ error: 'unauthorized' });
    const headers = { Authorization: `Bearer ${readFileSync(join(root, 'd1', TOKEN_FILE), 'utf8').trim()}` };
    const missing = await fetchIn(d2, `${daemon.info.http}/kv/${encodeURIComponent('no such key')}`, { headers });
    expect(missing.status).toBe(404);
    const missingNode = await fetchIn(d2, `${daemon.info.http}/kv/${encodeURIComponent('no such key')}`, { client: 'node', headers });
    expect(missingNode.status).toBe(404);
    // A name that is not this device's address (DNS rebinding) is refused even with the token.
    const rebound = await fetchIn(d2, `${daemon.info.http}/status`, { headers: { ...headers, Host: 'attacker.example:7401' } });
    expect(rebound.status).toBe(403);

    await bed.cut(d1);
    await expect(fetchIn(d2, `${daemon.info.http}/healthz`, { timeoutMs: 1_000 })).rejects.toThrow();
    await bed.restore(d1);
  });

  it('teardown kills every process it started and removes every namespace; a second call is a no-op', async () => {
    const pid = daemon?.info.pid;
    const started = performance.now();
    await bed.teardown();
    console.info(`teardown of 4 devices took ${(performance.now() - started).toFixed(0)} ms`);
    expect(namespacesWith(bed.prefix)).toEqual([]);
    if (pid !== undefined) expect(alive(pid)).toBe(false);
    await bed.teardown();
    await expect(execIn(bed.devices[0] as Device, ['true'])).rejects.toThrow(/live testbed/);
  });
});

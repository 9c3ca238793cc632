// LAN test: `npm run nemesis -- --net netns` for 30 s against three daemons, each in its own network namespace on
// one bridge, with partitions (1|2 on separate bridges) and one device isolated (its bridge port down): it must
// exit 0 (no lost write, stale read, resurrection or lasting outage) with acked writes, and delete every namespace
// it created. Root only; skips with a printed reason otherwise. On a timeout the nemesis gets SIGTERM, then SIGKILL.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { netnsSupport } from '../helpers/netns.js';
import { BIN } from '../helpers/procs.js';

const SCRIPT = resolve(import.meta.dirname, '../../scripts/nemesis.mjs');
const support = netnsSupport();
if (!support.ok) console.warn(`skipping the network-namespace nemesis test: ${support.reason}`);

let nemesis: ChildProcess | undefined;

function stopNemesis(): void {
  const child = nemesis;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }, 5_000).unref();
}

afterAll(stopNemesis);

describe.skipIf(!support.ok)('nemesis in network namespaces', () => {
  it('30 s of partitions and an isolated device on 3 daemons: exit 0, writes acknowledged, namespaces deleted', async () => {
    // Seed 1: the first faults are a partition, then an isolation (the schedule's kinds replay from the seed).
    const args = [SCRIPT, '--net', 'netns', '--devices', '3', '--duration', '30', '--faults', 'partition,isolate', '--seed', '1',
      '--warmup', '1', '--keys', '300', '--rate', '100', '--quiet', '--bin', BIN];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    nemesis = child;
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(stopNemesis, 150_000);
    const code = await new Promise<number | null>((done) => child.once('close', (c) => done(c)));
    clearTimeout(timer);
    const line = output.split('\n').find((l) => l.startsWith('NEMESIS_RESULT '));
    expect(line, output).toBeDefined();
    const summary = JSON.parse((line as string).slice('NEMESIS_RESULT '.length)) as Record<string, unknown>;
    expect(code, output).toBe(0);
    expect(summary, output).toMatchObject({ ok: true, net: 'netns', lost: 0, staleReads: 0, resurrected: 0, unavailableAtLimit: 0, crashes: 0 });
    expect(summary.acked as number, output).toBeGreaterThan(0);
    expect(summary.finalReads as number, output).toBeGreaterThan(0);
    const injected = summary.faultsInjected as Record<string, number>;
    expect(injected.partition, output).toBeGreaterThan(0);
    expect(injected.isolate, output).toBeGreaterThan(0);
    // Its namespaces are named nem<pid>-…: none is left.
    const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith(`nem${child.pid}-`));
    expect(left).toEqual([]);
  }, 170_000);
});

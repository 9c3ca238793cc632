// System test: `npm run nemesis` for 60 s against three real daemons (kill -9 + restart and SIGSTOP/SIGCONT,
// one device at a time): it must exit 0 (no lost write, stale read, resurrection or lasting outage) with acked
// writes. On a timeout the nemesis gets SIGTERM (it SIGKILLs every daemon it started), then SIGKILL.
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/procs.js';

const SCRIPT = resolve(import.meta.dirname, '../../scripts/nemesis.mjs');
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

describe('nemesis', () => {
  it('60 s of kill -9/restart and SIGSTOP on 3 daemons: exit 0, writes acknowledged, nothing lost', async () => {
    const args = [SCRIPT, '--devices', '3', '--duration', '60', '--faults', 'kill,stop', '--seed', '20240611',
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
    expect(summary).toMatchObject({ ok: true, lost: 0, staleReads: 0, resurrected: 0, unavailableAtLimit: 0, crashes: 0 });
    expect(summary.acked as number, output).toBeGreaterThan(0);
    expect(summary.finalReads as number, output).toBeGreaterThan(0);
  }, 170_000);
});

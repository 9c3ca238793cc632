// The systemd units in devices/ pass `systemd-analyze verify` (when systemd-analyze is installed; .ci/run
// installs it). Warnings count as failures: systemd only warns about unknown or misspelt keys.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const DEVICES = resolve(import.meta.dirname, '../../devices');
let analyze: string | undefined;
try {
  analyze = execFileSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' }).trim() || undefined;
} catch {
  analyze = undefined;
}
if (analyze === undefined) console.log('SKIP systemd unit checks: systemd-analyze is not installed (.ci/run installs systemd)');

const scratch = mkdtempSync(join(tmpdir(), 'quorumd-units-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function verify(unit: string, user: boolean): { status: number | null; output: string } {
  // A copy in a scratch dir, so verify does not pick up other units next to it.
  const copy = join(scratch, user ? 'user' : 'system', 'quorumd.service');
  execFileSync('mkdir', ['-p', join(copy, '..')]);
  copyFileSync(unit, copy);
  const runtime = join(scratch, 'xdg');
  execFileSync('mkdir', ['-p', '-m', '700', runtime]);
  const result = spawnSync(analyze as string, ['verify', ...(user ? ['--user'] : []), copy], {
    encoding: 'utf8',
    env: { ...process.env, XDG_RUNTIME_DIR: runtime, SYSTEMD_LOG_COLOR: '0' },
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

describe.skipIf(analyze === undefined)('systemd units', () => {
  it('the Raspberry Pi system unit verifies cleanly and keeps its hardening', () => {
    const unit = join(DEVICES, 'raspberry-pi', 'quorumd.service');
    const { status, output } = verify(unit, false);
    expect(output).toBe('');
    expect(status).toBe(0);
    const text = execFileSync('cat', [unit], { encoding: 'utf8' });
    for (const line of ['User=quorumd', 'Restart=on-failure', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/quorumd', 'NoNewPrivileges=yes']) {
      expect(text).toContain(line);
    }
  });

  it('the laptop user unit verifies cleanly', () => {
    const { status, output } = verify(join(DEVICES, 'laptop', 'quorumd.service'), true);
    expect(output).toBe('');
    expect(status).toBe(0);
  });

  it('a broken unit is reported (the check can fail)', () => {
    const bad = join(scratch, 'bad.service');
    execFileSync('sh', ['-c', `printf '[Service]\\nExecStart=/usr/bin/env true\\nRestartt=always\\n' > ${bad}`]);
    const { output } = verify(bad, false);
    expect(output).toMatch(/Unknown key 'Restartt'/);
  });
});

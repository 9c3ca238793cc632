// Settings precedence (defaults < config file < environment < flags) and the errors for bad values.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULTS, tombstoneGraceMinMs } from '../../src/config/defaults.js';
import { CONFIG_FILE, SettingsError, envName, flagName, resolveSettings } from '../../src/config/settings.js';

const dirs: string[] = [];
function dataDir(file?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-settings-'));
  dirs.push(dir);
  if (file !== undefined) writeFileSync(join(dir, CONFIG_FILE), file);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('settings', () => {
  it('names flags and variables from the setting name', () => {
    expect(flagName('antiEntropyIntervalMs')).toBe('anti-entropy-interval-ms');
    expect(envName('antiEntropyIntervalMs')).toBe('QUORUMD_ANTI_ENTROPY_INTERVAL_MS');
  });

  it('uses the defaults when nothing is given', () => {
    const { settings, sources, file } = resolveSettings({ dataDir: dataDir(), env: {}, flags: {} });
    expect(settings.maxVoters).toBe(DEFAULTS.maxVoters);
    expect(settings.http).toBe(DEFAULTS.http);
    expect(settings.mdns).toBe(true);
    expect(sources.maxVoters).toBe('default');
    expect(file).toBeUndefined();
  });

  it('layers config file < environment < flags', () => {
    const dir = dataDir(JSON.stringify({ maxVoters: 3, tombstoneGraceMs: 100_000, mdns: false, join: ['/ip4/10.0.0.1/tcp/7400'] }));
    const env = { QUORUMD_TOMBSTONE_GRACE_MS: '200000', QUORUMD_REQUEST_TIMEOUT_MS: '700', QUORUMD_LISTEN: '/ip4/127.0.0.1/tcp/0, /ip6/::1/tcp/0' };
    const { settings, sources, file } = resolveSettings({ dataDir: dir, env, flags: { requestTimeoutMs: '900' } });
    expect(file).toBe(join(dir, CONFIG_FILE));
    expect(settings.maxVoters).toBe(3);
    expect(sources.maxVoters).toBe('file');
    expect(settings.tombstoneGraceMs).toBe(200_000);
    expect(sources.tombstoneGraceMs).toBe('env');
    expect(settings.requestTimeoutMs).toBe(900);
    expect(sources.requestTimeoutMs).toBe('flag');
    expect(settings.mdns).toBe(false);
    expect(settings.join).toEqual(['/ip4/10.0.0.1/tcp/7400']);
    expect(settings.listen).toEqual(['/ip4/127.0.0.1/tcp/0', '/ip6/::1/tcp/0']);
  });

  it('takes repeated flags as lists and booleans from --no- flags', () => {
    const { settings } = resolveSettings({ dataDir: dataDir(), env: { QUORUMD_MDNS: 'true' }, flags: { join: ['/ip4/1.2.3.4/tcp/1', '/ip4/1.2.3.5/tcp/1'], mdns: false } });
    expect(settings.join).toHaveLength(2);
    expect(settings.mdns).toBe(false);
  });

  it.each([
    [{ env: { QUORUMD_MAX_VOTERS: '0' } }, /invalid setting maxVoters = "0" \(from QUORUMD_MAX_VOTERS\): allowed is an integer of voters from 1 to 99/],
    [{ env: { QUORUMD_MDNS: 'maybe' } }, /mdns = "maybe" \(from QUORUMD_MDNS\): allowed is true or false/],
    [{ flags: { requestTimeoutMs: '1.5' } }, /requestTimeoutMs = "1.5" \(from --request-timeout-ms\)/],
    [{ flags: { http: 'localhost' } }, /http = "localhost" \(from --http\): allowed is HOST:PORT/],
    [{ flags: { logLevel: 'loud' } }, /logLevel = "loud" .*fatal, error, warn, info, debug, trace, silent/],
    [{ flags: { listen: ['tcp/7400'] } }, /listen = \["tcp\/7400"\]/],
  ])('rejects %j naming the setting, the source, the value and what is allowed', (input, message) => {
    expect(() => resolveSettings({ dataDir: dataDir(), env: {}, flags: {}, ...input })).toThrow(message);
  });

  it('refuses a tombstone grace shorter than the longest operation deadline plus the margin', () => {
    // A write with wait=all lives up to 60 s and re-sends its record to new members: a tombstone purged before
    // then could be undone by it (issue 11, point 7). The floor follows requestTimeoutMs when that is longer.
    expect(DEFAULTS.tombstoneGraceMs).toBeGreaterThanOrEqual(tombstoneGraceMinMs(DEFAULTS.requestTimeoutMs));
    expect(tombstoneGraceMinMs(3_000)).toBe(DEFAULTS.writeWaitMsMax + DEFAULTS.tombstoneGraceMarginMs);
    expect(tombstoneGraceMinMs(120_000)).toBe(120_000 + DEFAULTS.tombstoneGraceMarginMs);
    const floor = tombstoneGraceMinMs(DEFAULTS.requestTimeoutMs);
    const resolve = (env: Record<string, string>, flags = {}, file?: string) => resolveSettings({ dataDir: dataDir(file), env, flags });
    expect(() => resolve({ QUORUMD_TOMBSTONE_GRACE_MS: '30000' })).toThrow(
      new RegExp(`^invalid setting tombstoneGraceMs = 30000 \\(from QUORUMD_TOMBSTONE_GRACE_MS\\): allowed is at least ${floor} ms: [^\\n]*deleted key`),
    );
    expect(() => resolve({}, { tombstoneGraceMs: String(floor - 1) })).toThrow(/tombstoneGraceMs = \d+ \(from --tombstone-grace-ms\): allowed is at least/);
    expect(() => resolve({}, {}, JSON.stringify({ tombstoneGraceMs: 0 }))).toThrow(/tombstoneGraceMs = 0 \(from .*quorumd\.json\)/);
    // Raising the request timeout raises the floor: an explicit grace below it is refused, the default follows.
    expect(() => resolve({ QUORUMD_TOMBSTONE_GRACE_MS: String(floor) }, { requestTimeoutMs: '300000' })).toThrow(/allowed is at least 330000 ms/);
    const lifted = resolve({}, { requestTimeoutMs: '300000' });
    expect(lifted.settings.tombstoneGraceMs).toBe(330_000);
    expect(lifted.sources.tombstoneGraceMs).toBe('default');
    expect(resolve({ QUORUMD_TOMBSTONE_GRACE_MS: String(floor) }).settings.tombstoneGraceMs).toBe(floor);
  });

  it('rejects a config file that is not JSON, not an object, has unknown keys or wrong types', () => {
    expect(() => resolveSettings({ dataDir: dataDir('{maxVoters: 3'), env: {}, flags: {} })).toThrow(/not valid JSON/);
    expect(() => resolveSettings({ dataDir: dataDir('[1]'), env: {}, flags: {} })).toThrow(/expected a JSON object/);
    expect(() => resolveSettings({ dataDir: dataDir('{"maxvoters": 3}'), env: {}, flags: {} })).toThrow(/unknown setting "maxvoters" \(known: listen, http/);
    expect(() => resolveSettings({ dataDir: dataDir('{"maxVoters": "3"}'), env: {}, flags: {} })).toThrow(SettingsError);
    expect(() => resolveSettings({ dataDir: dataDir(`{"join": "${'x'.repeat(70_000)}"}`), env: {}, flags: {} })).toThrow(/larger than/);
  });
});

// Persistent identity (peer.key) and cluster key files: stable peer IDs, 0600 modes, round trips and clear
// errors for missing or malformed files.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClusterKey, parseClusterKey, readClusterKey } from '../../src/net/clusterkey.js';
import { ClusterKeyError, IdentityError } from '../../src/net/errors.js';
import { PEER_KEY_FILE, loadOrCreateIdentity } from '../../src/net/identity.js';
import { CLUSTER_KEY_FILE } from '../../src/config/files.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quorumd-net-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

describe('identity', () => {
  it('is created once (mode 0600) and reloaded with the same peer ID', async () => {
    const dataDir = join(dir, 'data');
    const first = await loadOrCreateIdentity(dataDir);
    expect(first.peerId).toMatch(/^12D3KooW/);
    expect(await modeOf(join(dataDir, PEER_KEY_FILE))).toBe(0o600);
    const second = await loadOrCreateIdentity(dataDir);
    expect(second.peerId).toBe(first.peerId);
    expect(second.privateKey.equals(first.privateKey)).toBe(true);
  });

  it('concurrent first starts agree on one identity', async () => {
    const ids = await Promise.all([1, 2, 3].map(() => loadOrCreateIdentity(dir)));
    expect(new Set(ids.map((i) => i.peerId)).size).toBe(1);
  });

  it('a corrupt key file is an IdentityError naming the file', async () => {
    await writeFile(join(dir, PEER_KEY_FILE), 'not a key');
    await expect(loadOrCreateIdentity(dir)).rejects.toThrow(IdentityError);
    await expect(loadOrCreateIdentity(dir)).rejects.toThrow(PEER_KEY_FILE);
  });
});

describe('cluster key', () => {
  it('round-trips through a 0600 file and refuses to overwrite it', async () => {
    const path = join(dir, CLUSTER_KEY_FILE);
    const key = await createClusterKey(path);
    expect(await modeOf(path)).toBe(0o600);
    expect(await readClusterKey(path)).toEqual(key);
    await expect(createClusterKey(path)).rejects.toThrow(ClusterKeyError);
    expect(await readClusterKey(path)).toEqual(key);
  });

  it('two generated keys differ', async () => {
    const a = await createClusterKey(join(dir, 'a.key'));
    const b = await createClusterKey(join(dir, 'b.key'));
    expect(a).not.toEqual(b);
  });

  it('tolerates a trailing newline and CRLF line ends', async () => {
    const path = join(dir, CLUSTER_KEY_FILE);
    const key = await createClusterKey(path);
    const text = new TextDecoder().decode(key);
    expect(parseClusterKey(new TextEncoder().encode(`${text.replaceAll('\n', '\r\n')}\r\n`))).toEqual(key);
  });

  it('missing or malformed files give a ClusterKeyError with a clear reason', async () => {
    await expect(readClusterKey(join(dir, 'nope.key'))).rejects.toThrow(/does not exist/);
    const hex = 'ab'.repeat(32);
    const cases: Array<[string, string, RegExp]> = [
      ['empty', '', /expected 3 lines/],
      ['wrong header', `/key/swarm/psk/2.0.0/\n/base16/\n${hex}`, /first line/],
      ['base64 encoding', `/key/swarm/psk/1.0.0/\n/base64/\n${hex}`, /second line/],
      ['short key', `/key/swarm/psk/1.0.0/\n/base16/\n${hex.slice(2)}`, /64 hexadecimal digits/],
      ['not hex', `/key/swarm/psk/1.0.0/\n/base16/\n${'zz'.repeat(32)}`, /64 hexadecimal digits/],
      ['extra line', `/key/swarm/psk/1.0.0/\n/base16/\n${hex}\nmore`, /expected 3 lines/],
    ];
    for (const [name, content, reason] of cases) {
      const path = join(dir, `${name}.key`);
      await writeFile(path, content);
      const err = await readClusterKey(path).then(() => undefined, (e: unknown) => e);
      expect(err, name).toBeInstanceOf(ClusterKeyError);
      expect((err as Error).message, name).toMatch(reason);
      expect((err as Error).message, name).toContain(path);
    }
  });
});

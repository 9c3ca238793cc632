// System test: three `bin/quorumd start` processes on 127.0.0.1 form a cluster through --join; one is killed
// with SIGKILL and restarted; the CLI drives the API; one leaves with `quorumd leave`; a device with another
// cluster key never gets in.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { get, put, status } from '../helpers/http.js';
import { BIN, killAll, runCli, runProcess, spawnDevice, waitExit } from '../helpers/procs.js';
import { waitFor } from '../helpers/wait.js';
import { CLUSTER_KEY_FILE, PEER_KEY_FILE } from '../../src/config/files.js';

let root = '';

afterAll(async () => {
  killAll();
  if (root !== '') await rm(root, { recursive: true, force: true });
});

describe('daemons started from the CLI', () => {
  it('form one cluster, survive kill -9 of one, and keep every quorum write', async () => {
    root = await mkdtemp(join(tmpdir(), 'quorumd-sys-'));
    const dir = (name: string): string => join(root, name);
    const a = await spawnDevice(dir('a'), ['--listen', '/ip4/127.0.0.1/tcp/0']);
    const keyFile = join(dir('a'), CLUSTER_KEY_FILE);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir('a'), PEER_KEY_FILE))).mode & 0o777).toBe(0o600);
    const joinArgs = ['--listen', '/ip4/127.0.0.1/tcp/0', '--join', a.info.listen[0] as string, '--cluster-key', keyFile];
    const b = await spawnDevice(dir('b'), joinArgs);
    await waitFor('B voter', async () => (await status(b.info.http)).role === 'voter');
    const c = await spawnDevice(dir('c'), joinArgs);
    await waitFor('C voter', async () => (await status(c.info.http)).role === 'voter');
    await waitFor('a full mesh', async () => (await status(c.info.http)).quorum.reachable === 3);

    // The CLI talks to the local API.
    const putOut = await runCli(['put', 'colour', 'blue', '--api', a.info.http]);
    expect(putOut.code, putOut.stderr).toBe(0);
    const getOut = await runCli(['get', 'colour', '--api', c.info.http]);
    expect(getOut.code, getOut.stderr).toBe(0);
    expect(getOut.stdout).toBe('blue');
    const missing = await runCli(['get', 'nope', '--api', c.info.http]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain('not_found');
    const statusOut = await runCli(['status', '--json', '--api', b.info.http]);
    expect(JSON.parse(statusOut.stdout)).toMatchObject({ epoch: 5, quorum: { voters: 3, writable: true } });
    const fromStdin = await runCli(['put', 'piped', '-', '--api', a.info.http], 'from stdin');
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    expect((await runCli(['get', 'piped', '--api', b.info.http])).stdout).toBe('from stdin');
    const delOut = await runCli(['del', 'piped', '--api', b.info.http]);
    expect(delOut.code, delOut.stderr).toBe(0);
    expect((await runCli(['get', 'piped', '--api', a.info.http])).code).toBe(1);
    const help = await runCli(['put', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: quorumd put');
    const version = await runCli(['version']);
    expect(version.stdout).toMatch(/^quorumd \d+\.\d+\.\d+/);
    const unknownFlag = await runCli(['get', 'k', '--bogus', '--api', a.info.http]);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr.trim().split('\n')).toHaveLength(1);
    const noDaemon = await runCli(['status', '--api', 'http://127.0.0.1:1']);
    expect(noDaemon.code).toBe(1);
    expect(noDaemon.stderr).toContain('cannot reach the quorumd API');
    const badLevel = await runCli(['put', 'k', 'v', '--w', '7', '--api', a.info.http]);
    expect(badLevel.code).toBe(1);
    expect(badLevel.stderr).toContain('impossible');

    // The operator commands against the running cluster.
    const membersOut = await runCli(['members', '--api', a.info.http]);
    expect(membersOut.code, membersOut.stderr).toBe(0);
    for (const d of [a, b, c]) expect(membersOut.stdout).toContain(d.info.peerId);
    expect(membersOut.stdout.split('\n')[0]).toMatch(/^PEER\s+ROLE\s+STATE\s+RTT\s+IN SYNC/);
    const table = await runCli(['status', '--api', a.info.http]);
    expect(table.stdout).toMatch(/quorum\s+writable \(3\/3 voters alive, 2 needed\)/);
    expect(table.stdout).toMatch(/sync\s+(converged|not converged)/);
    for (const k of ['ls/1', 'ls/2', 'lt/3']) expect((await runCli(['put', k, 'v', '--api', a.info.http])).code).toBe(0);
    const lsOut = await runCli(['ls', 'ls/', '--api', c.info.http]);
    expect(lsOut.stdout).toBe('ls/1\nls/2\n');
    expect((await runCli(['ls', '--limit', '1', '--api', c.info.http])).stdout.split('\n')).toHaveLength(2);
    const badLimit = await runCli(['ls', '--limit', 'abc', '--api', a.info.http]);
    expect(badLimit.code).toBe(2);
    expect(badLimit.stderr).toBe('quorumd: --limit must be a positive integer, got "abc"\n');
    const configOut = await runProcess([process.execPath, BIN, 'config', '--data-dir', dir('a')], { timeoutMs: 20_000 });
    expect(configOut.code).toBe(0);
    expect(configOut.stdout).toMatch(/^maxVoters\s+5\s+default$/m);
    const readyOut = await runCli(['ready', '--api', b.info.http]);
    expect([readyOut.code, readyOut.stdout]).toEqual([0, 'ready\n']);
    const auditOut = await runCli(['audit', '--kind', 'membership', '--api', a.info.http]);
    expect(auditOut.code).toBe(0);
    expect(auditOut.stdout).toMatch(/membership\s+epoch=\d+ voters=/);
    const badKind = await runCli(['audit', '--kind', 'bogus', '--api', a.info.http]);
    expect(badKind.code).toBe(1);
    expect(badKind.stderr).toMatch(/^quorumd: bad_request: invalid query parameter kind: .*\n$/);
    // `watch` prints a change made through another device (writes repeat until the watcher is connected).
    let writes: NodeJS.Timeout | undefined;
    const watched = await runProcess([process.execPath, BIN, 'watch', 'w/', '--json', '--api', b.info.http], {
      timeoutMs: 20_000,
      onSpawn: (child) => {
        let n = 0;
        writes = setInterval(() => void put(a.info.http, `w/${n++}`, 'x').catch(() => undefined), 300);
        child.stdout?.on('data', (d: Buffer) => {
          if (d.toString().includes('"key":"w/')) child.kill('SIGTERM');
        });
      },
    }).finally(() => clearInterval(writes));
    expect(watched.stdout).toMatch(/^\{"key":"w\/\d+","kind":"put","siblings":1,"at":"[^"]+"\}$/m);

    // Kill -9 B while writing; every acknowledged quorum write survives.
    const acked: Array<[string, string]> = [];
    const writer = (async () => {
      for (let i = 0; i < 200; i++) {
        const res = await put(a.info.http, `k${i}`, `v${i}`);
        if (res.status === 200 || res.status === 201) acked.push([`k${i}`, `v${i}`]);
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 150));
    b.child.kill('SIGKILL');
    await writer;
    expect(acked.length).toBeGreaterThan(150); // A + C still form a quorum
    const b2 = await spawnDevice(dir('b'), []); // same data dir, no flags: reconnects by itself
    expect(b2.info.peerId).toBe(b.info.peerId);
    await waitFor('B back in the mesh', async () => (await status(b2.info.http)).quorum.reachable === 3);
    for (const [key, value] of acked) {
      const res = await get(b2.info.http, key);
      expect(res.status, key).toBe(200);
      expect(res.text).toBe(value);
    }

    // `quorumd leave` on C: it removes itself (the others take over), then its daemon exits 0.
    const left = await runCli(['leave', '--api', c.info.http], undefined, 30_000);
    expect(left.code, left.stderr).toBe(0);
    expect(left.stdout).toMatch(/^ok: epoch \d+, 2 voter\(s\)/);
    expect(await waitExit(c.child, 10_000)).toBe(0);
    const after = await waitFor('A to see C gone', async () => {
      const s = await status(a.info.http);
      return s.quorum.voters === 2 && (s.removed as string[]).includes(c.info.peerId) ? s : undefined;
    });
    expect(after.quorum).toMatchObject({ voters: 2, needed: 2, writable: true });
    expect((await put(a.info.http, 'after-leave', 'x')).json).toMatchObject({ acks: 2, required: 2 });

    // SIGTERM: every daemon exits 0 within 5 s.
    for (const device of [a, b2]) device.child.kill('SIGTERM');
    for (const device of [a, b2]) expect(await waitExit(device.child, 5_000)).toBe(0);
    // Three daemons, a dozen CLI processes and a kill -9 cycle: ~36 s on a loaded 2-core runner (load ~20), which
    // a 60 s limit left too little headroom for. Each step has its own deadline; this one only ends a hang.
  }, 150_000);

  it('refuses a device holding a different cluster key, in bounded time', async () => {
    root ||= await mkdtemp(join(tmpdir(), 'quorumd-sys-'));
    const a = await spawnDevice(join(root, 'x-a'), ['--listen', '/ip4/127.0.0.1/tcp/0']);
    const other = await spawnDevice(join(root, 'x-other'), ['--listen', '/ip4/127.0.0.1/tcp/0']);
    const stranger = await spawnDevice(join(root, 'x-stranger'), [
      '--listen', '/ip4/127.0.0.1/tcp/0',
      '--join', a.info.listen[0] as string,
      '--cluster-key', join(root, 'x-other', CLUSTER_KEY_FILE),
    ]);
    const seen = await waitFor('the join attempt to fail', async () => {
      const s = await status(stranger.info.http);
      return typeof s.joinError === 'string' && s.joinError.length > 0 ? s : undefined;
    }, 10_000);
    expect(seen.role).toBe('joining');
    const aStatus = await status(a.info.http);
    expect(aStatus.voters).toHaveLength(1);
    const write = await put(stranger.info.http, 'k', 'v');
    expect(write.status).toBe(503);
    expect(write.json).toMatchObject({ error: 'not_member' });
    for (const device of [a, other, stranger]) device.child.kill('SIGTERM');
    for (const device of [a, other, stranger]) expect(await waitExit(device.child, 5_000)).toBe(0);
  });
});

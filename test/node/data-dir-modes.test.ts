// Every file a daemon writes in its data dir is private (0600), even when the data dir already existed with mode
// 0755 (made by hand, or by `mkdir -p`) and the umask is the usual 022: the database holds every value.
import { chmod, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app/daemon.js';
import { put } from '../helpers/http.js';

let daemon: Daemon | undefined;
let dir = '';
const umask = process.umask(0o022);

afterAll(async () => {
  process.umask(umask);
  await daemon?.stop();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('data dir file modes', () => {
  it('are 0600 for every file in a pre-existing 0755 data dir', async () => {
    dir = await mkdtemp(join(tmpdir(), 'quorumd-modes-'));
    await chmod(dir, 0o755);
    daemon = await Daemon.start({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], http: '127.0.0.1:0', join: [], clusterKeyFile: undefined, mdns: false, logLevel: 'silent' });
    expect((await put(daemon.httpEndpoint, 'k', 'secret')).status).toBe(201);
    const files = await readdir(dir);
    expect(files).toEqual(expect.arrayContaining(['quorumd.db', 'quorumd.db-wal', 'quorumd.db-shm', 'peer.key', 'cluster.key', 'daemon.json']));
    const modes = Object.fromEntries(await Promise.all(files.map(async (f) => [f, ((await stat(join(dir, f))).mode & 0o777).toString(8)] as const)));
    expect(modes).toEqual(Object.fromEntries(files.map((f) => [f, '600'])));
  });
});

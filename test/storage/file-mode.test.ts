// The database and its -wal/-shm files are private (0600) whatever the mode of the directory they are in and
// the process umask: new files, and files an earlier version left 0644.
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/storage/sqlite.js';
import { rec } from './contract.js';
import { DATABASE_FILE } from '../../src/config/files.js';

const modeOf = (file: string): number => statSync(file).mode & 0o777;

describe('SqliteStore file modes', () => {
  let dir: string;
  let umask: number;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'quorumd-mode-'));
    chmodSync(dir, 0o755); // a data dir made by hand (or by an older version)
    umask = process.umask(0o022); // the usual umask: new files would be 0644
  });

  afterEach(() => {
    process.umask(umask);
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates quorumd.db, -wal and -shm 0600 in a 0755 directory', async () => {
    const path = join(dir, DATABASE_FILE);
    const store = openSqliteStore(path);
    await store.put('k', rec(['A', 1, 'v']));
    for (const file of [path, `${path}-wal`, `${path}-shm`]) expect(modeOf(file).toString(8)).toBe('600');
    await store.close();
  });

  it('narrows files an earlier version left 0644', async () => {
    const path = join(dir, DATABASE_FILE);
    const first = openSqliteStore(path);
    await first.put('k', rec(['A', 1, 'v']));
    await first.close();
    chmodSync(path, 0o644);
    const store = openSqliteStore(path);
    expect(store.get('k')).toBeDefined();
    for (const file of [path, `${path}-wal`, `${path}-shm`]) expect(modeOf(file).toString(8)).toBe('600');
    await store.close();
  });
});

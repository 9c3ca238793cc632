// Runs the storage contract against both adapters: memory, and sqlite in a fresh temp dir per test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore } from '../../src/storage/memory.js';
import type { StoragePort } from '../../src/storage/port.js';
import { openSqliteStore } from '../../src/storage/sqlite.js';
import { storageContract } from './contract.js';

storageContract('memory', async () => {
  const store = new MemoryStore();
  return { store: () => store, cleanup: () => store.close() };
});

storageContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-store-'));
  const path = join(dir, 'data.db');
  let store: StoragePort = openSqliteStore(path);
  return {
    store: () => store,
    reopen: async () => {
      await store.close();
      store = openSqliteStore(path);
      return store;
    },
    cleanup: async () => {
      try {
        await store.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
});

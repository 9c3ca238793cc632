// The daemon's dot actor: the same after a clean stop, a fresh incarnation after an unclean one (a crash may
// have lost staged writes that other replicas hold; see test/core/replica.test.ts for the hazard).
import { describe, expect, it } from 'vitest';
import { nextDotActor } from '../../src/node/daemon.js';
import { MemoryStore } from '../../src/storage/memory.js';

describe('nextDotActor', () => {
  it('keeps the actor across clean stops and takes a new incarnation after a crash', async () => {
    const store = new MemoryStore();
    expect(await nextDotActor(store, 'P')).toBe('P'); // first start
    await store.setMeta('cleanShutdown', 'true'); // what Daemon.stop() records
    expect(await nextDotActor(store, 'P')).toBe('P');
    // no clean stop recorded this time: a crash
    expect(await nextDotActor(store, 'P')).toBe('P~1');
    expect(await nextDotActor(store, 'P')).toBe('P~2');
    await store.setMeta('cleanShutdown', 'true');
    expect(await nextDotActor(store, 'P')).toBe('P~2');
  });
});

// The daemon's dot actor: the same after a clean stop, a fresh incarnation after an unclean one (a crash may
// have lost staged writes that other replicas hold; see test/core/replica.test.ts for the hazard), and a random
// first incarnation for a fresh store (a wiped device keeps its peer ID but must not reissue its old dots: kv679).
import { describe, expect, it } from 'vitest';
import { nextDotActor } from '../../src/node/daemon.js';
import { MemoryStore } from '../../src/storage/memory.js';

describe('nextDotActor', () => {
  it('keeps the actor across clean stops and takes a new incarnation after a crash', async () => {
    const store = new MemoryStore();
    expect(await nextDotActor(store, 'P', () => 0)).toBe(`P~${2 ** 20}`); // first start
    await store.setMeta('cleanShutdown', 'true'); // what Daemon.stop() records
    expect(await nextDotActor(store, 'P')).toBe(`P~${2 ** 20}`);
    // no clean stop recorded this time: a crash
    expect(await nextDotActor(store, 'P')).toBe(`P~${2 ** 20 + 1}`);
    expect(await nextDotActor(store, 'P')).toBe(`P~${2 ** 20 + 2}`);
    await store.setMeta('cleanShutdown', 'true');
    expect(await nextDotActor(store, 'P')).toBe(`P~${2 ** 20 + 2}`);
  });

  it('gives a wiped device (a fresh store, same peer ID) an actor it never used before', async () => {
    const actors = new Set<string>();
    for (let i = 0; i < 50; i++) actors.add(await nextDotActor(new MemoryStore(), 'P'));
    expect(actors.size).toBe(50);
    for (const actor of actors) expect(actor).not.toBe('P');
  });

  it('keeps the plain peer ID of a store made before random incarnations (incarnation 0)', async () => {
    const store = new MemoryStore();
    await store.setMeta('incarnation', '0');
    await store.setMeta('cleanShutdown', 'true');
    expect(await nextDotActor(store, 'P')).toBe('P');
  });
});

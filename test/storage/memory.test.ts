// MemoryStore specifics: the injected commit failure that exercises the runtime's storage error path.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/storage/memory.js';
import { StoreClosedError } from '../../src/storage/port.js';
import { rec } from './contract.js';

describe('MemoryStore', () => {
  it('fails a commit when told to, then refuses writes naming the cause', async () => {
    let failing = false;
    const store = new MemoryStore({ commitError: () => (failing ? new Error('disk on fire') : undefined) });
    await store.put('a', rec(['x', 1, 'v']));
    failing = true;
    await expect(store.put('b', rec(['x', 2, 'v']))).rejects.toThrow('disk on fire');
    failing = false;
    const refused = store.put('c', rec(['x', 3, 'v']));
    await expect(refused).rejects.toBeInstanceOf(StoreClosedError);
    await expect(refused).rejects.toThrow(/failed a commit.*disk on fire/);
    await expect(store.setMeta('m', '1')).rejects.toBeInstanceOf(StoreClosedError);
    await expect(store.flush()).rejects.toBeInstanceOf(StoreClosedError);
    expect(store.get('a')).toBeDefined(); // reads still work
    await store.close();
  });
});

// Issue 12, absurd but well-formed records: a record stamped Number.MAX_SAFE_INTEGER made every later PUT on the
// device that stored it fail (an assertion on the next, unencodable, timestamp), and each failure leaked an
// operation in flight until the device answered 503 overloaded to everything. A remote timestamp now moves the
// clock only within hlcDriftMaxMs of the wall clock, on every path a record arrives by, and an operation whose
// actions throw no longer stays in flight.
import { describe, expect, it } from 'vitest';
import type { SyncMessage } from '../../src/core/anti-entropy.js';
import type { MembershipConfig } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { type VersionedRecord, liveSiblings } from '../../src/core/record.js';
import { MemoryStore } from '../../src/storage/memory.js';
import { decodeFrame, encodeFrame } from '../../src/wire/replica.js';
import { decodeSyncFrame, encodeSyncEntry } from '../../src/wire/sync.js';
import { testRuntime } from '../helpers/runtime.js';

const NOW_MS = 1_700_000_000_000;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

const config: MembershipConfig = {
  clusterId: 'c',
  epoch: 1,
  voters: [
    { peerId: 'A', addrs: [], store: 'store-A' },
    { peerId: 'B', addrs: [], store: 'store-B' },
  ],
  learners: [],
  removed: [],
  previousVoters: [],
};

const far = (counter: number, logical = 0): VersionedRecord => ({
  context: { B: counter },
  siblings: [{ dot: { actor: 'B', counter }, value: enc('far'), hlc: { wallMs: Number.MAX_SAFE_INTEGER, logical } }],
});

describe('a record stamped Number.MAX_SAFE_INTEGER', () => {
  for (const path of ['write', 'repair', 'readReply', 'transfer', 'sync push'] as const) {
    it(`arriving by ${path}: stored, and the clock and later writes are unaffected`, async () => {
      const { runtime, store } = await testRuntime('A', { config, wallClockMs: () => NOW_MS, opsInFlightMax: 10 });
      runtime.attachTransport({ send: () => true, isConnected: () => true });
      runtime.attachSync({ send: () => true }, () => true);
      const record = far(1, Number.MAX_SAFE_INTEGER);
      const wire = (m: Message): Message => decodeFrame(encodeFrame([m]))[0] as Message;
      const syncWire = (m: SyncMessage): SyncMessage => decodeSyncFrame(encodeSyncEntry(m))[0] as SyncMessage;
      if (path === 'write') runtime.receive('B', wire({ type: 'write', opId: 1, epoch: 1, key: 'far', record }));
      else if (path === 'repair') runtime.receive('B', wire({ type: 'repair', epoch: 1, key: 'far', record }));
      else if (path === 'transfer') runtime.receive('B', wire({ type: 'transfer', opId: 1, epoch: 1, seq: 1, records: [{ key: 'far', record }], done: true }));
      else if (path === 'sync push') runtime.receiveSync('B', syncWire({ type: 'push', session: 3, epoch: 1, records: [{ key: 'far', record }], purged: [] }));
      else {
        const reading = runtime.read('far', 'all');
        await new Promise((r) => setTimeout(r, 5));
        runtime.receive('B', wire({ type: 'readReply', opId: 1, epoch: 1, key: 'far', record }));
        await reading;
      }
      await store.flush();
      expect(store.get('far')?.siblings.map((s) => s.hlc.wallMs)).toEqual([Number.MAX_SAFE_INTEGER]); // data is kept
      // More writes than operations may be in flight: none fails, none stays in flight.
      for (let i = 0; i < 25; i++) {
        const { record: written } = await runtime.write(i % 2 === 0 ? 'far' : `k${i}`, enc(`v${i}`), undefined, 'one');
        const mine = written.siblings.find((s) => s.dot.actor === 'A');
        expect(mine?.hlc.wallMs).toBe(NOW_MS);
      }
      expect(runtime.opsInFlight).toBe(0);
      expect(runtime.storageFailure).toBeUndefined();
      runtime.stop();
    });
  }
});

/** A store whose record writes throw synchronously while `failing` (as an unencodable record's encoder did). */
class ThrowingStore extends MemoryStore {
  failing = true;
  override put(key: string, record: VersionedRecord): Promise<void> {
    if (this.failing) throw new Error('record is not encodable');
    return super.put(key, record);
  }
}

describe('an operation whose actions throw', () => {
  it('is not left in flight (it leaked until every request was 503 overloaded)', async () => {
    const store = new ThrowingStore();
    const { runtime } = await testRuntime('A', { config, store, wallClockMs: () => NOW_MS, opsInFlightMax: 10 });
    runtime.attachTransport({ send: () => true, isConnected: () => true });
    for (let i = 0; i < 25; i++) {
      await expect(runtime.write('k', enc('v'), undefined, 'one')).rejects.toThrow('record is not encodable');
      expect(runtime.opsInFlight).toBe(0);
    }
    store.failing = false;
    const { record } = await runtime.write('k', enc('fine'), undefined, 'one');
    expect(liveSiblings(record).map((s) => new TextDecoder().decode(s.value as Uint8Array))).toEqual(['fine']);
    runtime.stop();
  });
});

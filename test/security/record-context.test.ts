// Issue 12, absurd but well-formed records: a member's record whose context covers a writer far beyond what it
// wrote made the key vanish and every later PUT of that writer to it fail with an assertion ("dot … is new"), for
// good (the record was stored). Now a device never believes coverage of its own writer past the highest counter it
// issued (on every path a record arrives by), the decoder refuses counters no writer reaches, and a write never
// trusts a stored record that covers its fresh dot.
import { describe, expect, it } from 'vitest';
import type { SyncMessage } from '../../src/core/anti-entropy.js';
import type { MembershipConfig } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { DOT_COUNTER_MAX, type VersionedRecord, liveSiblings } from '../../src/core/record.js';
import { vvGet } from '../../src/core/vv.js';
import { WireFormatError } from '../../src/wire/errors.js';
import { decodeFrame, encodeFrame } from '../../src/wire/replica.js';
import { decodeSyncFrame, encodeSyncEntry } from '../../src/wire/sync.js';
import { encodeRecord, decodeRecord } from '../../src/wire/record.js';
import { MemoryStore } from '../../src/storage/memory.js';
import { testRuntime } from '../helpers/runtime.js';

const ACTOR = 'A~7'; // the runtime's writer (an incarnation of peer A)
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null | undefined): string | undefined => (b == null ? undefined : new TextDecoder().decode(b));

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

async function start(store?: MemoryStore) {
  const { runtime, store: s } = await testRuntime('A', { actor: ACTOR, config, ...(store === undefined ? {} : { store }) });
  runtime.attachTransport({ send: () => true, isConnected: () => true });
  runtime.attachSync({ send: () => true }, () => true);
  return { runtime, store: s };
}

/** What a peer's message looks like after the wire: encoded and decoded like every frame. */
function viaWire(msg: Message): Message {
  return decodeFrame(encodeFrame([msg]))[0] as Message;
}
function syncViaWire(msg: SyncMessage): SyncMessage {
  return decodeSyncFrame(encodeSyncEntry(msg))[0] as SyncMessage;
}

/** B's record for `key`: it holds `held` (A's real version) but claims to have seen A up to DOT_COUNTER_MAX. */
function forged(held: VersionedRecord): VersionedRecord {
  return { context: { ...held.context, [ACTOR]: DOT_COUNTER_MAX, B: 1 }, siblings: held.siblings };
}

async function put(runtime: Awaited<ReturnType<typeof start>>['runtime'], key: string, value: string) {
  return runtime.write(key, enc(value), undefined, 'one');
}

describe('a context covering this device far beyond what it wrote', () => {
  it('is refused by the decoder at an unsafe or absurd counter', () => {
    const bytes = encodeRecord({ context: { [ACTOR]: DOT_COUNTER_MAX }, siblings: [] });
    expect(decodeRecord(bytes).context).toEqual({ [ACTOR]: DOT_COUNTER_MAX });
    // Number.MAX_SAFE_INTEGER, as in the report: no writer ever gets there.
    const unsafe = encodeRecord({ context: { [ACTOR]: Number.MAX_SAFE_INTEGER }, siblings: [] });
    expect(() => decodeRecord(unsafe)).toThrow(WireFormatError);
    const frame = encodeFrame([{ type: 'repair', epoch: 1, key: 'k', record: { context: { [ACTOR]: Number.MAX_SAFE_INTEGER }, siblings: [] } }]);
    expect(() => decodeFrame(frame)).toThrow(WireFormatError);
  });

  for (const path of ['repair', 'write', 'readReply', 'transfer', 'sync push'] as const) {
    it(`arriving by ${path}: later writes of this device to the key are kept and acknowledged`, async () => {
      const { runtime, store } = await start();
      const first = await put(runtime, 'k', 'v1');
      const record = forged(first.record);
      if (path === 'repair') runtime.receive('B', viaWire({ type: 'repair', epoch: 1, key: 'k', record }));
      else if (path === 'write') runtime.receive('B', viaWire({ type: 'write', opId: 5, epoch: 1, key: 'k', record }));
      else if (path === 'transfer') runtime.receive('B', viaWire({ type: 'transfer', opId: 5, epoch: 1, seq: 1, records: [{ key: 'k', record }], done: true }));
      else if (path === 'sync push') runtime.receiveSync('B', syncViaWire({ type: 'push', session: 9, epoch: 1, records: [{ key: 'k', record }], purged: [] }));
      else {
        // A read coordinated here gathers B's (forged) answer.
        const reading = runtime.read('k', 'all');
        await new Promise((r) => setTimeout(r, 5));
        const opId = 2; // the write was operation 1
        runtime.receive('B', viaWire({ type: 'readReply', opId, epoch: 1, key: 'k', record }));
        await reading;
      }
      await store.flush();
      const stored = store.get('k') as VersionedRecord;
      expect(vvGet(stored.context, ACTOR)).toBeLessThanOrEqual(runtime['dots'].current); // never past what A issued
      expect(dec(liveSiblings(stored)[0]?.value)).toBe('v1');

      // Every later write of A to the key: acknowledged, and there (it was an AssertionError for good).
      for (let i = 2; i <= 4; i++) {
        const { record: written } = await put(runtime, 'k', `v${i}`);
        expect(liveSiblings(written).map((s) => dec(s.value))).toEqual([`v${i}`]);
        expect(liveSiblings((await runtime.read('k', 'one')).record as VersionedRecord).map((s) => dec(s.value))).toEqual([`v${i}`]);
      }
      expect(runtime.opsInFlight).toBe(0);
      runtime.stop();
    });
  }

  it('already stored (from before this check, across a restart): the next write repairs the record', async () => {
    const store = new MemoryStore();
    // What the attack left on disk: the key gone (A's version covered, not held), A covered to the maximum.
    await store.put('k', { context: { [ACTOR]: DOT_COUNTER_MAX, B: 1 }, siblings: [] });
    const { runtime } = await start(store);
    const { record } = await put(runtime, 'k', 'back');
    expect(liveSiblings(record).map((s) => dec(s.value))).toEqual(['back']);
    expect(vvGet(record.context, ACTOR)).toBe(record.siblings[0]?.dot.counter);
    expect(vvGet(record.context, 'B')).toBe(1);
    const again = await put(runtime, 'k', 'again');
    expect(liveSiblings(again.record).map((s) => dec(s.value))).toEqual(['again']);
    runtime.stop();
  });

  it('a forged version of this device (a dot it never issued) is dropped, another writer\'s coverage kept', async () => {
    const { runtime, store } = await start();
    await put(runtime, 'other', 'x'); // A issued dot 1
    const fake: VersionedRecord = {
      context: { [ACTOR]: 1000, B: 2 },
      siblings: [
        { dot: { actor: ACTOR, counter: 1000 }, value: enc('fake'), hlc: { wallMs: 1, logical: 0 } },
        { dot: { actor: 'B', counter: 2 }, value: enc('b'), hlc: { wallMs: 1, logical: 0 } },
      ],
    };
    runtime.receive('B', viaWire({ type: 'repair', epoch: 1, key: 'k', record: fake }));
    await store.flush();
    const stored = store.get('k') as VersionedRecord;
    expect(stored.siblings.map((s) => dec(s.value))).toEqual(['b']);
    expect(stored.context).toEqual({ [ACTOR]: runtime['dots'].current, B: 2 });
    runtime.stop();
  });
});

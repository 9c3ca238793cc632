// Issue 12, absurd but well-formed records: one 2.7 MB repair with 250,000 siblings blocked a device's event loop
// for 167 s (a quadratic merge, and no sibling limit when decoding). Now a record holds at most SIBLINGS_MAX
// siblings (refused while decoding, before the list is built), merge is O(n log n), and a client write that would
// pile up more than SIBLINGS_PER_WRITE_MAX concurrent versions is refused (409) instead of growing the record.
import { describe, expect, it } from 'vitest';
import type { MembershipConfig } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { RECORD_LIMITS, SIBLINGS_MAX, SIBLINGS_PER_WRITE_MAX, type Sibling, type VersionedRecord, liveSiblings, mergeRecords } from '../../src/core/record.js';
import { WireFormatError } from '../../src/wire/errors.js';
import { decodeRecord, encodeRecord } from '../../src/wire/record.js';
import * as recordPb from '../../src/wire/gen/record.pb.js';
import * as pb from '../../src/wire/gen/replica.pb.js';
import { FRAME_BYTES_MAX, decodeFrame } from '../../src/wire/replica.js';
import { testRuntime } from '../helpers/runtime.js';

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

function siblings(actor: string, n: number): Sibling[] {
  return Array.from({ length: n }, (_, i) => ({ dot: { actor, counter: i + 1 }, value: null, hlc: { wallMs: 1, logical: 0 } }));
}

/** The attack's frame: one repair whose record has `n` tombstone siblings of one writer (bypasses our encoder). */
function repairFrame(n: number): Uint8Array {
  const record: recordPb.VersionedRecord = {
    context: [{ actor: 'B', counter: BigInt(n) }],
    siblings: Array.from({ length: n }, (_, i) => ({ actor: 'B', counter: BigInt(i + 1), hlcWallMs: 1n, hlcLogical: 0n })),
  };
  const msg: pb.Message = {
    type: pb.MessageType.REPAIR, opId: 0n, epoch: 1n, key: 'k', record, accepted: false, addrs: [], store: '', ok: false, error: '',
    records: [], done: false, seq: 0n, unavailable: false, chain: [], signature: '',
  };
  return pb.Frame.encode({ messages: [msg] });
}

describe('siblings per record', () => {
  it('a 250,000-sibling repair (2.7 MB) is refused while decoding, in well under a second', () => {
    const frame = repairFrame(250_000);
    expect(frame.length).toBeLessThan(FRAME_BYTES_MAX);
    expect(frame.length).toBeGreaterThan(2_500_000);
    const started = performance.now();
    expect(() => decodeFrame(frame)).toThrow(WireFormatError);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it(`the largest record accepted (${SIBLINGS_MAX} siblings) decodes and merges quickly through a runtime`, async () => {
    const { runtime, store } = await testRuntime('A', { config });
    runtime.attachTransport({ send: () => true, isConnected: () => true });
    const started = performance.now();
    const [msg] = decodeFrame(repairFrame(SIBLINGS_MAX));
    runtime.receive('B', msg as Message);
    await store.flush();
    expect(store.get('k')?.siblings.length).toBe(SIBLINGS_MAX);
    expect(() => decodeFrame(repairFrame(SIBLINGS_MAX + 1))).toThrow(WireFormatError);
    expect(performance.now() - started).toBeLessThan(1_000);
    runtime.stop();
  });

  it('this device reads back a record of its own store past the peer limit (a merge can make one)', async () => {
    const big: VersionedRecord = { context: { x: SIBLINGS_MAX, y: SIBLINGS_MAX }, siblings: [...siblings('x', SIBLINGS_MAX), ...siblings('y', SIBLINGS_MAX)] };
    const merged = mergeRecords({ context: { x: SIBLINGS_MAX }, siblings: siblings('x', SIBLINGS_MAX) }, { context: { y: SIBLINGS_MAX }, siblings: siblings('y', SIBLINGS_MAX) });
    expect(merged).toEqual(big);
    expect(decodeRecord(encodeRecord(merged))).toEqual(merged); // the store's decoder
    expect(() => decodeRecord(encodeRecord(merged), RECORD_LIMITS)).toThrow(WireFormatError); // a peer's
  });

  it('merge is not quadratic: two records of 50,000 siblings merge in well under a second', () => {
    // (Past any decode limit: the merge itself must not be the bottleneck. Quadratic, this took minutes.)
    const a: VersionedRecord = { context: { x: 50_000, y: 25_000 }, siblings: siblings('x', 50_000) };
    const b: VersionedRecord = { context: { x: 25_000, y: 50_000 }, siblings: [...siblings('x', 50_000).slice(25_000), ...siblings('y', 50_000)] };
    const started = performance.now();
    const merged = mergeRecords(a, b);
    expect(performance.now() - started).toBeLessThan(1_000);
    // x:1..25,000 superseded in b, y:1..25,000 in a; x:25,001..50,000 on both sides, y:25,001..50,000 new to a.
    expect(merged.siblings.length).toBe(50_000);
  });

  it(`a client write that would leave more than ${SIBLINGS_PER_WRITE_MAX} concurrent versions is refused (409), a resolving one is not`, async () => {
    const { runtime } = await testRuntime('A', { config });
    runtime.attachTransport({ send: () => true, isConnected: () => true });
    const stale = { vv: {}, unseen: [] }; // a client that never read: each write leaves the others concurrent
    for (let i = 0; i < SIBLINGS_PER_WRITE_MAX; i++) await runtime.write('k', Uint8Array.of(i), stale, 'one');
    await expect(runtime.write('k', Uint8Array.of(99), stale, 'one')).rejects.toMatchObject({ code: 'too_many_siblings' });
    expect(runtime.opsInFlight).toBe(0);
    const { record } = await runtime.read('k', 'one');
    const resolved = await runtime.write('k', Uint8Array.of(100), { vv: (record as VersionedRecord).context, unseen: [] }, 'one');
    expect(liveSiblings(resolved.record).map((s) => s.value?.[0])).toEqual([100]);
    runtime.stop();
  });
});

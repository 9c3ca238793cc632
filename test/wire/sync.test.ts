// Property tests for the anti-entropy frame codec (/quorumd/sync/1.0.0): round trip of every message kind, and
// rejection (only ever WireFormatError) of random, truncated or inconsistent frames.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SyncMessage } from '../../src/core/anti-entropy.js';
import type { Hash64 } from '../../src/core/digest.js';
import { WireFormatError } from '../../src/wire/errors.js';
import { decodeSyncFrame, encodeSyncEntry } from '../../src/wire/sync.js';
import * as pb from '../../src/wire/sync.pb.js';
import { expectOnlyWireErrors, recordArb } from './arbitraries.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const hashArb: fc.Arbitrary<Hash64> = fc.record({ hi: u32, lo: u32 });
const session = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const epoch = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const keyArb = fc.string({ maxLength: 20 });
const keyed = fc.record({ key: keyArb, record: recordArb });
const entry = fc.record({ key: keyArb, hash: u32 });
const purgedEntry = fc.record({ key: keyArb, hash: hashArb });

const syncArb: fc.Arbitrary<SyncMessage> = fc.oneof(
  fc.record({ type: fc.constant('digest' as const), session, epoch, root: hashArb, keys: fc.nat(), level: fc.nat(8), nodes: fc.array(u32, { maxLength: 20 }) }),
  fc.record({ type: fc.constant('digestReply' as const), session, epoch, root: hashArb, keys: fc.nat(), level: fc.nat(8), hashes: fc.array(u32, { maxLength: 40 }) }),
  fc.record({ type: fc.constant('segments' as const), session, epoch, segments: fc.array(u32, { maxLength: 20 }), entries: fc.array(entry, { maxLength: 10 }) }),
  fc.record({
    type: fc.constant('segmentsReply' as const),
    session,
    epoch,
    done: fc.nat(600),
    records: fc.array(keyed, { maxLength: 4 }),
    want: fc.array(keyArb, { maxLength: 5 }),
    purged: fc.array(purgedEntry, { maxLength: 5 }),
  }),
  fc.record({ type: fc.constant('push' as const), session, epoch, records: fc.array(keyed, { maxLength: 4 }), purged: fc.array(purgedEntry, { maxLength: 5 }) }),
  fc.record({ type: fc.constant('pushAck' as const), session }),
  fc.record({ type: fc.constant('refused' as const), session, reason: fc.string({ maxLength: 50 }) }),
);

function frame(messages: readonly SyncMessage[]): Uint8Array {
  const parts = messages.map(encodeSyncEntry);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('sync frame codec', () => {
  it('round-trips every message kind, in order', () => {
    fc.assert(
      fc.property(fc.array(syncArb, { maxLength: 6 }), (messages) => {
        expect(decodeSyncFrame(frame(messages))).toEqual(messages);
      }),
      { numRuns: 400 },
    );
  });

  it('throws only WireFormatError on random and truncated bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => expectOnlyWireErrors(decodeSyncFrame, bytes)),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.array(syncArb, { minLength: 1, maxLength: 3 }), fc.nat(), (messages, cut) => {
        const bytes = frame(messages);
        expectOnlyWireErrors(decodeSyncFrame, bytes.slice(0, cut % bytes.length));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects inconsistent fields: hashes not a multiple of 8, keys without hashes, unknown types, a reply without a root', () => {
    const blank: pb.SyncMessage = {
      type: pb.SyncType.SEGMENTS, session: 1n, root: new Uint8Array(0), keys: 0n, level: 0, nodes: [1], hashes: new Uint8Array(0),
      keysListed: [], done: 0, records: [], want: [], reason: '', epoch: 0n,
    };
    const raw = (m: Partial<pb.SyncMessage>): Uint8Array => pb.SyncFrame.encode({ messages: [{ ...blank, ...m }] });
    expect(() => decodeSyncFrame(raw({ hashes: new Uint8Array(7) }))).toThrow(WireFormatError);
    expect(() => decodeSyncFrame(raw({ keysListed: ['a', 'b'], hashes: new Uint8Array(4) }))).toThrow(/2 keys but 1 hashes/);
    expect(() => decodeSyncFrame(raw({ type: pb.SyncType.PUSH, keysListed: ['a', 'b'], hashes: new Uint8Array(8) }))).toThrow(/2 keys but 1 hashes/);
    expect(() => decodeSyncFrame(Uint8Array.from([0x0a, 0x02, 0x08, 99]))).toThrow(WireFormatError); // message type 99
    expect(() => decodeSyncFrame(raw({ type: pb.SyncType.DIGEST_REPLY }))).toThrow(WireFormatError);
    expect(() => decodeSyncFrame(raw({ type: pb.SyncType.PUSH, records: [{ key: 'k' }] }))).toThrow(/has no record/);
    expect(() => decodeSyncFrame(raw({ session: 2n ** 60n }))).toThrow(/out of range/);
    expect(() => decodeSyncFrame(raw({ epoch: 2n ** 60n }))).toThrow(/epoch out of range/);
    expect(decodeSyncFrame(raw({}))[0]).toMatchObject({ type: 'segments', epoch: 0 }); // a sender's epoch left out: 0
  });
});

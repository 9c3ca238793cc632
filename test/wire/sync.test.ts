// Property tests for the anti-entropy frame codec (/quorumd/sync/1.0.0): round trip of every message kind, and
// rejection (only ever WireFormatError) of random, truncated or inconsistent frames.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SyncMessage } from '../../src/core/anti-entropy.js';
import { WireFormatError } from '../../src/wire/errors.js';
import { decodeSyncFrame, encodeSyncEntry } from '../../src/wire/sync.js';
import * as pb from '../../src/wire/gen/sync.pb.js';
import { expectOnlyWireErrors, syncArb } from './arbitraries.js';

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

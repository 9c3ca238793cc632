// Property tests for the replica frame codec: round trip of arbitrary message batches, frame = concatenated
// entries, and rejection (only ever WireFormatError) of random, truncated, oversized or invalid frames.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/messages.js';
import { WireFormatError } from '../../src/wire/errors.js';
import { FRAME_LIMITS, decodeFrame, encodeFrame, encodeFrameEntry, joinFrameEntries } from '../../src/wire/replica.js';
import * as pb from '../../src/wire/gen/replica.pb.js';
import { messageArb, expectCorruptionsRejected, expectOnlyWireErrors } from './arbitraries.js';

const decodeOrWireError = (bytes: Uint8Array): void => expectOnlyWireErrors(decodeFrame, bytes);

const blank: pb.Message = {
  type: pb.MessageType.WRITE_ACK, opId: 1n, epoch: 1n, key: '', accepted: false, addrs: [], ok: false, error: '', records: [], done: false, seq: 0n, unavailable: false, store: '', chain: [], signature: '',
};

function rawFrame(...messages: Array<Partial<pb.Message>>): Uint8Array {
  return pb.Frame.encode({ messages: messages.map((m) => ({ ...blank, ...m })) });
}

describe('replica frame codec', () => {
  it('round-trips arbitrary message batches in order', () => {
    fc.assert(
      fc.property(fc.array(messageArb, { maxLength: 8 }), (messages) => {
        expect(decodeFrame(encodeFrame(messages))).toEqual(messages);
      }),
      { numRuns: 500 },
    );
  });

  it('a frame is the concatenation of its entries', () => {
    fc.assert(
      fc.property(fc.array(messageArb, { maxLength: 5 }), (messages) => {
        expect(joinFrameEntries(messages.map(encodeFrameEntry))).toEqual(encodeFrame(messages));
      }),
      { numRuns: 200 },
    );
  });

  it('throws only WireFormatError on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), decodeOrWireError), { numRuns: 3000 });
  });

  it('throws only WireFormatError on truncated or bit-flipped frames', () => {
    fc.assert(
      fc.property(fc.array(messageArb, { minLength: 1, maxLength: 4 }), fc.nat(), fc.nat(7), (messages, at, bit) => {
        expectCorruptionsRejected(decodeFrame, encodeFrame(messages), at, bit);
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects frames over the byte or message limit', () => {
    const acks: Message[] = Array.from({ length: 10 }, (_, i) => ({ type: 'writeAck', opId: i, epoch: 1 }));
    const bytes = encodeFrame(acks);
    expect(() => decodeFrame(bytes, { ...FRAME_LIMITS, frameMessagesMax: 9 })).toThrow(WireFormatError);
    expect(() => decodeFrame(bytes, { ...FRAME_LIMITS, frameBytesMax: bytes.length - 1 })).toThrow(WireFormatError);
    expect(decodeFrame(bytes, { frameMessagesMax: 10, frameBytesMax: bytes.length })).toHaveLength(10);
  });

  it('rejects unknown types, missing required fields and bad configurations', () => {
    const goodRecord = { context: [{ actor: 'a', counter: 1n }], siblings: [] };
    const config = { clusterId: 'c', epoch: 1n, voters: [{ peerId: 'p', addrs: [], store: '' }], learners: [], removed: [], previousVoters: [], replaced: [] };
    const bad: Array<[string, Uint8Array]> = [
      ['unspecified type', rawFrame({ type: pb.MessageType.MESSAGE_TYPE_UNSPECIFIED })],
      ['type value from the future', new Uint8Array([0x0a, 0x02, 0x08, 0x63])],
      ['write without record', rawFrame({ type: pb.MessageType.WRITE, key: 'k' })],
      ['repair without record', rawFrame({ type: pb.MessageType.REPAIR, key: 'k' })],
      ['transfer entry without record', rawFrame({ type: pb.MessageType.TRANSFER, records: [{ key: 'k' }] })],
      ['stale without config', rawFrame({ type: pb.MessageType.STALE })],
      ['config without voters', rawFrame({ type: pb.MessageType.CONFIG, config: { ...config, voters: [] } })],
      ['config with empty cluster id', rawFrame({ type: pb.MessageType.CONFIG, config: { ...config, clusterId: '' } })],
      ['prepare without ballot', rawFrame({ type: pb.MessageType.CONFIG_PREPARE, config })],
      ['accept without config', rawFrame({ type: pb.MessageType.CONFIG_ACCEPT, ballot: { round: 1n, proposer: 'p' } })],
      ['retired configPropose', rawFrame({ type: pb.MessageType.CONFIG_PROPOSE, config })],
      ['removed peer still a voter', rawFrame({ type: pb.MessageType.CONFIG, config: { ...config, removed: ['p'] } })],
      ['opId above 2^53', rawFrame({ opId: 2n ** 60n })],
      ['bad embedded record', rawFrame({ type: pb.MessageType.WRITE, record: { ...goodRecord, context: [{ actor: 'a', counter: 0n }] } })],
    ];
    for (const [what, bytes] of bad) {
      expect(() => decodeFrame(bytes), what).toThrow(WireFormatError);
    }
    expect(decodeFrame(rawFrame({ type: pb.MessageType.WRITE, key: 'k', record: goodRecord }))).toHaveLength(1);
  });

  it('decodes the empty frame as no messages', () => {
    expect(decodeFrame(new Uint8Array(0))).toEqual([]);
  });
});

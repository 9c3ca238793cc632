// Strings from the wire must be valid text: the protobuf reader turns invalid UTF-8 (here the 3-byte encoding of a
// lone surrogate) into a JS string that encodes back to other bytes, so a key or a writer name would change on
// its way through this device (found by the replica frame fuzz target: a peer ID did).
import { describe, expect, it } from 'vitest';
import { WireFormatError } from '../../src/wire/errors.js';
import { decodeRecord, encodeRecord } from '../../src/wire/record.js';
import { decodeFrame, encodeFrame } from '../../src/wire/replica.js';
import { decodeSyncFrame, encodeSyncEntry } from '../../src/wire/sync.js';

/** `bytes` with every ASCII `abc` replaced by ED B3 84 (a lone low surrogate, U+DCC4). */
function loneSurrogateFor(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  let found = false;
  for (let i = 0; i + 2 < out.length; i++) {
    if (out[i] === 0x61 && out[i + 1] === 0x62 && out[i + 2] === 0x63) {
      out.set([0xed, 0xb3, 0x84], i);
      found = true;
    }
  }
  if (!found) throw new Error('no abc');
  return out;
}

const record = { context: { abc: 1 }, siblings: [{ dot: { actor: 'abc', counter: 1 }, value: null, hlc: { wallMs: 1, logical: 0 } }] };

describe('text on the wire', () => {
  it('refuses a writer name that is not valid UTF-8', () => {
    expect(() => decodeRecord(loneSurrogateFor(encodeRecord(record)))).toThrow(WireFormatError);
  });

  it('refuses keys and peer ids that are not valid UTF-8, in replica and sync frames', () => {
    const plain = { context: {}, siblings: [] };
    expect(() => decodeFrame(loneSurrogateFor(encodeFrame([{ type: 'repair', epoch: 1, key: 'abc', record: plain }])))).toThrow(WireFormatError);
    const config = { clusterId: 'c', epoch: 1, voters: [{ peerId: 'abc', addrs: [] }], learners: [], removed: [], previousVoters: [] };
    expect(() => decodeFrame(loneSurrogateFor(encodeFrame([{ type: 'config', epoch: 1, config }])))).toThrow(WireFormatError);
    const push = { type: 'push' as const, session: 1, epoch: 1, records: [{ key: 'abc', record: plain }], purged: [] };
    expect(() => decodeSyncFrame(loneSurrogateFor(encodeSyncEntry(push)))).toThrow(WireFormatError);
  });

  it('refuses proof signers, signatures and accept signatures that are not valid UTF-8 (found by the fuzz target)', () => {
    const proof = { ballot: { round: 1, proposer: 'p' }, signatures: [{ peerId: 'abc', signature: 'sig' }] };
    const config = { clusterId: 'c', epoch: 2, voters: [{ peerId: 'v', addrs: [] }], learners: [], removed: [], previousVoters: [], proof };
    expect(() => decodeFrame(loneSurrogateFor(encodeFrame([{ type: 'config', epoch: 2, config }])))).toThrow(WireFormatError);
    const signed = { ...config, proof: { ...proof, signatures: [{ peerId: 'v', signature: 'abc' }] } };
    expect(() => decodeFrame(loneSurrogateFor(encodeFrame([{ type: 'config', epoch: 2, config: signed }])))).toThrow(WireFormatError);
    const accepted = { type: 'configAccepted' as const, opId: 1, epoch: 1, ballot: { round: 1, proposer: 'p' }, ok: true, promised: undefined, config: undefined, signature: 'abc' };
    expect(() => decodeFrame(loneSurrogateFor(encodeFrame([accepted])))).toThrow(WireFormatError);
  });
});

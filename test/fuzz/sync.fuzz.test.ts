// Fuzz target for the anti-entropy frame decoder (src/wire/sync.ts): random bytes and edits of valid frames
// either decode to messages that re-encode and whose records the core's merge functions take, or throw
// WireFormatError (the stream is reset).
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { decodeSyncFrame, encodeSyncEntry } from '../../src/wire/sync.js';
import { joinFrameEntries } from '../../src/wire/replica.js';
import { syncArb } from '../wire/arbitraries.js';
import { check, checkRecord, decodeOrWireError, inputArb, samplePool } from './record-invariants.js';
import { fuzzRuns, fuzzTimeoutMs } from './runs.js';

describe('sync frame decoder fuzz', () => {
  it('decodes to valid messages or throws WireFormatError', { timeout: fuzzTimeoutMs() }, () => {
    const frames = samplePool(fc.array(syncArb, { maxLength: 4 }), (ms) => joinFrameEntries(ms.map(encodeSyncEntry)));
    fc.assert(
      fc.property(inputArb(frames), (bytes) => {
        const messages = decodeOrWireError(() => decodeSyncFrame(bytes));
        if (messages === undefined) return;
        const again = joinFrameEntries(messages.map(encodeSyncEntry));
        check(isDeepStrictEqual(decodeSyncFrame(again), messages), 'reads back the same');
        for (const m of messages) {
          if (m.type === 'push' || m.type === 'segmentsReply') for (const r of m.records) checkRecord(r.record);
        }
      }),
      { numRuns: fuzzRuns(2000) },
    );
  });
});

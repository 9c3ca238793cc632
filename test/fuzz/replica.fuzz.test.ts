// Fuzz target for the replication frame decoder (src/wire/replica.ts): random bytes and edits of valid frames
// either decode to messages that re-encode to the same frame content and whose records the core's merge functions
// take, or throw WireFormatError (the stream is reset).
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, it } from 'vitest';
import type { Message } from '../../src/core/messages.js';
import type { VersionedRecord } from '../../src/core/record.js';
import { decodeFrame, encodeFrame } from '../../src/wire/replica.js';
import { messageArb } from '../wire/arbitraries.js';
import { check, checkRecord, decodeOrWireError, inputArb, samplePool } from './record-invariants.js';
import { fuzzRuns, fuzzTimeoutMs } from './runs.js';

function recordsOf(m: Message): VersionedRecord[] {
  if (m.type === 'write' || m.type === 'repair') return [m.record];
  if (m.type === 'readReply') return m.record === undefined ? [] : [m.record];
  if (m.type === 'transfer') return m.records.map((r) => r.record);
  return [];
}

describe('replica frame decoder fuzz', () => {
  it('decodes to valid messages or throws WireFormatError', { timeout: fuzzTimeoutMs() }, () => {
    const frames = samplePool(fc.array(messageArb, { maxLength: 4 }), (ms) => encodeFrame(ms));
    fc.assert(
      fc.property(inputArb(frames), (bytes) => {
        const messages = decodeOrWireError(() => decodeFrame(bytes));
        if (messages === undefined) return;
        // What was accepted can be sent on (no assertion in the encoder) and reads back the same.
        const again = encodeFrame(messages);
        check(isDeepStrictEqual(decodeFrame(again), messages), 'reads back the same');
        for (const m of messages) for (const r of recordsOf(m)) checkRecord(r);
      }),
      { numRuns: fuzzRuns(2000) },
    );
  });
});

// Fuzz target for the record decoder (src/wire/record.ts), used for the disk format and inside every frame:
// random bytes and edits of valid encodings either decode to a record the core's functions take without an
// assertion failure, or throw WireFormatError.
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { RECORD_LIMITS } from '../../src/core/record.js';
import { decodeRecord, encodeRecord } from '../../src/wire/record.js';
import { recordArb } from '../wire/arbitraries.js';
import { checkRecord, decodeOrWireError, inputArb, samplePool } from './record-invariants.js';
import { fuzzRuns, fuzzTimeoutMs } from './runs.js';

describe('record decoder fuzz', () => {
  it('decodes to a well-formed record or throws WireFormatError', { timeout: fuzzTimeoutMs() }, () => {
    fc.assert(
      fc.property(inputArb(samplePool(recordArb, encodeRecord)), (bytes) => {
        // As a peer's record (frames) and as this device's store reads it back (no count limits).
        const record = decodeOrWireError(() => decodeRecord(bytes, RECORD_LIMITS));
        if (record !== undefined) checkRecord(record);
        const stored = decodeOrWireError(() => decodeRecord(bytes));
        if (record !== undefined && stored === undefined) throw new Error('the store refuses what a peer may send');
        if (stored !== undefined && record === undefined) checkRecord(stored);
      }),
      { numRuns: fuzzRuns(2000) },
    );
  });
});

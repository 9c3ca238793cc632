// Fuzz target for the record decoder (src/wire/record.ts), used for the disk format and inside every frame:
// random bytes and edits of valid encodings either decode to a record the core's functions take without an
// assertion failure, or throw WireFormatError.
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { decodeRecord, encodeRecord } from '../../src/wire/record.js';
import { recordArb } from '../wire/arbitraries.js';
import { checkRecord, decodeOrWireError, inputArb, samplePool } from './record-invariants.js';
import { fuzzRuns, fuzzTimeoutMs } from './runs.js';

describe('record decoder fuzz', () => {
  it('decodes to a well-formed record or throws WireFormatError', { timeout: fuzzTimeoutMs() }, () => {
    fc.assert(
      fc.property(inputArb(samplePool(recordArb, encodeRecord)), (bytes) => {
        const record = decodeOrWireError(() => decodeRecord(bytes));
        if (record !== undefined) checkRecord(record);
      }),
      { numRuns: fuzzRuns(2000) },
    );
  });
});

// The generated codecs install the uint64 fix themselves (src/wire/generate-pb.sh puts the import in each):
// a module that imports only generated code still writes 2^31 as the standard varint. This file imports nothing
// else from src/wire, so nothing else can have installed the fix in its worker.
import { describe, expect, it } from 'vitest';
import * as pb from '../../src/wire/gen/record.pb.js';

describe('generated codecs', () => {
  it('write a uint64 in [2^31, 2^32) as the standard varint without any other wire module loaded', () => {
    const n = 2n ** 31n;
    // field 2 (counter), varint: 0x80 0x80 0x80 0x80 0x08
    expect(Array.from(pb.VvEntry.encode({ actor: '', counter: n }))).toEqual([16, 0x80, 0x80, 0x80, 0x80, 0x08]);
    expect(pb.VvEntry.decode(pb.VvEntry.encode({ actor: 'a', counter: n })).counter).toBe(n);
  });
});

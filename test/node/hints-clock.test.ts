// The hint book under a wall clock that steps back (NTP correction, an RTC-less device that booted in 1970 and
// then synced): a miss recorded after a handover was sent must survive that handover's confirmation.
import { describe, expect, it } from 'vitest';
import { HintBook } from '../../src/node/hints.js';
import { MemoryStore } from '../../src/storage/memory.js';

describe('HintBook with a wall clock that steps back', () => {
  it('keeps a hint renewed after the handover was sent, even if the clock stepped back in between', async () => {
    const store = new MemoryStore();
    let now = 10_000_000;
    const book = new HintBook(store, { hintsMax: 100, hintTtlMs: 600_000 }, () => now);
    await book.add('P', 'a');
    expect(book.take('P', 10)).toEqual(['a']);
    const sentAt = book.mark(); // the handover reads a's record now
    now -= 3_600_000; // the clock steps back an hour
    await book.add('P', 'a'); // a new miss of `a`: the handed-over record does not hold this write
    await book.delivered('P', ['a'], sentAt);
    expect(book.take('P', 10)).toEqual(['a']);
  });
});

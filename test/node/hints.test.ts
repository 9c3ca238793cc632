// The hint book of hinted handoff: durable across restarts, bounded, expiring (also for peers that stay away),
// and a confirmation only clears hints older than the handover it confirms.
import { describe, expect, it } from 'vitest';
import { HintBook } from '../../src/node/hints.js';
import { MemoryStore } from '../../src/storage/memory.js';

describe('HintBook', () => {
  it('keeps hints durably, hands them out oldest first and clears only what a handover covered', async () => {
    const store = new MemoryStore();
    let now = 1_000;
    const book = new HintBook(store, { hintsMax: 100, hintTtlMs: 60_000 }, () => now);
    await book.add('P', 'a');
    now += 1;
    await book.add('P', 'b');
    await book.add('Q', 'c');
    expect(book.take('P', 10)).toEqual(['a', 'b']);
    const sentAt = book.mark();
    now += 5;
    await book.add('P', 'a'); // a new miss of `a` after the handover read its record: renewed
    await book.delivered('P', ['a', 'b'], sentAt);
    expect(book.take('P', 10)).toEqual(['a']);
    expect(book.stats()).toMatchObject({ queued: 2, delivered: 1, byPeer: { P: 1, Q: 1 } });
    const reopened = new HintBook(store, { hintsMax: 100, hintTtlMs: 60_000 }, () => now);
    expect(reopened.stats()).toMatchObject({ queued: 2, byPeer: { P: 1, Q: 1 } });
    expect(reopened.take('Q', 10)).toEqual(['c']);
  });

  it('is bounded and expires hints, also of peers that never come back', async () => {
    const store = new MemoryStore();
    let now = 0;
    const book = new HintBook(store, { hintsMax: 3, hintTtlMs: 1_000 }, () => now);
    for (const key of ['a', 'b', 'c', 'd']) await book.add('gone', key);
    expect(book.stats()).toMatchObject({ queued: 3, dropped: 1 });
    now = 2_000;
    book.expire();
    await store.flush();
    expect(book.stats()).toMatchObject({ queued: 0, expired: 3 });
    expect(store.metaNames('hint:')).toEqual([]);
  });
});

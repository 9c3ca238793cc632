// The durable meta table (src/storage/meta.ts): names are unique, every codec reads back what it writes, and
// an unreadable value is a MetaDecodeError (or, for the lenient reader, undefined) rather than a wrong value.
import { describe, expect, it } from 'vitest';
import { foundingConfig } from '../../src/core/membership.js';
import { emptyAcceptor } from '../../src/core/paxos.js';
import { MemoryStore } from '../../src/storage/memory.js';
import {
  META, META_HINT_PREFIX, type MetaEntry, MetaDecodeError, readMeta, readMetaOrUndefined, writeMeta,
} from '../../src/storage/meta.js';

const config = foundingConfig('c1', { peerId: 'p1', addrs: ['/ip4/127.0.0.1/tcp/1'], store: '0'.repeat(32) });

/** One valid value per entry (the table must stay exhaustive: a new entry without a sample fails to compile). */
const SAMPLES: { [K in keyof typeof META]: (typeof META)[K] extends MetaEntry<infer T> ? T : never } = {
  membership: config,
  configHistory: [config],
  acceptor: emptyAcceptor(1),
  transferResume: { epoch: 3, after: 'k/7' },
  joinTransfer: 'pending',
  hlc: { wallMs: 1_700_000_000_000, logical: 4 },
  dotReserved: 2048,
  incarnation: 1_048_577,
  cleanShutdown: true,
  storeId: 'ab'.repeat(16),
  listen: ['/ip4/0.0.0.0/tcp/4001'],
  addressBook: { p2: ['/ip4/127.0.0.1/tcp/2/p2p/p2'] },
};

describe('meta table', () => {
  it('names every value once, none under the hint prefix', () => {
    const names = Object.values(META).map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name.startsWith(META_HINT_PREFIX)).toBe(false);
  });

  it('reads back what it writes, for every entry', async () => {
    const store = new MemoryStore();
    for (const [key, value] of Object.entries(SAMPLES)) {
      const entry = META[key as keyof typeof META] as MetaEntry<unknown>;
      await writeMeta(store, entry, value);
      expect(readMeta(store, entry), key).toEqual(value);
    }
    await store.close();
  });

  it('keeps the stored formats (JSON, decimal, words) that existing stores hold', () => {
    expect(META.hlc.codec.encode({ wallMs: 5, logical: 1 })).toBe('{"wallMs":5,"logical":1}');
    expect(META.transferResume.codec.encode({ epoch: 2, after: 'a' })).toBe('{"epoch":2,"after":"a"}');
    expect(META.dotReserved.codec.encode(1024)).toBe('1024');
    expect(META.cleanShutdown.codec.encode(false)).toBe('false');
    expect(META.joinTransfer.codec.encode('done')).toBe('done');
    // A configuration written before joint phases existed has no previousVoters.
    const { previousVoters: _dropped, ...legacy } = config;
    expect(META.membership.codec.decode(JSON.stringify(legacy))).toEqual(config);
  });

  it('refuses unreadable values with MetaDecodeError; the lenient reader gives undefined', () => {
    const store = new MemoryStore();
    const bad: [MetaEntry<unknown>, string][] = [
      [META.membership, JSON.stringify({ ...config, clusterId: '' })],
      [META.acceptor, '{"slot":1.5}'],
      [META.transferResume, '{"epoch":"1","after":"a"}'],
      [META.joinTransfer, 'maybe'],
      [META.hlc, '{"wallMs":-1,"logical":0}'],
      [META.dotReserved, '-3'],
      [META.incarnation, 'x'],
      [META.storeId, 'not-hex'],
      [META.configHistory, '{}'],
    ];
    for (const [entry, text] of bad) {
      void store.setMeta(entry.name, text);
      expect(() => readMeta(store, entry), entry.name).toThrow(MetaDecodeError);
      expect(readMetaOrUndefined(store, entry), entry.name).toBeUndefined();
    }
    void store.setMeta(META.hlc.name, 'not json');
    expect(() => readMeta(store, META.hlc)).toThrow(SyntaxError);
    expect(readMetaOrUndefined(store, META.hlc)).toBeUndefined();
    expect(readMeta(store, META.listen)).toBeUndefined(); // absent
  });

  it('drops the unreadable configurations of a history, keeping the rest', () => {
    const text = JSON.stringify([config, { ...config, clusterId: '' }, null]);
    expect(META.configHistory.codec.decode(text)).toEqual([config]);
  });
});

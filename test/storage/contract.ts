// The storage contract: behaviour every StoragePort adapter must share (run for each adapter by
// contract.test.ts), including key order by code point and a model-based check against a Map.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Sibling, VersionedRecord } from '../../src/core/record.js';
import { type StoragePort, StoreClosedError } from '../../src/storage/port.js';
import { recordArb } from '../wire/arbitraries.js';

export interface StoreFixture {
  /** The store most recently opened by the fixture. */
  readonly store: () => StoragePort;
  /** Closes the current store and opens the same data again; absent for volatile adapters. */
  readonly reopen?: () => Promise<StoragePort>;
  /** Closes whatever is still open and removes everything the fixture created. */
  readonly cleanup: () => Promise<void>;
}

export type StoreFactory = () => Promise<StoreFixture>;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A record with one sibling per [actor, counter, value] (value null = tombstone). */
export function rec(...sibs: Array<[actor: string, counter: number, value: string | null]>): VersionedRecord {
  const context: Record<string, number> = {};
  const siblings: Sibling[] = sibs
    .map(([actor, counter, value]) => {
      context[actor] = Math.max(context[actor] ?? 0, counter);
      return { dot: { actor, counter }, value: value === null ? null : enc.encode(value), hlc: { wallMs: counter, logical: 0 } };
    })
    .sort((a, b) => (a.dot.actor < b.dot.actor ? -1 : a.dot.actor > b.dot.actor ? 1 : a.dot.counter - b.dot.counter));
  return { context, siblings };
}

/** A comparable plain form of a record (context order and byte-array types do not matter). */
export function plain(record: VersionedRecord | undefined): unknown {
  if (record === undefined) return undefined;
  return {
    context: Object.entries(record.context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    siblings: record.siblings.map((s) => ({ ...s, value: s.value === null ? null : Buffer.from(s.value).toString('hex') })),
  };
}

/** Reference order: UTF-8 bytes, computed independently of the adapters' compareKeys. */
export function utf8Order(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function valueOf(record: VersionedRecord | undefined): Array<string | null> | undefined {
  return record?.siblings.map((s) => (s.value === null ? null : dec.decode(s.value)));
}

/** Keys whose UTF-16 order differs from their UTF-8 order, plus NUL, empty and combining forms. */
export const TRICKY_KEYS = ['', 'a', 'a\u0000', 'a\u0000b', 'ab', 'B', '~', '\u007f', '\u00e9', 'e\u0301', '\u4e2d',
  '\ud7ff', '\ue000', '\uffef', '\uffff', '\u{10000}', '\u{1f600}', '\u{1f600}x', '\u{10ffff}'];

export function storageContract(name: string, factory: StoreFactory): void {
  async function withStore(fn: (fx: StoreFixture) => Promise<void>): Promise<void> {
    const fx = await factory();
    try {
      await fn(fx);
    } finally {
      await fx.cleanup();
    }
  }

  describe(`storage contract: ${name}`, () => {
    it('reports nothing for an empty store', () =>
      withStore(async (fx) => {
        const store = fx.store();
        expect(store.get('missing')).toBeUndefined();
        expect(store.getMeta('missing')).toBeUndefined();
        expect(store.scan(undefined, 10)).toEqual([]);
        expect(store.stats()).toMatchObject({ liveKeys: 0, totalKeys: 0 });
        await store.flush();
      }));

    it('round-trips values, empty values, tombstones and siblings', () =>
      withStore(async (fx) => {
        const records: Record<string, VersionedRecord> = {
          live: rec(['a', 1, 'hello']),
          empty: rec(['a', 2, '']),
          tomb: rec(['a', 3, null]),
          siblings: rec(['b', 7, 'x'], ['a', 4, null], ['c', 1, 'y']),
          wide: { context: { a: 9, b: 2, z: 5 }, siblings: [{ dot: { actor: 'a', counter: 9 }, value: new Uint8Array(70_000).fill(7), hlc: { wallMs: 1, logical: 2 } }] },
          bare: { context: { a: 3 }, siblings: [] },
        };
        await Promise.all(Object.entries(records).map(([k, r]) => fx.store().put(k, r)));
        const check = (store: StoragePort): void => {
          for (const [k, r] of Object.entries(records)) expect(plain(store.get(k)), k).toEqual(plain(r));
          expect(valueOf(store.get('empty'))).toEqual(['']);
          expect(valueOf(store.get('tomb'))).toEqual([null]);
        };
        check(fx.store());
        if (fx.reopen !== undefined) check(await fx.reopen());
      }));

    it('makes a write visible to every read before it is durable', () =>
      withStore(async (fx) => {
        const store = fx.store();
        const pending = [store.put('k', rec(['a', 1, 'v'])), store.setMeta('m', 'one')];
        expect(valueOf(store.get('k'))).toEqual(['v']);
        expect(store.scan(undefined, 5).map((e) => e.key)).toEqual(['k']);
        expect(store.stats()).toMatchObject({ liveKeys: 1, totalKeys: 1 });
        expect(store.getMeta('m')).toBe('one');
        await Promise.all(pending);
        expect(valueOf(store.get('k'))).toEqual(['v']);
      }));

    it('overwrites a key, within one turn and across commits', () =>
      withStore(async (fx) => {
        const store = fx.store();
        const first = store.put('k', rec(['a', 1, 'one']));
        const second = store.put('k', rec(['a', 2, 'two']));
        expect(valueOf(store.get('k'))).toEqual(['two']);
        await Promise.all([first, second]);
        expect(valueOf(store.get('k'))).toEqual(['two']);
        await store.put('k', rec(['a', 3, 'three']));
        expect(valueOf(store.get('k'))).toEqual(['three']);
        expect(store.stats()).toMatchObject({ liveKeys: 1, totalKeys: 1 });
        const reopened = fx.reopen === undefined ? store : await fx.reopen();
        expect(valueOf(reopened.get('k'))).toEqual(['three']);
        expect(reopened.scan(undefined, 10).map((e) => e.key)).toEqual(['k']);
      }));

    it('scans in UTF-8 byte order with pagination, over durable and staged keys', () =>
      withStore(async (fx) => {
        const store = fx.store();
        const expected = [...TRICKY_KEYS].sort(utf8Order);
        // Half durable, half staged, interleaved in key order.
        await Promise.all(TRICKY_KEYS.filter((_, i) => i % 2 === 0).map((k) => store.put(k, rec(['a', 1, k]))));
        const staged = TRICKY_KEYS.filter((_, i) => i % 2 === 1).map((k) => store.put(k, rec(['a', 2, k])));
        for (const pageSize of [1, 3, 7, 100]) {
          const seen: string[] = [];
          let after: string | undefined;
          for (let guard = 0; guard < 100; guard++) {
            const page = store.scan(after, pageSize);
            expect(page.length).toBeLessThanOrEqual(pageSize);
            if (page.length === 0) break;
            for (const e of page) expect(valueOf(e.record)).toEqual([e.key]);
            seen.push(...page.map((e) => e.key));
            after = page[page.length - 1]?.key;
          }
          expect(seen).toEqual(expected);
        }
        expect(store.scan(undefined, 0)).toEqual([]);
        // afterKey need not be stored: '\ufffe' sits between U+FFEF... and astral characters.
        expect(store.scan('\ufffe', 100).map((e) => e.key)).toEqual(expected.filter((k) => utf8Order(k, '\ufffe') > 0));
        await Promise.all(staged);
        if (fx.reopen !== undefined) {
          const reopened = await fx.reopen();
          expect(reopened.scan(undefined, 100).map((e) => e.key)).toEqual(expected);
          expect(reopened.scan('\u{1f600}', 2).map((e) => e.key)).toEqual(['\u{1f600}x', '\u{10ffff}']);
        }
      }));

    it('counts live keys and tombstones', () =>
      withStore(async (fx) => {
        const store = fx.store();
        await Promise.all([
          store.put('live', rec(['a', 1, 'v'])),
          store.put('tomb', rec(['a', 2, null])),
          store.put('mixed', rec(['a', 3, null], ['b', 1, 'v'])),
          store.put('allTombs', rec(['a', 4, null], ['b', 2, null])),
        ]);
        expect(store.stats()).toMatchObject({ liveKeys: 2, totalKeys: 4 });
        const deleting = store.put('live', rec(['a', 5, null]));
        expect(store.stats()).toMatchObject({ liveKeys: 1, totalKeys: 4 });
        await deleting;
        await store.put('tomb', rec(['a', 6, 'back']));
        await store.put('tomb', rec(['a', 7, 'again'])); // live -> live: no change
        expect(store.stats()).toMatchObject({ liveKeys: 2, totalKeys: 4 });
        if (fx.reopen !== undefined) expect((await fx.reopen()).stats()).toMatchObject({ liveKeys: 2, totalKeys: 4 });
      }));

    it('removes keys (purged tombstones), staged and durable, and scans past removals', () =>
      withStore(async (fx) => {
        const store = fx.store();
        await Promise.all(['a', 'b', 'c', 'd', 'e'].map((k, i) => store.put(k, rec(['x', i + 1, k === 'c' ? 'live' : null]))));
        const removing = [store.remove('a'), store.remove('b'), store.remove('zz')];
        expect(store.get('a')).toBeUndefined();
        expect(store.scan(undefined, 2).map((e) => e.key)).toEqual(['c', 'd']);
        expect(store.stats()).toMatchObject({ liveKeys: 1, totalKeys: 3 });
        await Promise.all(removing);
        await store.put('a', rec(['x', 9, 'again']));
        await store.remove('c');
        expect(store.scan(undefined, 10).map((e) => e.key)).toEqual(['a', 'd', 'e']);
        expect(store.stats()).toMatchObject({ liveKeys: 1, totalKeys: 3 });
        if (fx.reopen !== undefined) {
          const reopened = await fx.reopen();
          expect(reopened.scan(undefined, 10).map((e) => e.key)).toEqual(['a', 'd', 'e']);
          expect(reopened.get('b')).toBeUndefined();
          expect(reopened.stats()).toMatchObject({ liveKeys: 1, totalKeys: 3 });
        }
      }));

    it('deletes meta values and lists them by prefix, staged and durable', () =>
      withStore(async (fx) => {
        const store = fx.store();
        await Promise.all([store.setMeta('hint:a:1', '10'), store.setMeta('hint:a:2', '20'), store.setMeta('hint:b:1', '30'), store.setMeta('other', 'x')]);
        const deleting = store.deleteMeta('hint:a:1');
        expect(store.getMeta('hint:a:1')).toBeUndefined();
        expect(store.metaNames('hint:').sort()).toEqual(['hint:a:2', 'hint:b:1']);
        await deleting;
        await store.deleteMeta('absent');
        await store.setMeta('hint:a:1', '40'); // set again after a delete
        await store.deleteMeta('hint:b:1');
        expect(store.metaNames('hint:a:').sort()).toEqual(['hint:a:1', 'hint:a:2']);
        if (fx.reopen !== undefined) {
          const reopened = await fx.reopen();
          expect(reopened.metaNames('hint:').sort()).toEqual(['hint:a:1', 'hint:a:2']);
          expect(reopened.getMeta('hint:a:1')).toBe('40');
          expect(reopened.getMeta('other')).toBe('x');
        }
      }));

    it('stores meta values', () =>
      withStore(async (fx) => {
        const store = fx.store();
        await store.setMeta('membership', '{"epoch":1}');
        await store.setMeta('dotReserved', '10000');
        await store.setMeta('dotReserved', '20000');
        expect(store.getMeta('membership')).toBe('{"epoch":1}');
        expect(store.getMeta('dotReserved')).toBe('20000');
        await store.setMeta('empty', '');
        expect(store.getMeta('empty')).toBe('');
        if (fx.reopen !== undefined) {
          const reopened = await fx.reopen();
          expect(reopened.getMeta('dotReserved')).toBe('20000');
          expect(reopened.getMeta('empty')).toBe('');
        }
      }));

    it('flush resolves once everything staged is durable', () =>
      withStore(async (fx) => {
        const store = fx.store();
        let durable = false;
        const put = store.put('k', rec(['a', 1, 'v'])).then(() => (durable = true));
        await store.flush();
        await Promise.resolve(); // let the put's own continuation run
        expect(durable).toBe(true);
        await put;
        await store.flush();
      }));

    it('close flushes, is idempotent, and refuses use afterwards', () =>
      withStore(async (fx) => {
        const store = fx.store();
        const put = store.put('k', rec(['a', 1, 'v']));
        const meta = store.setMeta('m', 'x');
        const closing = store.close();
        await Promise.all([put, meta, closing, store.close()]);
        await expect(store.put('k2', rec(['a', 2, 'v']))).rejects.toBeInstanceOf(StoreClosedError);
        await expect(store.setMeta('m', 'y')).rejects.toBeInstanceOf(StoreClosedError);
        await expect(store.flush()).rejects.toBeInstanceOf(StoreClosedError);
        expect(() => store.get('k')).toThrow(StoreClosedError);
        expect(() => store.scan(undefined, 1)).toThrow(StoreClosedError);
        expect(() => store.stats()).toThrow(StoreClosedError);
        expect(() => store.getMeta('m')).toThrow(StoreClosedError);
        if (fx.reopen !== undefined) {
          const reopened = await fx.reopen();
          expect(valueOf(reopened.get('k'))).toEqual(['v']);
          expect(reopened.getMeta('m')).toBe('x');
        }
      }));

    it('resolves many concurrent writes (group commit) and keeps them all', () =>
      withStore(async (fx) => {
        const store = fx.store();
        const n = 3_000;
        const writes: Array<Promise<void>> = [];
        for (let i = 0; i < n; i++) {
          writes.push(store.put(`key-${i}`, rec(['w', i + 1, i % 3 === 0 ? null : `v${i}`])));
          if (i % 100 === 0) writes.push(store.setMeta('counter', String(i)));
        }
        await Promise.all(writes);
        const expectStats = { liveKeys: n - Math.ceil(n / 3), totalKeys: n };
        expect(store.stats()).toMatchObject(expectStats);
        const reopened = fx.reopen === undefined ? store : await fx.reopen();
        expect(reopened.stats()).toMatchObject(expectStats);
        for (let i = 0; i < n; i++) expect(valueOf(reopened.get(`key-${i}`))).toEqual([i % 3 === 0 ? null : `v${i}`]);
        expect(reopened.getMeta('counter')).toBe(String(n - 100));
      }));

    it('behaves like a Map under random operation sequences (model-based)', async () => {
      const keyArb = fc.string({ unit: fc.constantFrom('a', 'b', '\u0000', '\u00e9', '\ue000', '\uffff', '\u{1f600}', '\u{10000}'), maxLength: 3 });
      const opArb = fc.oneof(
        { arbitrary: fc.record({ op: fc.constant('put' as const), key: keyArb, record: recordArb }), weight: 5 },
        { arbitrary: fc.record({ op: fc.constant('get' as const), key: keyArb }), weight: 2 },
        { arbitrary: fc.record({ op: fc.constant('remove' as const), key: keyArb }), weight: 2 },
        { arbitrary: fc.record({ op: fc.constant('scan' as const), after: fc.option(keyArb, { nil: undefined }), limit: fc.nat(6) }), weight: 2 },
        { arbitrary: fc.record({ op: fc.constant('setMeta' as const), name: fc.constantFrom('x', 'y'), value: fc.string({ maxLength: 5 }) }), weight: 1 },
        { arbitrary: fc.record({ op: fc.constant('settle' as const) }), weight: 1 },
        { arbitrary: fc.record({ op: fc.constant('reopen' as const) }), weight: 1 },
      );
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), (ops) =>
          withStore(async (fx) => {
            const model = new Map<string, VersionedRecord>();
            const meta = new Map<string, string>();
            const pending: Array<Promise<void>> = [];
            let store = fx.store();
            for (const o of ops) {
              switch (o.op) {
                case 'put':
                  model.set(o.key, o.record);
                  pending.push(store.put(o.key, o.record));
                  break;
                case 'get':
                  expect(plain(store.get(o.key))).toEqual(plain(model.get(o.key)));
                  break;
                case 'remove':
                  model.delete(o.key);
                  pending.push(store.remove(o.key));
                  break;
                case 'scan': {
                  const keys = [...model.keys()].filter((k) => o.after === undefined || utf8Order(k, o.after) > 0).sort(utf8Order);
                  const want = keys.slice(0, o.limit).map((key) => ({ key, record: plain(model.get(key)) }));
                  expect(store.scan(o.after, o.limit).map((e) => ({ key: e.key, record: plain(e.record) }))).toEqual(want);
                  break;
                }
                case 'setMeta':
                  meta.set(o.name, o.value);
                  pending.push(store.setMeta(o.name, o.value));
                  break;
                case 'settle':
                  await Promise.all(pending.splice(0));
                  break;
                case 'reopen':
                  if (fx.reopen !== undefined) store = await fx.reopen();
                  break;
              }
              const live = [...model.values()].filter((r) => r.siblings.some((s) => s.value !== null)).length;
              expect(store.stats()).toMatchObject({ liveKeys: live, totalKeys: model.size });
              for (const [name, value] of meta) expect(store.getMeta(name)).toBe(value);
            }
            await Promise.all(pending);
          }),
        ),
        { numRuns: 60 },
      );
    });
  });
}

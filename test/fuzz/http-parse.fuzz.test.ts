// Fuzz target for what the HTTP API parses from a client: request targets (raw paths and query strings), keys,
// write/read/list parameters, JSON Content-Types and causal-context tokens (also well-signed ones with any body).
// Every parser either returns or throws its typed 4xx error (HttpError 4xx, InvalidContextError,
// InvalidConsistencyError), never anything else; keys and tokens round-trip.
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidConsistencyError, InvalidContextError } from '../../src/core/errors.js';
import type { VersionedRecord } from '../../src/core/record.js';
import { listKeys } from '../../src/http/browse.js';
import { HttpError } from '../../src/http/errors.js';
import { checkJsonContentType, checkKey, noQuery, parseContextHeader, parseKey, parseQuery, parseTarget, parseWrite, readQuery } from '../../src/http/parse.js';
import { createContextCodec } from '../../src/node/context-token.js';
import { fuzzRuns, fuzzTimeoutMs } from './runs.js';

const KEY_BYTES_MAX = 1024;
const CLUSTER_KEY = new Uint8Array(32).fill(7);
const contexts = createContextCodec(CLUSTER_KEY);

/** Runs `parse`; true if it returned, false if it refused with a typed 4xx error; anything else fails the run. */
function refusedTyped(parse: () => unknown): boolean {
  try {
    parse();
    return true;
  } catch (error) {
    if (error instanceof HttpError && error.status >= 400 && error.status < 500 && error.code !== '' && error.message !== '') return false;
    if (error instanceof InvalidContextError || error instanceof InvalidConsistencyError) return false;
    throw error;
  }
}

/** Pieces that matter to a URL or query parser, mixed with arbitrary text. */
const PIECES = [
  '/', '/', '.', '..', '%2e', '%2E', '.%2e', '%', '%2', '%2F', '%2f', '%5C', '%00', '%ZZ', '%C0%AF', '%E0%A4', '%F0%9F%98%80', '%ED%A0%80',
  '?', '#', '&', '=', '+', ' ', '\\', 'a', 'kv', 'kv/', 'é', '\u0000', '\u007f', '\u0085', '\ud800', '😀', 'w', 'r', 'wait', 'timeoutMs',
  'resolve', 'explain', 'prefix', 'limit', 'cursor', '__proto__', 'constructor', 'toString', 'one', 'quorum', 'all', '0', '1', '3', '60000',
  '60001', '1e3', '9999999999999999', '-1', 'lww', 'true',
];
const piece = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...PIECES) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) });
const text = fc.oneof(
  fc.array(piece, { maxLength: 24 }).map((parts) => parts.join('')),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 80 }),
);
const target = fc.oneof(text.map((t) => `/${t}`), text.map((t) => `/kv/${t}`), text);

/** A query string of name=value pairs drawn from the API's parameters and their values. */
const NAMES = ['w', 'r', 'wait', 'timeoutMs', 'resolve', 'explain', 'prefix', 'limit', 'cursor', '__proto__', 'constructor', 'x', ''];
const VALUES = ['', 'one', 'quorum', 'all', '0', '1', '2', '3', '9999', '10000', '60000', '60001', '65000', '1e3', '01', '-1', ' 1', 'lww', 'true', 'YQ', 'AA', '%01'];
const pair = fc.tuple(fc.oneof(fc.constantFrom(...NAMES), text), fc.oneof(fc.constantFrom(...VALUES), text), fc.boolean()).map(([n, v, bare]) => (bare ? n : `${n}=${v}`));
const queryString = fc.array(pair, { maxLength: 5 }).map((pairs) => pairs.join('&'));

/** A sorted in-memory replica for listings. */
const RECORD: VersionedRecord = { siblings: [{ value: new Uint8Array([1]), dot: { actor: 'a', counter: 1 }, hlc: { wallMs: 1, logical: 0 } }], context: { a: 1 } } as unknown as VersionedRecord;
const KEYS = ['a', 'a/b', 'a/c', 'b', 'é', '😀', 'z'.repeat(40)];
const records = {
  get: (key: string) => (KEYS.includes(key) ? RECORD : undefined),
  scan: (after: string | undefined, limit: number) =>
    KEYS.filter((k) => after === undefined || k > after)
      .sort()
      .slice(0, limit)
      .map((key) => ({ key, record: RECORD })),
};

/** Signs `body` as the codec does, so bodies a key holder could produce reach the token's body parser. */
function signed(body: string): string {
  const key = createHash('sha256').update('quorumd/context-token/1').update(CLUSTER_KEY).digest();
  const tag = createHmac('sha256', key).update(body).digest().subarray(0, 16);
  return `${body}.${tag.toString('base64url')}`;
}

const options = { numRuns: fuzzRuns(2000) };

describe('HTTP parsing (fuzz)', () => {
  it('found: a token naming the actor "__proto__" decoded to a vector without it; now refused', () => {
    expect(() => contexts.decode('k', contexts.encode('k', JSON.parse('{"__proto__": 1}') as Record<string, number>))).toThrow(/bad actor/);
  });

  it('request targets: parsed or refused 400; no dot segment ever gets through', { timeout: fuzzTimeoutMs() }, () => {
    fc.assert(
      fc.property(target, (t) => {
        let path: string | undefined;
        const ok = refusedTyped(() => {
          path = parseTarget(t).path;
        });
        if (!ok) return;
        expect(path?.startsWith('/')).toBe(true);
        expect(path?.includes('?')).toBe(false);
        for (const segment of (path as string).split('/')) expect(/^(?:\.|%2e){1,2}$/i.test(segment)).toBe(false);
        // What the /kv/ route does with it next.
        if (path?.startsWith('/kv/')) refusedTyped(() => parseKey(path?.slice(4) ?? '', KEY_BYTES_MAX));
      }),
      options,
    );
  });

  it('keys: every key a client percent-encodes comes back as itself, or is refused with invalid_key', { timeout: fuzzTimeoutMs() }, () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), fc.array(piece, { minLength: 1, maxLength: 12 }).map((p) => p.join(''))), (key) => {
        let encoded: string;
        try {
          encoded = encodeURIComponent(key);
        } catch {
          return; // a lone surrogate: no client can send it
        }
        const bytes = Buffer.byteLength(key, 'utf8');
        const valid = bytes >= 1 && bytes <= KEY_BYTES_MAX && refusedTyped(() => checkKey(key));
        if (key === '.' || key === '..') {
          expect(refusedTyped(() => parseTarget(`/kv/${encoded}`))).toBe(false);
          return;
        }
        const { path } = parseTarget(`/kv/${encoded}?w=one`);
        if (valid) expect(parseKey(path.slice(4), KEY_BYTES_MAX)).toBe(key);
        else expect(refusedTyped(() => parseKey(path.slice(4), KEY_BYTES_MAX))).toBe(false);
      }),
      options,
    );
  });

  it('write, read and list parameters: parsed or refused 400; timeoutMs only with wait and at most 60 s', { timeout: fuzzTimeoutMs() }, () => {
    fc.assert(
      fc.property(queryString, (q) => {
        const query = new URLSearchParams(q);
        let write: ReturnType<typeof parseWrite> | undefined;
        if (refusedTyped(() => (write = parseWrite(query)))) {
          const timeoutMs = query.get('timeoutMs');
          if (timeoutMs !== null) {
            expect(write?.wait?.timeoutMs).toBe(Number(timeoutMs));
            expect(Number(timeoutMs)).toBeGreaterThanOrEqual(1);
            expect(Number(timeoutMs)).toBeLessThanOrEqual(60_000);
          }
          for (const name of query.keys()) expect(['w', 'wait', 'timeoutMs']).toContain(name);
        }
        refusedTyped(() => parseQuery(readQuery, query));
        refusedTyped(() => parseQuery(noQuery, query));
        refusedTyped(() => listKeys({ records, keyBytesMax: KEY_BYTES_MAX, checkKey, parseQuery }, query));
      }),
      options,
    );
  });

  it('Content-Type of JSON bodies: application/json (any parameters) or 415', { timeout: fuzzTimeoutMs() }, () => {
    const type = fc.oneof(
      fc.constantFrom('application/json', 'Application/JSON', 'application/json; charset=utf-8', 'application/json;', 'text/plain', 'application/jsonx', 'application/json\n', ''),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.tuple(fc.constantFrom('application/json', 'text/plain'), fc.string({ maxLength: 20 })).map(([a, b]) => a + b),
    );
    fc.assert(
      fc.property(type, fc.boolean(), (contentType, required) => {
        const accepted = refusedTyped(() => checkJsonContentType(contentType, required));
        if (accepted) expect(contentType.trim().toLowerCase().startsWith('application/json')).toBe(true);
      }),
      options,
    );
  });

  it('context tokens: any header, and any body signed with the cluster key, decodes or is refused invalid_context; tokens round-trip', { timeout: fuzzTimeoutMs() }, () => {
    const actor = fc.oneof(fc.constantFrom('a', 'b', 'peer~1', ''), fc.string({ maxLength: 8 }));
    const counter = fc.oneof(fc.nat(), fc.constantFrom(-1, 0, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER), fc.double());
    const entries = fc.array(fc.oneof(fc.tuple(actor, counter), fc.jsonValue()), { maxLength: 6 });
    const bodyJson = fc.oneof(
      fc.record({ k: fc.oneof(fc.string({ maxLength: 30 }), fc.jsonValue()), c: fc.oneof(entries, fc.jsonValue()), u: fc.option(fc.oneof(entries, fc.jsonValue())) }),
      fc.jsonValue(),
    );
    const token = fc.oneof(
      text,
      bodyJson.map((b) => signed(Buffer.from(JSON.stringify(b) ?? 'null').toString('base64url'))),
      fc.string({ unit: 'binary', maxLength: 60 }).map((b) => signed(Buffer.from(b).toString('base64url'))),
      fc.array(fc.constantFrom('a', '.', '-', '_', 'A', '0'), { maxLength: 60 }).map((c) => c.join('')),
    );
    const header = fc.oneof(token, fc.array(token, { maxLength: 2 }), fc.constant(undefined));
    fc.assert(
      fc.property(header, fc.constantFrom('k', 'other', 'é'), (h, key) => {
        refusedTyped(() => parseContextHeader(contexts, h, key));
      }),
      options,
    );
    const vv = fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 2 ** 40 }), { maxKeys: 5 });
    fc.assert(
      fc.property(vv, fc.string({ minLength: 1, maxLength: 20 }), (v, key) => {
        const encoded = contexts.encode(key, v);
        if (Object.hasOwn(v, '__proto__')) {
          expect(refusedTyped(() => parseContextHeader(contexts, encoded, key))).toBe(false); // no actor is named so
          return;
        }
        expect(parseContextHeader(contexts, ` ${encoded} `, key)?.vv).toEqual(v);
        expect(refusedTyped(() => parseContextHeader(contexts, encoded, `${key}x`))).toBe(false);
      }),
      { numRuns: Math.max(1, Math.floor(options.numRuns / 10)) },
    );
  });
});

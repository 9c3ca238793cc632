// The HTTP API of a single founding device: happy paths, siblings and contexts, and every kind of bad input
// (bad keys, oversized values, bad levels, unknown parameters, wrong methods, unknown routes).
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContextCodec } from '../../src/node/context-token.js';
import { Daemon } from '../../src/app/daemon.js';
import { call, del, get, openWatch, put } from '../helpers/http.js';

let daemon: Daemon;
const JSON_TYPE = { 'Content-Type': 'application/json' };
let base = '';
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quorumd-http-'));
  daemon = await Daemon.start({
    dataDir: dir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    http: '127.0.0.1:0',
    join: [],
    clusterKeyFile: undefined,
    mdns: false,
    logLevel: 'silent',
  });
  base = daemon.httpEndpoint;
});

afterAll(async () => {
  await daemon?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Sends a raw request line (fetch would normalise a bad path before sending it). */
function rawRequest(method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP API', () => {
  it('puts, gets, overwrites and deletes a key', async () => {
    const created = await put(base, 'a/b c', 'one');
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ acks: 1, required: 1 });
    expect(typeof created.json?.context).toBe('string');
    const read = await get(base, 'a/b c');
    expect(read.status).toBe(200);
    expect(read.text).toBe('one');
    expect(read.context).toBeTruthy();
    const updated = await call(base, 'PUT', `/kv/${encodeURIComponent('a/b c')}`, 'two', { 'X-Causal-Context': read.context as string });
    expect(updated.status).toBe(200);
    expect((await get(base, 'a/b c')).text).toBe('two');
    const deleted = await del(base, 'a/b c');
    expect(deleted.status).toBe(200);
    const gone = await get(base, 'a/b c');
    expect(gone.status).toBe(404);
    expect(gone.json).toMatchObject({ error: 'not_found' });
    expect(gone.context).toBeTruthy(); // the tombstone's context, so a later write can supersede it
  });

  it('keeps concurrent writes as siblings (300) until a write with their context resolves them', async () => {
    const first = await put(base, 'conflict', 'x');
    const token = first.json?.context as string;
    // Two writers that both read the first version write concurrently: both supersede it, neither the other.
    await call(base, 'PUT', '/kv/conflict', 'left', { 'X-Causal-Context': token });
    await call(base, 'PUT', '/kv/conflict', 'right', { 'X-Causal-Context': token });
    const siblings = await get(base, 'conflict');
    expect(siblings.status).toBe(300);
    const body = siblings.json as { context: string; siblings: Array<{ value: string; writer: string; deleted: boolean }> };
    expect(body.siblings.map((s) => Buffer.from(s.value, 'base64').toString()).sort()).toEqual(['left', 'right']);
    expect(body.siblings[0]?.writer).toBe(daemon.peerId);
    const lww = await get(base, 'conflict', '?resolve=lww');
    expect(lww.status).toBe(200);
    expect(lww.text).toBe('right');
    const resolved = await call(base, 'PUT', '/kv/conflict', 'merged', { 'X-Causal-Context': body.context });
    expect(resolved.status).toBe(200);
    const after = await get(base, 'conflict');
    expect(after.status).toBe(200);
    expect(after.text).toBe('merged');
  });

  it("hands back after a write a context that covers only what it superseded: writing again with it keeps another client's concurrent version", async () => {
    const original = await put(base, 'race', 'base');
    const seen = original.json?.context as string;
    // Both clients saw `base`; client 2 writes, then client 1 (concurrent with client 2: two siblings).
    expect((await call(base, 'PUT', '/kv/race', 'from-2', { 'X-Causal-Context': seen })).status).toBe(200);
    const first = await call(base, 'PUT', '/kv/race', 'from-1', { 'X-Causal-Context': seen });
    expect(first.status).toBe(200);
    expect(first.context).toBe(first.json?.context);
    // Client 1 writes again with the token its write returned: it replaces its own version only.
    const second = await call(base, 'PUT', '/kv/race', 'from-1-again', { 'X-Causal-Context': first.json?.context as string });
    expect(second.status).toBe(200);
    const values = async (): Promise<string[]> => {
      const res = await get(base, 'race');
      expect(res.status).toBe(300);
      return (res.json as { siblings: Array<{ value: string }> }).siblings.map((s) => Buffer.from(s.value, 'base64').toString()).sort();
    };
    expect(await values()).toEqual(['from-1-again', 'from-2']);
    const deleted = await call(base, 'DELETE', '/kv/race', undefined, { 'X-Causal-Context': second.json?.context as string });
    expect(deleted.status).toBe(200);
    const afterDelete = await get(base, 'race');
    expect(afterDelete.status).toBe(300);
    expect((afterDelete.json as { siblings: Array<{ deleted: boolean }> }).siblings.map((s) => s.deleted).sort()).toEqual([false, true]);
    // A client that read both versions resolves them.
    const resolved = await call(base, 'PUT', '/kv/race', 'merged', { 'X-Causal-Context': afterDelete.json?.context as string });
    expect(resolved.status).toBe(200);
    expect((await get(base, 'race')).text).toBe('merged');
  });

  it('binds a context token to its key: a token of another key gets 400 and leaves that key untouched', async () => {
    const wroteA = await put(base, 'bound/a', 'a1');
    expect((await put(base, 'bound/b', 'b1')).status).toBe(201);
    const readA = await get(base, 'bound/a');
    for (const token of [readA.context as string, wroteA.json?.context as string]) {
      for (const method of ['PUT', 'DELETE']) {
        const res = await call(base, method, `/kv/${encodeURIComponent('bound/b')}`, method === 'PUT' ? 'b2' : undefined, { 'X-Causal-Context': token });
        expect(res.status, method).toBe(400);
        expect(res.json).toMatchObject({ error: 'invalid_context' });
        expect(res.json?.message).toContain('another key');
      }
    }
    const b = await get(base, 'bound/b');
    expect(b.status).toBe(200);
    expect(b.text).toBe('b1');
    // On its own key the token works.
    expect((await call(base, 'PUT', `/kv/${encodeURIComponent('bound/a')}`, 'a2', { 'X-Causal-Context': readA.context as string })).status).toBe(200);
    expect((await get(base, 'bound/a')).text).toBe('a2');
  });

  it('stores binary values byte for byte, including the empty value', async () => {
    const bytes = new Uint8Array([0, 255, 1, 254, 10, 13]);
    expect((await call(base, 'PUT', '/kv/bin', bytes)).status).toBe(201);
    const res = await fetch(`${base}/kv/bin`);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
    expect((await put(base, 'empty', '')).status).toBe(201);
    const empty = await get(base, 'empty');
    expect(empty.status).toBe(200);
    expect(empty.text).toBe('');
  });

  it('rejects bad keys with 400', async () => {
    expect((await rawRequest('GET', '/kv/%FF%FE')).status).toBe(400); // not UTF-8
    expect((await rawRequest('GET', '/kv/%ED%A0%80')).status).toBe(400); // a lone surrogate
    expect((await rawRequest('GET', '/kv/a%00b')).status).toBe(400); // control character
    expect((await rawRequest('GET', '/kv/a%0Ab')).status).toBe(400);
    expect((await rawRequest('GET', '/kv/%zz')).status).toBe(400); // bad percent-encoding
    expect((await rawRequest('GET', '/kv/')).status).toBe(400); // empty
    const long = await get(base, 'k'.repeat(1025));
    expect(long.status).toBe(400);
    expect(long.json).toMatchObject({ error: 'invalid_key' });
    expect((await put(base, 'é'.repeat(512), 'ok')).status).toBe(201); // exactly 1024 bytes
  });

  it('rejects values over 1 MiB with 413 and accepts exactly 1 MiB', async () => {
    const tooBig = await call(base, 'PUT', '/kv/big', new Uint8Array(1024 * 1024 + 1));
    expect(tooBig.status).toBe(413);
    expect(tooBig.json).toMatchObject({ error: 'value_too_large' });
    expect((await call(base, 'PUT', '/kv/big', new Uint8Array(1024 * 1024))).status).toBe(201);
  });

  it('rejects bad consistency levels, contexts and parameters with 400', async () => {
    for (const query of ['?w=2', '?w=0', '?w=-1', '?w=most', '?w=1.5', '?w=']) {
      const res = await put(base, 'k', 'v', query);
      expect(res.status, query).toBe(query === '?w=' ? 201 : 400);
    }
    const impossible = await put(base, 'k', 'v', '?w=2');
    expect(impossible.json?.message).toContain('impossible');
    expect((await get(base, 'k', '?r=all')).status).toBe(200);
    expect((await get(base, 'k', '?r=3')).status).toBe(400);
    expect((await get(base, 'k', '?resolve=newest')).status).toBe(400);
    expect((await get(base, 'k', '?colour=red')).status).toBe(400);
    expect((await get(base, 'k', '?r=one&r=all')).status).toBe(400);
    for (const token of ['!!', 'bm90IGpzb24', 'W1sieCIsLTFdXQ']) {
      const res = await call(base, 'PUT', '/kv/k', 'v', { 'X-Causal-Context': token });
      expect(res.status, token).toBe(400);
      expect(res.json).toMatchObject({ error: 'invalid_context' });
    }
  });

  it('refuses forged or altered context tokens (they could cover writes that do not exist yet)', async () => {
    const foreign = createContextCodec(new TextEncoder().encode('another cluster key'));
    const forged = foreign.encode('forged', { [daemon.peerId]: Number.MAX_SAFE_INTEGER });
    const res = await call(base, 'PUT', '/kv/forged', 'a', { 'X-Causal-Context': forged });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ error: 'invalid_context' });
    const genuine = (await put(base, 'forged', 'a')).context as string;
    const [body, mac] = genuine.split('.') as [string, string];
    const altered = `${Buffer.from(JSON.stringify([[daemon.peerId, 1e15]])).toString('base64url')}.${mac}`;
    expect((await call(base, 'PUT', '/kv/forged', 'b', { 'X-Causal-Context': altered })).status).toBe(400);
    expect((await call(base, 'PUT', '/kv/forged', 'b', { 'X-Causal-Context': `${body}.${mac}` })).status).toBe(200);
    expect((await put(base, 'forged', 'c')).status).toBe(200);
    expect((await get(base, 'forged')).text).toBe('c');
  });

  it('answers malformed request targets with 400', async () => {
    expect((await rawRequest('GET', '//')).status).toBe(400);
    expect((await rawRequest('GET', '//[')).status).toBe(400);
    expect((await rawRequest('GET', '//evil/kv/x')).status).toBe(400);
  });

  it('answers unknown routes with 404 and wrong methods with 405', async () => {
    expect((await call(base, 'GET', '/nope')).status).toBe(404);
    const wrong = await call(base, 'POST', '/kv/k', 'v');
    expect(wrong.status).toBe(405);
    expect(wrong.json).toMatchObject({ error: 'method_not_allowed' });
    expect((await call(base, 'DELETE', '/status')).status).toBe(405);
  });

  it('serves /status and /healthz', async () => {
    const health = await call(base, 'GET', '/healthz');
    expect(health.status).toBe(200);
    const status = await call(base, 'GET', '/status');
    expect(status.json).toMatchObject({
      peerId: daemon.peerId,
      epoch: 1,
      role: 'voter',
      quorum: { voters: 1, reachable: 1, needed: 1, writable: true },
    });
    expect(typeof status.json?.clusterId).toBe('string');
    expect(typeof status.json?.version).toBe('string');
    expect(status.json?.keys).toBeGreaterThan(0);
  });

  it('lists live keys by prefix, a page at a time, with an opaque cursor', async () => {
    for (const k of ['list/a', 'list/b', 'list/c', 'list/d', 'list/e', 'list', 'lisz', 'list/é']) expect((await put(base, k, 'v')).status).toBe(201);
    expect((await del(base, 'list/c')).status).toBe(200);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await call(base, 'GET', `/kv?prefix=list%2F&limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
      expect(page.status).toBe(200);
      const body = page.json as { keys: Array<{ key: string; siblings: number }>; cursor: string | null };
      expect(body.keys.length).toBeLessThanOrEqual(2);
      seen.push(...body.keys.map((k) => k.key));
      cursor = body.cursor;
      pages += 1;
    } while (cursor !== null && pages < 10);
    expect(seen).toEqual(['list/a', 'list/b', 'list/d', 'list/e', 'list/é']); // list/c was deleted
    const exact = (await call(base, 'GET', '/kv?prefix=list')).json as { keys: Array<{ key: string }> };
    expect(exact.keys.map((k) => k.key)).toEqual(['list', 'list/a', 'list/b', 'list/d', 'list/e', 'list/é']);
    const all = (await call(base, 'GET', '/kv?limit=1000')).json as { keys: unknown[]; cursor: string | null };
    expect(all.keys.length).toBeGreaterThan(6);
    expect(all.cursor).toBeNull();
  });

  it('rejects bad listing parameters with 400', async () => {
    for (const [query, error] of [
      ['?limit=0', 'bad_request'],
      ['?limit=1001', 'bad_request'],
      ['?limit=ten', 'bad_request'],
      ['?cursor=%%%', 'invalid_cursor'],
      ['?cursor=not+base64', 'invalid_cursor'],
      [`?prefix=a&cursor=${Buffer.from('b').toString('base64url')}`, 'invalid_cursor'],
      [`?cursor=${Buffer.from([0xff, 0xfe]).toString('base64url')}`, 'invalid_cursor'],
      ['?prefix=%01', 'invalid_prefix'],
      [`?prefix=${'x'.repeat(1025)}`, 'invalid_prefix'],
      ['?sort=desc', 'bad_request'],
      ['?prefix=a&prefix=b', 'bad_request'],
    ] as const) {
      const res = await call(base, 'GET', `/kv${query}`);
      expect(res.status, query).toBe(400);
      expect(res.json, query).toMatchObject({ error });
    }
    expect((await call(base, 'POST', '/kv')).status).toBe(405);
  });

  it('/watch streams changes, resumes from Last-Event-ID, and says reset when it cannot', async () => {
    const watcher = await openWatch(base, '?prefix=watch%2F');
    expect(watcher.status).toBe(200);
    try {
      await put(base, 'other/x', 'v'); // outside the prefix: not sent
      await put(base, 'watch/1', 'v');
      await del(base, 'watch/1');
      const first = await watcher.next();
      expect(first.event).toBe('change');
      expect(JSON.parse(first.data)).toMatchObject({ key: 'watch/1', kind: 'put', siblings: 1 });
      const second = await watcher.next();
      expect(JSON.parse(second.data)).toMatchObject({ key: 'watch/1', kind: 'delete' });
      watcher.close();
      // Missed while disconnected, then delivered on reconnect after the last id seen.
      await put(base, 'watch/2', 'v');
      const resumed = await openWatch(base, '?prefix=watch%2F', { 'Last-Event-ID': second.id as string });
      try {
        expect(JSON.parse((await resumed.next()).data)).toMatchObject({ key: 'watch/2', kind: 'put' });
      } finally {
        resumed.close();
      }
      const stale = await openWatch(base, '?prefix=watch%2F', { 'Last-Event-ID': '00000000-5' });
      try {
        expect((await stale.next()).event).toBe('reset');
      } finally {
        stale.close();
      }
    } finally {
      watcher.close();
    }
    expect((await call(base, 'GET', '/watch?prefix=%01')).status).toBe(400);
    expect((await call(base, 'GET', '/watch?since=1')).status).toBe(400);
    expect((await call(base, 'GET', '/healthz')).status).toBe(200);
  });

  it('explains who holds a key (durability receipt) and validates wait parameters', async () => {
    expect((await put(base, 'receipt/1', 'v', '?w=one&wait=all&timeoutMs=500')).status).toBe(201);
    const receipt = await call(base, 'GET', '/kv/receipt%2F1?explain=1');
    expect(receipt.status).toBe(200);
    expect(receipt.json).toMatchObject({ key: 'receipt/1', deleted: false, siblings: 1, votersHolding: 1, quorum: 1, atQuorum: true, everywhere: true });
    expect(receipt.json?.replicas).toEqual([{ peer: daemon.peerId, role: 'voter', state: 'replied', holdsCurrent: true }]);
    expect((await call(base, 'GET', '/kv/receipt%2Fnone?explain=1')).status).toBe(404);
    for (const query of ['?explain=2', '?explain=1&r=one']) expect((await call(base, 'GET', `/kv/receipt%2F1${query}`)).status).toBe(400);
    for (const query of ['?wait=bogus', '?timeoutMs=100', '?wait=one&timeoutMs=0', '?wait=one&timeoutMs=60001', '?wait=one&timeoutMs=99999', '?wait=one&timeoutMs=600000', '?wait=one&timeoutMs=1e3']) {
      const res = await call(base, 'PUT', `/kv/receipt%2F1${query}`, 'v');
      expect(res.status, query).toBe(400);
      expect(res.json, query).toHaveProperty('error');
    }
  });

  it('keeps an audit log of starts, operator actions and refused requests', async () => {
    const stranger = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo';
    expect((await call(base, 'POST', '/cluster/remove', JSON.stringify({ peer: stranger }), JSON_TYPE)).status).toBe(409);
    expect((await rawRequest('GET', '/status', { Host: 'rebind.example' })).status).toBe(403);
    const res = await call(base, 'GET', '/audit?limit=1000');
    expect(res.status).toBe(200);
    const entries = (res.json as { entries: Array<Record<string, unknown>> }).entries;
    expect(entries).toContainEqual(expect.objectContaining({ kind: 'started', peerId: daemon.peerId, epoch: 1, voters: [daemon.peerId] }));
    expect(entries).toContainEqual(expect.objectContaining({ kind: 'operator', action: 'remove', peer: stranger, outcome: 'refused' }));
    expect(entries).toContainEqual(expect.objectContaining({ kind: 'unauthorized', status: 403, code: 'forbidden_host', host: 'rebind.example' }));
    for (const e of entries) expect(Date.parse(e.at as string)).not.toBeNaN();
    const only = (await call(base, 'GET', '/audit?kind=operator')).json as { entries: Array<{ kind: string }> };
    expect(only.entries.every((e) => e.kind === 'operator')).toBe(true);
    for (const query of ['?limit=0', '?limit=5000', '?kind=everything', '?since=1']) expect((await call(base, 'GET', `/audit${query}`)).status).toBe(400);
  });

  it('answers /readyz for a member with a reachable quorum', async () => {
    const ready = await call(base, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toEqual({ ready: true });
    expect((await call(base, 'GET', '/readyz?verbose=1')).status).toBe(400);
  });

  it('serves /metrics as Prometheus text whose counters move with the traffic', async () => {
    const scrape = async (): Promise<Map<string, number>> => {
      const res = await fetch(`${base}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return parsePrometheus(await res.text());
    };
    const before = await scrape();
    const requests = 'quorumd_requests_total{operation="put",consistency="quorum",outcome="ok"}';
    for (let i = 0; i < 3; i++) expect((await put(base, `metrics/${i}`, 'v', '?w=quorum')).status).toBe(201);
    expect((await get(base, 'metrics/absent')).status).toBe(404);
    expect((await put(base, 'metrics/x', 'v', '?w=bogus')).status).toBe(400);
    const after = await scrape();
    expect((after.get(requests) ?? 0) - (before.get(requests) ?? 0)).toBe(3);
    expect(after.get('quorumd_requests_total{operation="get",consistency="default",outcome="not_found"}')).toBeGreaterThanOrEqual(1);
    expect(after.get('quorumd_requests_total{operation="put",consistency="invalid",outcome="rejected"}')).toBeGreaterThanOrEqual(1);
    expect(after.get('quorumd_write_acks_count{operation="put"}')).toBeGreaterThanOrEqual(3);
    expect(after.get('quorumd_request_duration_seconds_count{operation="put",consistency="quorum"}')).toBeGreaterThanOrEqual(3);
    expect(after.get('quorumd_store_keys')).toBeGreaterThan(before.get('quorumd_store_keys') ?? 0);
    expect(after.get('quorumd_epoch')).toBe(1);
    expect(after.get('quorumd_quorum_writable')).toBe(1);
    expect(after.get('quorumd_members{role="voter",state="alive"}')).toBe(1);
    expect(after.get('quorumd_store_bytes')).toBeGreaterThan(0);
    expect(after.has('quorumd_process_resident_memory_bytes')).toBe(true);
    expect(after.has('quorumd_anti_entropy_rounds_total')).toBe(true);
    expect(after.has('quorumd_hints_queued')).toBe(true);
  });

  it('refuses bad membership operations with clear 4xx errors and changes nothing', async () => {
    const stranger = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo';
    expect((await call(base, 'GET', '/cluster/remove')).status).toBe(405);
    const notJson = await call(base, 'POST', '/cluster/remove', 'peer=x', JSON_TYPE);
    expect(notJson.status).toBe(400);
    expect(notJson.json).toMatchObject({ error: 'bad_request' });
    expect((await call(base, 'POST', '/cluster/remove', JSON.stringify({ peer: 'not a peer id' }), JSON_TYPE)).status).toBe(400);
    expect((await call(base, 'POST', '/cluster/remove', JSON.stringify({ peer: stranger, extra: 1 }), JSON_TYPE)).status).toBe(400);
    expect((await call(base, 'POST', '/cluster/remove?force=1', JSON.stringify({ peer: stranger }), JSON_TYPE)).status).toBe(400);
    const notMember = await call(base, 'POST', '/cluster/remove', JSON.stringify({ peer: stranger }), JSON_TYPE);
    expect(notMember.status).toBe(409);
    expect(notMember.json).toMatchObject({ error: 'membership_change_failed' });
    const lastVoter = await call(base, 'POST', '/cluster/remove', JSON.stringify({ peer: daemon.peerId }), JSON_TYPE);
    expect(lastVoter.status).toBe(409);
    expect(lastVoter.json?.message).toMatch(/last voter/);
    // Approving a device that never asked would add a voter that never shows up: refused.
    const unknown = await call(base, 'POST', '/cluster/approve', JSON.stringify({ peer: stranger }), JSON_TYPE);
    expect(unknown.status).toBe(409);
    expect((await call(base, 'POST', '/cluster/leave', 'x'.repeat(5000), JSON_TYPE)).status).toBe(413);
    const status = await call(base, 'GET', '/status');
    expect(status.json).toMatchObject({ epoch: 1, role: 'voter', pending: [], removed: [] });
  });
});

/**
 * Parses Prometheus text exposition format 0.0.4 strictly: every line is a HELP or TYPE comment or a sample
 * `name{label="value",...} number` or empty; a TYPE comes before its samples. Returns sample -> value.
 */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue; // empty lines are allowed (and ignored)
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (comment !== null) {
      if (comment[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(comment[3]);
        typed.add(comment[2] as string);
      }
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-]?[Ii]nf)$/.exec(line); // floats as Go parses them (NaN in any case)
    expect(sample, `not a Prometheus sample line: ${line}`).not.toBeNull();
    const name = sample?.[1] as string;
    const family = name.replace(/_(bucket|sum|count|total)$/, '');
    expect(typed.has(name) || typed.has(family), `${name} has no TYPE before it`).toBe(true);
    samples.set(`${name}${(sample?.[2] ?? '').replace(/,\}$/, '}')}`, Number(sample?.[3]));
  }
  return samples;
}

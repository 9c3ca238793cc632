// The API's routes against a fake backend (no daemon): the route table's own answers (404, 405 with Allow, query
// and body checks, Content-Type), access (token, Host, cross-site refusal), each resource's handlers, and every
// QuorumdError code answered with its STATUS_BY_CODE status as JSON {error, message}.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ErrorCode, QuorumUnavailableError, QuorumdError } from '../../src/core/errors.js';
import { STATUS_BY_CODE } from '../../src/http/errors.js';
import { type Route, RouteTable } from '../../src/http/router.js';
import { rawRequest } from '../helpers/http-raw.js';
import { type FakeApi, TOKEN, recordOf, startFakeApi } from './fake-backend.js';

const PEER = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN';
const JSON_TYPE = { 'Content-Type': 'application/json' };

let api: FakeApi;

beforeAll(async () => {
  api = await startFakeApi();
});

afterAll(async () => {
  await api.close();
});

afterEach(() => {
  api.node.calls.length = 0;
  api.node.refused.length = 0;
  api.node.records.clear();
  api.node.failNext = undefined;
  api.node.complete = true;
  api.node.notReady = [];
});

describe('route table', () => {
  it('answers an unknown path 404 with JSON {error, message}', async () => {
    const res = await rawRequest(api.base, 'GET', '/nope');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.json).toEqual({ error: 'not_found', message: 'no route for /nope' });
  });

  it('answers a method a path does not take 405 with Allow listing the ones it does', async () => {
    const cases: Array<[string, string, string]> = [
      ['PATCH', '/kv/a', 'GET, HEAD, PUT, DELETE'],
      ['POST', '/watch', 'GET'],
      ['GET', '/cluster/leave', 'POST'],
      ['DELETE', '/status', 'GET, HEAD'],
      ['PUT', '/', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await rawRequest(api.base, method, path);
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.allow).toBe(allow);
      expect(res.json).toEqual({ error: 'method_not_allowed', message: `${method} is not allowed here; use ${allow}` });
    }
    expect(api.node.calls).toEqual([]);
  });

  it('refuses query parameters on routes that take none, before the handler runs', async () => {
    for (const path of ['/status?x=1', '/healthz?verbose', '/metrics?a=b', '/?x']) {
      const res = await rawRequest(api.base, 'GET', path);
      expect(res.status, path).toBe(400);
      expect(res.json?.error).toBe('bad_request');
    }
    expect(api.node.calls).toEqual([]);
  });

  it('refuses a path with a dot segment before routing', async () => {
    const res = await rawRequest(api.base, 'GET', '/kv/a/../b');
    expect(res.status).toBe(400);
    expect(res.json?.error).toBe('bad_request');
  });

  it('matches exact paths before prefixes and refuses a table that is ambiguous', () => {
    const handle = (): void => undefined;
    const table = new RouteTable([
      { methods: ['GET'], path: '/kv', query: 'none', handle },
      { methods: ['GET'], path: '/kv/*', query: 'handler', handle },
    ]);
    expect(table.match('/kv')?.rest).toBe('');
    expect(table.match('/kv/a%2Fb')?.rest).toBe('a%2Fb');
    expect(table.match('/kv/')?.rest).toBe('');
    expect(table.match('/kvx')).toBeUndefined();
    const twice: Route[] = [
      { methods: ['GET', 'HEAD'], path: '/x', query: 'none', handle },
      { methods: ['HEAD'], path: '/x', query: 'none', handle },
    ];
    expect(() => new RouteTable(twice)).toThrow(/two routes for HEAD \/x/);
    const halfOpen: Route[] = [
      { methods: ['GET'], path: '/x', query: 'none', open: true, handle },
      { methods: ['PUT'], path: '/x', query: 'none', handle },
    ];
    expect(() => new RouteTable(halfOpen)).toThrow(/disagree on open/);
  });
});

describe('key-value routes', () => {
  it('writes (201, then 200), reads the bytes, and deletes', async () => {
    const created = await rawRequest(api.base, 'PUT', '/kv/a%2Fb', { body: 'one' });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ acks: 1, required: 1 });
    expect(created.headers['x-causal-context']).toBe(created.json?.context);
    expect((await rawRequest(api.base, 'PUT', '/kv/a%2Fb', { body: 'two' })).status).toBe(200);
    const read = await rawRequest(api.base, 'GET', '/kv/a%2Fb');
    expect(read.status).toBe(200);
    expect(read.headers['content-type']).toBe('application/octet-stream');
    expect(read.body).toBe('two');
    expect((await rawRequest(api.base, 'DELETE', '/kv/a%2Fb')).status).toBe(200);
    expect(api.node.calls).toEqual(['write a/b', 'write a/b', 'read a/b', 'write a/b']);
    const gone = await rawRequest(api.base, 'GET', '/kv/a%2Fb');
    expect(gone.status).toBe(404);
    expect(gone.json).toEqual({ error: 'not_found', message: 'key "a/b" does not exist' });
  });

  it('answers siblings 300, last-writer-wins on request, and a write short of its wait 202 with a receipt', async () => {
    api.node.records.set('k', recordOf('left', 'right'));
    const siblings = await rawRequest(api.base, 'GET', '/kv/k');
    expect(siblings.status).toBe(300);
    expect((siblings.json?.siblings as unknown[]).length).toBe(2);
    const lww = await rawRequest(api.base, 'GET', '/kv/k?resolve=lww');
    expect(lww.status).toBe(200);
    expect(lww.body).toBe('right');
    expect(lww.headers['x-siblings']).toBe('2');
    api.node.complete = false;
    const pending = await rawRequest(api.base, 'PUT', '/kv/k?w=one&wait=all', { body: 'x' });
    expect(pending.status).toBe(202);
    expect(pending.json).toMatchObject({ complete: false, receipt: '/kv/k?explain=1' });
  });

  it('explains a key with its receipt, 404 when no replica holds it', async () => {
    expect((await rawRequest(api.base, 'GET', '/kv/none?explain=1')).json).toEqual({ error: 'not_found', message: 'no replica holds key "none"' });
    api.node.records.set('held', recordOf('v'));
    const receipt = await rawRequest(api.base, 'GET', '/kv/held?explain=1');
    expect(receipt.status).toBe(200);
    expect(receipt.json).toMatchObject({ key: 'held', deleted: false, siblings: 1, atQuorum: true });
    expect((await rawRequest(api.base, 'GET', '/kv/held?explain=1&r=one')).status).toBe(400);
  });

  it('refuses bad keys, parameters, contexts and bodies before the backend sees them', async () => {
    const cases: Array<[string, string, { body?: string; headers?: Record<string, string> }, number, string]> = [
      ['GET', '/kv/', {}, 400, 'invalid_key'],
      ['GET', `/kv/${'k'.repeat(65)}`, {}, 400, 'invalid_key'],
      ['GET', '/kv/a%00', {}, 400, 'invalid_key'],
      ['GET', '/kv/a?r=seven', {}, 400, 'invalid_consistency'],
      ['GET', '/kv/a?bogus=1', {}, 400, 'bad_request'],
      ['PUT', '/kv/a?timeoutMs=5', { body: 'x' }, 400, 'bad_request'],
      ['PUT', '/kv/a', { body: 'x', headers: { 'X-Causal-Context': 'forged' } }, 400, 'invalid_context'],
      ['PUT', '/kv/a', { body: 'x'.repeat(1025) }, 413, 'value_too_large'],
      ['DELETE', '/kv/a', { body: 'x' }, 413, 'body_not_allowed'],
      // The key is checked before the body is read.
      ['PUT', '/kv/', { body: 'x'.repeat(1025) }, 400, 'invalid_key'],
    ];
    for (const [method, path, options, status, error] of cases) {
      const res = await rawRequest(api.base, method, path, options);
      expect(res.status, `${method} ${path}`).toBe(status);
      expect(res.json?.error, `${method} ${path}`).toBe(error);
      expect(typeof res.json?.message).toBe('string');
    }
    expect(api.node.calls).toEqual([]);
  });

  it('takes a PUT body of any Content-Type (raw bytes)', async () => {
    const res = await rawRequest(api.base, 'PUT', '/kv/typed', { body: 'x', headers: { 'Content-Type': 'text/plain' } });
    expect(res.status).toBe(201);
  });
});

describe('browse routes', () => {
  it('lists live keys in order, paged with a cursor', async () => {
    api.node.records.set('b', recordOf('2'));
    api.node.records.set('a', recordOf('1'));
    api.node.records.set('dead', recordOf(null));
    api.node.records.set('c', recordOf('3'));
    const first = await rawRequest(api.base, 'GET', '/kv?limit=2');
    expect(first.json).toMatchObject({ keys: [{ key: 'a' }, { key: 'b' }] });
    const rest = await rawRequest(api.base, 'GET', `/kv?cursor=${String(first.json?.cursor)}`);
    expect(rest.json).toEqual({ keys: [{ key: 'c', siblings: 1 }], cursor: null });
    expect((await rawRequest(api.base, 'GET', '/kv?limit=0')).status).toBe(400);
  });

  it('refuses a bad watch query before opening the stream', async () => {
    const res = await rawRequest(api.base, 'GET', '/watch?prefix=a&x=1');
    expect(res.status).toBe(400);
    expect(res.json?.error).toBe('bad_request');
  });
});

describe('status routes', () => {
  it('answers /status, /healthz, /readyz (503 with its reasons) and /audit', async () => {
    expect((await rawRequest(api.base, 'GET', '/status')).json).toEqual({ fake: true });
    expect((await rawRequest(api.base, 'GET', '/healthz')).json).toEqual({ ok: true });
    expect((await rawRequest(api.base, 'GET', '/readyz')).json).toEqual({ ready: true });
    api.node.notReady = ['catching up', 'no quorum'];
    const notReady = await rawRequest(api.base, 'GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.json).toEqual({ error: 'not_ready', message: 'catching up; no quorum', reasons: ['catching up', 'no quorum'] });
    expect((await rawRequest(api.base, 'GET', '/audit?limit=5&kind=operator')).json).toEqual({ entries: [{ kind: 'operator' }] });
    expect((await rawRequest(api.base, 'GET', '/audit?limit=5000')).status).toBe(400);
    expect((await rawRequest(api.base, 'GET', '/audit?kind=other')).status).toBe(400);
    expect(api.node.calls).toEqual(['status', 'audit 5 operator']);
  });

  it('serves /metrics as Prometheus text and the page files with their headers (HEAD without a body)', async () => {
    const metrics = await rawRequest(api.base, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('quorumd_requests_total');
    const page = await rawRequest(api.base, 'HEAD', '/');
    expect(page.status).toBe(200);
    expect(page.body).toBe('');
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect((await rawRequest(api.base, 'GET', '/ui/app.js')).headers['content-type']).toBe('text/javascript; charset=utf-8');
  });
});

describe('cluster routes', () => {
  it('takes JSON bodies only (415 otherwise), leave also none, each at most 4096 bytes', async () => {
    const cases: Array<[string, { body?: string; headers?: Record<string, string> }, number, string | undefined]> = [
      ['/cluster/approve', { body: JSON.stringify({ peer: PEER }) }, 415, 'unsupported_media_type'],
      ['/cluster/approve', { body: JSON.stringify({ peer: PEER }), headers: { 'Content-Type': 'text/plain' } }, 415, 'unsupported_media_type'],
      ['/cluster/approve', { body: '{"peer": "nope"}', headers: JSON_TYPE }, 400, 'bad_request'],
      ['/cluster/approve', { body: 'not json', headers: JSON_TYPE }, 400, 'bad_request'],
      ['/cluster/remove', { body: JSON.stringify({ peer: PEER, pad: 'x'.repeat(5000) }), headers: JSON_TYPE }, 413, 'value_too_large'],
      ['/cluster/admit', { body: '{"forMs": -1}', headers: JSON_TYPE }, 400, 'bad_request'],
      ['/cluster/leave', { headers: { 'Content-Type': 'text/plain' } }, 415, 'unsupported_media_type'],
    ];
    for (const [path, options, status, error] of cases) {
      const res = await rawRequest(api.base, 'POST', path, options);
      expect(res.status, `${path} ${JSON.stringify(options.headers)}`).toBe(status);
      expect(res.json?.error).toBe(error);
    }
    expect(api.node.calls).toEqual([]);
    expect((await rawRequest(api.base, 'POST', '/cluster/approve', { body: JSON.stringify({ peer: PEER }), headers: JSON_TYPE })).json).toEqual({ approved: PEER });
    expect((await rawRequest(api.base, 'POST', '/cluster/remove', { body: JSON.stringify({ peer: PEER }), headers: { 'Content-Type': 'application/json; charset=utf-8' } })).status).toBe(200);
    expect((await rawRequest(api.base, 'POST', '/cluster/admit', { body: '{"forMs": 60000}', headers: JSON_TYPE })).json).toEqual({ admitting: true });
    expect((await rawRequest(api.base, 'POST', '/cluster/leave')).json).toEqual({ left: true });
    expect(api.node.calls).toEqual([`approve ${PEER}`, `remove ${PEER}`, 'admit 60000', 'leave']);
  });

  it('has no membership routes (404) on a node that offers none', async () => {
    const bare = await startFakeApi({ membership: false });
    try {
      const res = await rawRequest(bare.base, 'POST', '/cluster/leave');
      expect(res.status).toBe(404);
      expect(res.json).toEqual({ error: 'not_found', message: 'no route for /cluster/leave' });
      expect((await rawRequest(bare.base, 'GET', '/cluster/leave')).status).toBe(405);
    } finally {
      await bare.close();
    }
  });
});

describe('access', () => {
  it('refuses state-changing requests from another origin (403 cross_site), also on unknown paths; reads pass', async () => {
    const evil = { Origin: 'http://evil.example' };
    const cases: Array<[string, string, Record<string, string>]> = [
      ['POST', '/cluster/leave', evil],
      ['PUT', '/kv/a', evil],
      ['DELETE', '/kv/a', { 'Sec-Fetch-Site': 'cross-site' }],
      ['POST', '/nope', evil],
      ['PATCH', '/kv/a', evil],
    ];
    for (const [method, path, headers] of cases) {
      const res = await rawRequest(api.base, method, path, { headers, body: method === 'PUT' ? 'x' : undefined });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.json?.error).toBe('cross_site');
    }
    expect(api.node.calls).toEqual([]);
    expect(api.node.refused).toEqual(cases.map(() => ({ status: 403, code: 'cross_site' })));
    const own = { Origin: api.base, 'Sec-Fetch-Site': 'same-origin' };
    expect((await rawRequest(api.base, 'PUT', '/kv/a', { headers: own, body: 'x' })).status).toBe(201);
    expect((await rawRequest(api.base, 'GET', '/status', { headers: evil })).status).toBe(200);
  });

  it('refuses a Host that is not the API (403 forbidden_host)', async () => {
    const res = await rawRequest(api.base, 'GET', '/healthz', { headers: { Host: 'rebind.example:80' } });
    expect(res.status).toBe(403);
    expect(res.json?.error).toBe('forbidden_host');
  });

  it('needs the token off loopback except on open routes (liveness, readiness, the page files)', async () => {
    const exposed = await startFakeApi({ bindHost: '10.0.0.1' });
    try {
      for (const path of ['/status', '/kv', '/kv/a', '/metrics', '/audit', '/watch', '/nope']) {
        const res = await rawRequest(exposed.base, 'GET', path);
        expect(res.status, path).toBe(401);
        expect(res.json?.error).toBe('unauthorized');
      }
      for (const path of ['/healthz', '/readyz', '/', '/ui/app.css', '/ui/app.js']) {
        expect((await rawRequest(exposed.base, 'GET', path)).status, path).toBe(200);
      }
      const bearer = { Authorization: `Bearer ${TOKEN}` };
      expect((await rawRequest(exposed.base, 'GET', '/status', { headers: bearer })).status).toBe(200);
      expect((await rawRequest(exposed.base, 'GET', '/healthz', { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
      expect(exposed.node.refused.every((r) => r.status === 401 && r.code === 'unauthorized')).toBe(true);
      expect(exposed.node.refused.length).toBe(8);
    } finally {
      await exposed.close();
    }
  });
});

describe('errors', () => {
  it('answers every QuorumdError code with its STATUS_BY_CODE status as JSON {error, message}', async () => {
    const codes = Object.keys(STATUS_BY_CODE) as ErrorCode[];
    expect(codes).toContain('storage_corrupt');
    for (const code of codes) {
      api.node.failNext = new QuorumdError(code, `failed: ${code}`);
      const res = await rawRequest(api.base, 'GET', '/kv/a');
      expect(res.status, code).toBe(STATUS_BY_CODE[code]);
      expect(res.json).toEqual({ error: code, message: `failed: ${code}` });
    }
  });

  it('answers a corrupt store 503 and a refused join 409', async () => {
    api.node.failNext = new QuorumdError('storage_corrupt', 'corrupt record');
    expect((await rawRequest(api.base, 'GET', '/kv/a')).status).toBe(503);
    api.node.failNext = new QuorumdError('join_refused', 'not admitted');
    const refused = await rawRequest(api.base, 'POST', '/cluster/approve', { body: JSON.stringify({ peer: PEER }), headers: JSON_TYPE });
    expect(refused.status).toBe(409);
    expect(refused.json).toEqual({ error: 'join_refused', message: 'not admitted' });
  });

  it('adds acks, required and voters to quorum_unavailable; anything untyped is 500 internal', async () => {
    api.node.failNext = new QuorumUnavailableError(1, 2, 3);
    const unavailable = await rawRequest(api.base, 'PUT', '/kv/a?w=quorum', { body: 'x' });
    expect(unavailable.status).toBe(503);
    expect(unavailable.json).toEqual({ error: 'quorum_unavailable', message: 'only 1 of 2 required replicas answered (3 voters)', acks: 1, required: 2, voters: 3 });
    api.node.failNext = new Error('boom');
    const internal = await rawRequest(api.base, 'GET', '/status');
    expect(internal.status).toBe(500);
    expect(internal.json).toEqual({ error: 'internal', message: 'boom' });
  });
});

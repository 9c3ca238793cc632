// The request line and body as a raw client sends them, against a real daemon on 127.0.0.1: paths are never
// normalised (a `..` segment cannot alias another key), a chunked body over the limit gets a 413 (not a reset),
// a DELETE with a body gets an answer, and an endless refused body does not keep the connection.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config/defaults.js';
import { Daemon } from '../../src/app/daemon.js';
import { rawRequest } from '../helpers/http-raw.js';

let daemon: Daemon;
let base = '';
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quorumd-paths-'));
  daemon = await Daemon.start({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], http: '127.0.0.1:0', join: [], clusterKeyFile: undefined, mdns: false, logLevel: 'silent' });
  base = daemon.httpEndpoint;
});

afterAll(async () => {
  await daemon?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('paths are taken as sent', () => {
  it('PUT /kv/a/../good does not write good; dot segments (also percent-encoded) are a 400', async () => {
    expect((await rawRequest(base, 'PUT', '/kv/good', { body: 'original' })).status).toBe(201);
    for (const path of ['/kv/a/../good', '/kv/a/%2e%2e/good', '/kv/a/.%2E/good', '/kv/a/%2E./good', '/kv/x/./good', '/kv/x/%2e/good', '/kv/..', '/kv/.', '/kv/%2e%2e', '/kv/good/..', '/kv/../kv/good']) {
      const res = await rawRequest(base, 'PUT', path, { body: 'overwritten' });
      expect(res.status, path).toBe(400);
      expect(res.json, path).toMatchObject({ error: 'bad_request' });
      expect(String(res.json?.message)).toMatch(/"\.\." segment/);
    }
    expect((await rawRequest(base, 'GET', '/kv/good')).body).toBe('original');
    // Routes are not reached through dot segments either.
    expect((await rawRequest(base, 'POST', '/kv/../cluster/leave')).status).toBe(400);
    expect((await rawRequest(base, 'GET', '/x/../status')).status).toBe(400);
    expect((await rawRequest(base, 'GET', '/status')).json).toMatchObject({ role: 'voter' });
  });

  it('a key holding ".." is addressed with its slashes percent-encoded, as its own key', async () => {
    expect((await rawRequest(base, 'PUT', '/kv/a%2F..%2Fgood', { body: 'dots' })).status).toBe(201);
    expect((await rawRequest(base, 'GET', '/kv/a%2F..%2Fgood')).body).toBe('dots');
    expect((await rawRequest(base, 'GET', '/kv/good')).body).toBe('original');
    const listed = await rawRequest(base, 'GET', '/kv?prefix=a%2F');
    expect(listed.json).toMatchObject({ keys: [{ key: 'a/../good', siblings: 1 }] });
    // Dots inside a segment are ordinary characters; a backslash is not a slash.
    expect((await rawRequest(base, 'PUT', '/kv/x/..y/.z./...', { body: 'v' })).status).toBe(201);
    expect((await rawRequest(base, 'GET', '/kv/x%2F..y%2F.z.%2F...')).body).toBe('v');
    expect((await rawRequest(base, 'PUT', '/kv/back\\slash', { body: 'b' })).status).toBe(201);
    expect((await rawRequest(base, 'GET', '/kv/back%5Cslash')).body).toBe('b');
    expect((await rawRequest(base, 'GET', '/kv/back%2Fslash')).status).toBe(404);
  });
});

describe('bodies', () => {
  const limit = DEFAULTS.valueBytesMax;

  it('a chunked PUT over the value limit gets 413 JSON (not a reset) and writes nothing', async () => {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const chunks = Array.from({ length: limit / chunk.length + 2 }, () => chunk); // 128 KiB over
    const res = await rawRequest(base, 'PUT', '/kv/big', { chunks });
    expect(res.status).toBe(413);
    expect(res.json).toMatchObject({ error: 'value_too_large' });
    expect((await rawRequest(base, 'GET', '/kv/big')).status).toBe(404);
    // Exactly at the limit, chunked: accepted.
    const atLimit = Array.from({ length: limit / chunk.length }, () => chunk);
    expect((await rawRequest(base, 'PUT', '/kv/big', { chunks: atLimit })).status).toBe(201);
  });

  it('an endless chunked body is answered 413 and then cut off', async () => {
    const chunk = Buffer.alloc(256 * 1024, 0x62);
    const chunks = Array.from({ length: 64 }, () => chunk); // 16 MiB: far more than the drain allowance
    const res = await rawRequest(base, 'PUT', '/kv/endless', { chunks }).catch((error: unknown) => error as Error);
    // The answer comes before the cut (a client that reads while sending sees it); either way no value is written.
    if (!(res instanceof Error)) expect(res.status).toBe(413);
    expect((await rawRequest(base, 'GET', '/kv/endless')).status).toBe(404);
    expect((await rawRequest(base, 'GET', '/healthz')).status).toBe(200);
  });

  it('a DELETE with a body, chunked or declared, gets an answer (413 JSON) and deletes nothing', async () => {
    expect((await rawRequest(base, 'PUT', '/kv/kept', { body: 'v' })).status).toBe(201);
    const chunked = await rawRequest(base, 'DELETE', '/kv/kept', { chunks: [Buffer.from('x')] });
    expect(chunked.status).toBe(413);
    expect(chunked.json).toMatchObject({ error: 'body_not_allowed' });
    const declared = await rawRequest(base, 'DELETE', '/kv/kept', { body: 'xyz' });
    expect(declared.status).toBe(413);
    expect((await rawRequest(base, 'GET', '/kv/kept')).body).toBe('v');
    // An empty chunked body is no body.
    expect((await rawRequest(base, 'DELETE', '/kv/kept', { chunks: [] })).status).toBe(200);
  });
});

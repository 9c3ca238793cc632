// Cross-site request forgery against a real daemon on 127.0.0.1: what a web page on another origin can make a
// browser send (a no-cors POST with Origin, Sec-Fetch-Site: cross-site and a text/plain body) changes nothing;
// the API's own origin and clients that send no Origin (curl, the CLI) keep working.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_JS } from '../../src/http/page.js';
import { Daemon } from '../../src/app/daemon.js';
import { rawRequest } from '../helpers/http-raw.js';

let daemon: Daemon;
let base = '';
let port = '';
let dir = '';
const STRANGER = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quorumd-csrf-'));
  daemon = await Daemon.start({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], http: '127.0.0.1:0', join: [], clusterKeyFile: undefined, mdns: false, logLevel: 'silent' });
  base = daemon.httpEndpoint;
  port = new URL(base).port;
});

afterAll(async () => {
  await daemon?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** What a no-cors fetch or a form from https://evil.example sends. */
const EVIL = { Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors', 'Content-Type': 'text/plain;charset=UTF-8' };

describe('cross-site requests', () => {
  it('refuse /cluster/leave, /cluster/remove and /cluster/approve from another origin; the device stays', async () => {
    for (const path of ['/cluster/leave', '/cluster/remove', '/cluster/approve']) {
      const res = await rawRequest(base, 'POST', path, { headers: EVIL, body: JSON.stringify({ peer: STRANGER }) });
      expect(res.status, path).toBe(403);
      expect(res.json, path).toMatchObject({ error: 'cross_site' });
      expect(typeof res.json?.message).toBe('string');
    }
    // Origin alone (a browser without Fetch Metadata), Sec-Fetch-Site alone, a form post, a sandboxed page.
    const variants: Array<Record<string, string>> = [
      { Origin: 'https://evil.example' },
      { Origin: `http://evil.example:${port}` },
      { Origin: `https://127.0.0.1:${port}` },
      { Origin: 'http://127.0.0.1:1' },
      { Origin: 'null' },
      { 'Sec-Fetch-Site': 'cross-site' },
      { 'Sec-Fetch-Site': 'same-site' }, // another port of localhost is the same site, not our origin
      { 'Sec-Fetch-Site': 'same-site', Origin: 'http://localhost:9' },
      { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' },
    ];
    for (const headers of variants) {
      const res = await rawRequest(base, 'POST', '/cluster/leave', { headers });
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(res.json?.error).toBe('cross_site');
    }
    const status = await rawRequest(base, 'GET', '/status');
    expect(status.json).toMatchObject({ role: 'voter', epoch: 1, removed: [] });
    const audit = await rawRequest(base, 'GET', '/audit?kind=unauthorized');
    expect((audit.json as { entries: Array<{ code: string }> }).entries.some((e) => e.code === 'cross_site')).toBe(true);
  });

  it('refuse PUT and DELETE of keys from another origin, and accept them from our own origin or without one', async () => {
    expect((await rawRequest(base, 'PUT', '/kv/csrf', { headers: EVIL, body: 'forged' })).status).toBe(403);
    expect((await rawRequest(base, 'PUT', '/kv/csrf', { headers: { 'Sec-Fetch-Site': 'cross-site' }, body: 'forged' })).status).toBe(403);
    expect((await rawRequest(base, 'GET', '/kv/csrf')).status).toBe(404);
    // curl: no Origin, any Content-Type.
    expect((await rawRequest(base, 'PUT', '/kv/csrf', { body: 'mine', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })).status).toBe(201);
    // Our own page (same origin, under any of our names).
    for (const origin of [`http://127.0.0.1:${port}`, `http://localhost:${port}`]) {
      const own = await rawRequest(base, 'PUT', '/kv/csrf', { body: origin, headers: { Origin: origin, 'Sec-Fetch-Site': 'same-origin', 'Content-Type': 'text/plain' } });
      expect(own.status, origin).toBe(200);
    }
    expect((await rawRequest(base, 'DELETE', '/kv/csrf', { headers: { Origin: 'https://evil.example' } })).status).toBe(403);
    expect((await rawRequest(base, 'DELETE', '/kv/csrf', { headers: { 'Sec-Fetch-Site': 'cross-site' } })).status).toBe(403);
    expect((await rawRequest(base, 'GET', '/kv/csrf')).body).toBe(`http://localhost:${port}`);
    expect((await rawRequest(base, 'DELETE', '/kv/csrf', { headers: { 'Sec-Fetch-Site': 'none' } })).status).toBe(200);
  });

  it('needs application/json for JSON bodies (415 otherwise) and no body type for leave', async () => {
    const body = JSON.stringify({ peer: STRANGER });
    for (const type of [undefined, 'text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx']) {
      const headers: Record<string, string> = type === undefined ? {} : { 'Content-Type': type };
      const res = await rawRequest(base, 'POST', '/cluster/remove', { headers, body });
      expect(res.status, String(type)).toBe(415);
      expect(res.json).toMatchObject({ error: 'unsupported_media_type' });
    }
    for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON']) {
      // A well-formed request that reaches the membership layer: the stranger is not a member.
      expect((await rawRequest(base, 'POST', '/cluster/remove', { headers: { 'Content-Type': type }, body })).status, type).toBe(409);
    }
    expect((await rawRequest(base, 'POST', '/cluster/leave', { headers: { 'Content-Type': 'text/plain' }, body: '' })).status).toBe(415);
  });

  it('leaves reads alone, and the status page only reads', async () => {
    expect((await rawRequest(base, 'GET', '/status', { headers: { Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' } })).status).toBe(200);
    expect((await rawRequest(base, 'GET', '/', { headers: { 'Sec-Fetch-Site': 'none' } })).status).toBe(200);
    // Every fetch the page makes is a GET (no method option): nothing it does is refused as cross-site.
    expect(PAGE_JS).not.toMatch(/method\s*:/);
    expect((PAGE_JS.match(/fetch\(/g) ?? []).length).toBeGreaterThan(0);
  });
});

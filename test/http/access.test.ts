// Who may use the API: the Host check (DNS rebinding) on every request, the bearer token off loopback, and
// the token file (0600, generated once).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import type http from 'node:http';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessPolicy, TOKEN_FILE, isLoopbackHost, loadOrCreateToken, readToken } from '../../src/http/access.js';
import { HttpError } from '../../src/http/errors.js';
import { Daemon } from '../../src/app/daemon.js';
import { CLUSTER_KEY_FILE } from '../../src/config/files.js';

const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'quorumd-access-'));
  dirs.push(d);
  return d;
};

const fakeRequest = (headers: Record<string, string>, method = 'GET'): http.IncomingMessage => ({ headers, method }) as unknown as http.IncomingMessage;

function refusal(policy: AccessPolicy, headers: Record<string, string>, open = false, method = 'GET'): { status: number; code: string } | undefined {
  try {
    policy.check(fakeRequest(headers, method), open);
    return undefined;
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return { status: error.status, code: error.code };
  }
}

describe('access policy', () => {
  const token = 'A'.repeat(43);

  it('knows loopback hosts', () => {
    for (const h of ['localhost', '127.0.0.1', '127.9.8.7', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.4', 'example.com', '128.0.0.1']) expect(isLoopbackHost(h)).toBe(false);
  });

  it('on loopback: no token needed, a wrong one refused, foreign Host names refused', () => {
    const policy = new AccessPolicy({ bindHost: '127.0.0.1', port: () => 7401, token });
    expect(policy.tokenRequired).toBe(false);
    expect(refusal(policy, { host: '127.0.0.1:7401' })).toBeUndefined();
    expect(refusal(policy, { host: 'localhost:7401' })).toBeUndefined();
    expect(refusal(policy, { host: '[::1]:7401' })).toBeUndefined();
    expect(refusal(policy, { host: '127.0.0.1:7401', authorization: `Bearer ${token}` })).toBeUndefined();
    expect(refusal(policy, { host: '127.0.0.1:7401', authorization: 'Bearer wrong' })).toEqual({ status: 401, code: 'unauthorized' });
    expect(refusal(policy, { host: '127.0.0.1:7401', authorization: `Basic ${token}` })).toEqual({ status: 401, code: 'unauthorized' });
    expect(refusal(policy, { host: 'attacker.example:7401' })).toEqual({ status: 403, code: 'forbidden_host' });
    expect(refusal(policy, { host: 'localhost:7402' })).toEqual({ status: 403, code: 'forbidden_host' });
    expect(refusal(policy, { host: 'localhost' })).toEqual({ status: 403, code: 'forbidden_host' }); // port 80
    expect(refusal(policy, { host: 'a:b:c' })).toEqual({ status: 403, code: 'forbidden_host' });
    expect(refusal(policy, {})).toEqual({ status: 400, code: 'bad_request' });
  });

  it('off loopback: every route but the open ones needs the token; the Host must be an address of this machine', () => {
    const policy = new AccessPolicy({ bindHost: '0.0.0.0', port: () => 7401, token });
    expect(policy.tokenRequired).toBe(true);
    expect(refusal(policy, { host: '127.0.0.1:7401' })).toEqual({ status: 401, code: 'unauthorized' });
    expect(refusal(policy, { host: '127.0.0.1:7401' }, true)).toBeUndefined();
    expect(refusal(policy, { host: '127.0.0.1:7401', authorization: `Bearer ${token}` })).toBeUndefined();
    expect(refusal(policy, { host: 'rebind.attacker.example:7401', authorization: `Bearer ${token}` })).toEqual({ status: 403, code: 'forbidden_host' });
    const bound = new AccessPolicy({ bindHost: '192.168.7.9', port: () => 7401, token });
    expect(refusal(bound, { host: '192.168.7.9:7401', authorization: `Bearer ${token}` })).toBeUndefined();
    expect(refusal(bound, { host: '192.168.7.10:7401', authorization: `Bearer ${token}` })).toEqual({ status: 403, code: 'forbidden_host' });
  });

  it('state-changing requests: only from our own origin, or from clients that send no Origin', () => {
    const policy = new AccessPolicy({ bindHost: '127.0.0.1', port: () => 7401, token });
    const host = { host: '127.0.0.1:7401' };
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      expect(refusal(policy, host, false, method)).toBeUndefined(); // curl
      for (const origin of ['http://127.0.0.1:7401', 'http://localhost:7401', 'http://[::1]:7401', 'HTTP://LOCALHOST:7401']) {
        expect(refusal(policy, { ...host, origin, 'sec-fetch-site': 'same-origin' }, false, method), origin).toBeUndefined();
      }
      for (const origin of ['null', 'http://127.0.0.1:7402', 'https://127.0.0.1:7401', 'http://127.0.0.1', 'http://evil.example:7401', 'http://127.0.0.1:7401/', 'http://a@127.0.0.1:7401', '']) {
        expect(refusal(policy, { ...host, origin }, false, method), origin).toEqual({ status: 403, code: 'cross_site' });
      }
      expect(refusal(policy, { ...host, 'sec-fetch-site': 'cross-site' }, false, method)).toEqual({ status: 403, code: 'cross_site' });
      expect(refusal(policy, { ...host, 'sec-fetch-site': 'same-site' }, false, method)).toEqual({ status: 403, code: 'cross_site' });
      expect(refusal(policy, { ...host, 'sec-fetch-site': 'something-new' }, false, method)).toEqual({ status: 403, code: 'cross_site' });
      expect(refusal(policy, { ...host, 'sec-fetch-site': 'same-site', origin: 'http://localhost:7401' }, false, method)).toBeUndefined();
      expect(refusal(policy, { ...host, 'sec-fetch-site': 'none' }, false, method)).toBeUndefined();
    }
    // Reads are not state-changing: a cross-site GET only gets an opaque answer.
    expect(refusal(policy, { ...host, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).toBeUndefined();
    expect(refusal(policy, { ...host, origin: 'https://evil.example' }, false, 'HEAD')).toBeUndefined();
  });

  it('generates the token once, readable by the owner only', () => {
    const dir = tmp();
    expect(readToken(dir)).toBeUndefined();
    const first = loadOrCreateToken(dir);
    expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(loadOrCreateToken(dir)).toBe(first);
    expect(statSync(join(dir, TOKEN_FILE)).mode & 0o777).toBe(0o600);
  });
});

describe('a daemon\'s API checks the Host and the token', () => {
  let daemon: Daemon;
  let dir = '';
  beforeAll(async () => {
    dir = tmp();
    daemon = await Daemon.start({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], http: '127.0.0.1:0', join: [], clusterKeyFile: undefined, mdns: false, logLevel: 'silent' });
  });
  afterAll(async () => {
    await daemon?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** node:http, so the Host header can be set to anything. */
  function raw(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
    const url = new URL(daemon.httpEndpoint);
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, method: 'GET', path, headers, setHost: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('refuses a foreign Host with 403 and a wrong token with 401, as JSON, and stays healthy', async () => {
    const port = new URL(daemon.httpEndpoint).port;
    const foreign = await raw('/status', { Host: `evil.example:${port}` });
    expect(foreign.status).toBe(403);
    expect(JSON.parse(foreign.body)).toMatchObject({ error: 'forbidden_host' });
    const wrong = await raw('/status', { Host: `localhost:${port}`, Authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.body)).toMatchObject({ error: 'unauthorized' });
    const good = await raw('/status', { Host: `localhost:${port}`, Authorization: `Bearer ${readToken(dir)}` });
    expect(good.status).toBe(200);
    expect((await raw('/healthz', { Host: `127.0.0.1:${port}` })).status).toBe(200);
  });

  it('/readyz says why a device that is not a member is not ready', async () => {
    // Joining through an address where nobody listens: it stays "joining".
    const joiner = await Daemon.start({
      dataDir: tmp(),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      http: '127.0.0.1:0',
      join: ['/ip4/127.0.0.1/tcp/9/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'],
      clusterKeyFile: join(dir, CLUSTER_KEY_FILE),
      mdns: false,
      logLevel: 'silent',
    });
    try {
      const res = await fetch(`${joiner.httpEndpoint}/readyz`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: string; message: string; reasons: string[] };
      expect(body.error).toBe('not_ready');
      expect(body.reasons).toEqual(['not a member of a cluster (joining)']);
    } finally {
      await joiner.stop();
    }
  });
});

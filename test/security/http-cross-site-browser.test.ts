// Cross-site request forgery in a real browser (headless Debian Chromium via playwright-core): a page served
// from another origin fires what any web page can (no-cors fetches with text/plain bodies, a form post) at a
// real daemon's /cluster/leave, /cluster/remove and /kv; nothing changes, and the daemon's own page still
// writes through the same checks (same-origin fetch: Origin and Sec-Fetch-Site: same-origin).
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app/daemon.js';
import { call, get, status } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { CLUSTER_KEY_FILE } from '../../src/config/files.js';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available) console.log(`SKIP cross-site browser test: ${CHROMIUM} is not installed`);

let founder: Daemon;
let daemon: Daemon; // the target: a voter of a two-voter cluster, so a forged leave would succeed
let dir = '';
let evil: Server | undefined;
let browser: Browser | undefined;
const STRANGER = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo';

beforeAll(async () => {
  if (!available) return;
  dir = await mkdtemp(joinPath(tmpdir(), 'quorumd-csrf-browser-'));
  const start = (name: string, join: string[]): Promise<Daemon> =>
    Daemon.start({ dataDir: joinPath(dir, name), listen: ['/ip4/127.0.0.1/tcp/0'], http: '127.0.0.1:0', join, clusterKeyFile: join.length === 0 ? undefined : joinPath(dir, 'a', CLUSTER_KEY_FILE), mdns: false, logLevel: 'silent' });
  founder = await start('a', []);
  daemon = await start('b', [founder.listenAddrs()[0] as string]);
  await waitFor('B to become a voter', async () => (await status(daemon.httpEndpoint)).role === 'voter');
});

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => (evil === undefined ? resolve(undefined) : evil.close(resolve)));
  await daemon?.stop();
  await founder?.stop();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

/** The attacker's page: every request it sends to `api`, then `done` in its title. */
function attackPage(api: string): string {
  return `<!doctype html><html><body>
<form id="f" method="POST" action="${api}/cluster/leave" target="sink" enctype="text/plain"><input name='{"peer":"${STRANGER}","x":"' value='"}'></form>
<iframe name="sink"></iframe>
<script>
(async () => {
  const shots = [
    ['/cluster/leave', 'POST', ''],
    ['/cluster/remove', 'POST', JSON.stringify({ peer: '${STRANGER}' })],
    ['/cluster/approve', 'POST', JSON.stringify({ peer: '${STRANGER}' })],
    ['/kv/forged', 'POST', 'forged'],
  ];
  for (const [path, method, body] of shots) {
    try { await fetch('${api}' + path, { method, mode: 'no-cors', body, headers: { 'Content-Type': 'text/plain' } }); } catch (e) {}
  }
  // PUT and DELETE across origins need a preflight, which the API never grants: tried anyway.
  try { await fetch('${api}/kv/forged', { method: 'PUT', body: 'forged' }); } catch (e) {}
  document.getElementById('f').submit();
  setTimeout(() => { document.title = 'done'; }, 500);
})();
</script></body></html>`;
}

describe.skipIf(!available)('cross-site requests from a real browser', () => {
  it('change nothing; the API audits them as cross_site; its own page can still write', async () => {
    const api = daemon.httpEndpoint;
    evil = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(attackPage(api));
    });
    await new Promise<void>((resolve) => evil?.listen(0, '127.0.0.1', resolve));
    const evilPort = (evil.address() as AddressInfo).port;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    // localhost vs 127.0.0.1: another site; 127.0.0.1 on another port: the same site, another origin.
    for (const origin of [`http://localhost:${evilPort}`, `http://127.0.0.1:${evilPort}`]) {
      await page.goto(`${origin}/`);
      await expect.poll(() => page.title(), { timeout: 10_000 }).toBe('done');
    }
    const s = await status(api);
    expect(s).toMatchObject({ role: 'voter', removed: [] });
    expect((await status(founder.httpEndpoint)).quorum.voters).toBe(2);
    expect((await get(api, 'forged')).status).toBe(404);
    const audit = await call(api, 'GET', '/audit?kind=unauthorized&limit=1000');
    const refused = (audit.json as { entries: Array<{ code: string; path: string; count?: number }> }).entries.filter((e) => e.code === 'cross_site');
    expect(refused.length).toBeGreaterThan(0); // the requests arrived and were refused (not blocked by the browser)

    // The API's own origin: a same-origin fetch from its page writes.
    await page.goto(`${api}/`);
    const written = await page.evaluate(async () => {
      const res = await fetch('/kv/from-page', { method: 'PUT', body: 'ok', headers: { 'Content-Type': 'text/plain' } });
      return res.status;
    });
    expect(written).toBe(201);
    expect((await get(api, 'from-page')).text).toBe('ok');
  }, 60_000);
});

// The status page in a real browser (headless Debian Chromium driven by playwright-core): it shows the three
// members of a cluster, and one turns "down" live when its daemon stops. A screenshot goes to test-artifacts/.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/app/daemon.js';
import { put, status } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { CLUSTER_KEY_FILE } from '../../src/config/files.js';

const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOT = resolve(import.meta.dirname, '../../test-artifacts/status-page.png');
const available = existsSync(CHROMIUM);
if (!available) console.log(`SKIP status page browser test: ${CHROMIUM} is not installed (.ci/run installs Debian's chromium)`);

const dirs: string[] = [];
const running = new Set<Daemon>();
let browser: Browser | undefined;

async function startDevice(dataDir: string, join: string[] = [], clusterKeyFile?: string): Promise<Daemon> {
  const d = await Daemon.start({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], http: '127.0.0.1:0', join, clusterKeyFile, mdns: false, logLevel: 'silent' });
  running.add(d);
  return d;
}

afterAll(async () => {
  await browser?.close();
  await Promise.allSettled([...running].map((d) => d.stop()));
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe.skipIf(!available)('status page in a browser', () => {
  it('shows three members, then one turns down when its daemon stops', async () => {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-ui-'));
    dirs.push(root);
    const a = await startDevice(join(root, 'a'));
    const via = [a.listenAddrs()[0] as string];
    const key = join(root, 'a', CLUSTER_KEY_FILE);
    const b = await startDevice(join(root, 'b'), via, key);
    await waitFor('B voter', async () => (await status(b.httpEndpoint)).role === 'voter');
    const c = await startDevice(join(root, 'c'), via, key);
    await waitFor('three reachable voters', async () => (await status(a.httpEndpoint)).quorum.reachable === 3);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
    });
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    await page.goto(a.httpEndpoint);
    await expect.poll(() => page.locator('[data-testid=members] tr').count(), { timeout: 10_000 }).toBe(3);
    await expect.poll(() => page.locator('[data-testid=writable]').textContent(), { timeout: 10_000 }).toBe('quorum writable: yes');
    expect(await page.locator(`[data-testid=members] tr[data-peer="${c.peerId}"]`).getAttribute('data-state')).toBe('alive');
    expect(await page.locator('svg#picture circle').count()).toBe(3);

    // A change made through another device shows up in "Recent changes" (via /watch).
    await expect.poll(async () => {
      await put(b.httpEndpoint, 'page/hello', 'world');
      return page.locator('[data-testid=changes] li').count();
    }, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(await page.locator('[data-testid=changes]').textContent()).toContain('page/hello');

    running.delete(c);
    await c.stop();
    await expect
      .poll(() => page.locator(`[data-testid=members] tr[data-peer="${c.peerId}"]`).getAttribute('data-state'), { timeout: 10_000 })
      .toBe('down');
    // Two of three voters: still writable.
    expect(await page.locator('[data-testid=writable]').textContent()).toBe('quorum writable: yes');
    await mkdir(resolve(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`MEASURE status page screenshot: ${SCREENSHOT}`);
    expect(errors).toEqual([]);
  }, 90_000);
});

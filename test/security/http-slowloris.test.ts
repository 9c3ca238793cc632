// Slow clients against a real daemon on 127.0.0.1: connections that never finish their headers (slowloris) or
// send nothing are closed within the header timeout, and one address cannot hold more than its share of the
// connections, so /healthz is reachable again within seconds.
import { mkdtemp, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config/defaults.js';
import { Daemon } from '../../src/app/daemon.js';
import { rawRequest, rawSocket, timeUntil } from '../helpers/http-raw.js';

let daemon: Daemon;
let base = '';
let dir = '';
const sockets: Socket[] = [];
const timers: NodeJS.Timeout[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quorumd-slowloris-'));
  daemon = await Daemon.start({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], http: '127.0.0.1:0', join: [], clusterKeyFile: undefined, mdns: false, logLevel: 'silent' });
  base = daemon.httpEndpoint;
});

afterAll(async () => {
  for (const t of timers) clearInterval(t);
  for (const s of sockets) s.destroy();
  await daemon?.stop();
  await rm(dir, { recursive: true, force: true });
});

const healthy = async (): Promise<boolean> => (await rawRequest(base, 'GET', '/healthz', { timeoutMs: 1_000 })).status === 200;

describe('slow HTTP clients', () => {
  it('300 slowloris connections from one address keep /healthz unreachable for a few seconds at most', async () => {
    const host = new URL(base).host;
    let closedEarly = 0;
    for (let i = 0; i < 300; i++) {
      const socket = await rawSocket(base);
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.resume(); // read (and drop) the 408 a timed-out connection gets, so its close is seen
      const opened = performance.now();
      socket.once('close', () => {
        if (performance.now() - opened < 500) closedEarly += 1;
      });
      if (i % 3 === 0) continue; // a third say nothing at all
      socket.write(`GET /healthz HTTP/1.1\r\nHost: ${host}\r\n`);
      // One more header line every 500 ms: never the blank line that ends the headers.
      let n = 0;
      const drip = setInterval(() => {
        if (!socket.destroyed) socket.write(`X-Slow-${n++}: 1\r\n`);
      }, 500);
      timers.push(drip);
    }
    // Beyond the per-address cap, connections are closed at once.
    await timeUntil(async () => closedEarly >= 300 - DEFAULTS.httpConnectionsPerIpMax, 2_000);
    const tookMs = await timeUntil(healthy, 20_000, 200);
    // The header timeout, checked every second (node's default check every 30 s made it ~40 s).
    expect(tookMs).toBeLessThan(DEFAULTS.httpHeadersTimeoutMs + 3_000);
    console.log(`/healthz reachable again after ${Math.round(tookMs)} ms`);
    // Silent connections too: every one is closed by then.
    await timeUntil(async () => sockets.every((s) => s.destroyed), 2_000);
  }, 30_000);
});

// Helpers shared by the benchmark scripts (bench/cluster.mjs, bench/sync.mjs).
import { readFile } from 'node:fs/promises';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until the daemon of process `pid` wrote its `daemon.json` ({pid, peerId, http, listen}). */
export async function waitForFile(path, pid, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const info = JSON.parse(await readFile(path, 'utf8'));
      if (info.pid === pid) return info;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${path}`);
    await sleep(20);
  }
}

// kill -9 durability: a child writes under load and prints each acknowledged write; we SIGKILL it at a random
// moment, reopen the database and require every acknowledged key and the last acknowledged counter to be there.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/storage/sqlite.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WRITER = fileURLToPath(new URL('./crash-writer.mjs', import.meta.url));
const CYCLES = 5;
const KILL_DELAY_MIN_MS = 100;
const KILL_DELAY_MAX_MS = 600;
const READY_TIMEOUT_MS = 15_000;
/** Value padding: large values make each commit's WAL writes long, widening the window a kill can land in. */
const VALUE_PAD = Number(process.env.CRASH_PAD ?? 2_000);

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with CRASH_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The child runs compiled code: refuse to test a missing or stale dist/ rather than the wrong code. */
function checkBuild(): void {
  for (const [srcDir, names] of [['src/storage', readdirSync(join(ROOT, 'src/storage'))], ['src/wire', ['record.ts']]] as const) {
    for (const name of names.filter((n) => n.endsWith('.ts'))) {
      const src = join(ROOT, srcDir, name);
      const out = join(ROOT, 'dist', srcDir.slice('src/'.length), name.replace(/\.ts$/, '.js'));
      if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
        throw new Error(`${out} is missing or older than ${src}: run \`npm run build\` first`);
      }
    }
  }
}

interface CycleOutput {
  readonly keys: string[];
  readonly lastCounter: number;
}

describe('SqliteStore under kill -9', () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;

  beforeAll(checkBuild);

  afterEach(() => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child = undefined;
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** Runs the writer until its first acknowledged write, lets it write for `delayMs`, kills it and returns what it acknowledged. */
  async function runAndKill(path: string, cycle: number, delayMs: number): Promise<CycleOutput> {
    const proc = spawn(process.execPath, [WRITER, path, String(cycle), String(VALUE_PAD)], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const closed = new Promise<void>((resolve) => proc.on('close', () => resolve()));
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`writer not ready after ${READY_TIMEOUT_MS} ms: ${stderr}`)), READY_TIMEOUT_MS);
      proc.stdout.on('data', () => {
        // Ready once it has acknowledged its first write: the kill delay then counts from there, so a loaded
        // machine (a slow child start) cannot make a cycle kill a writer that acknowledged nothing yet.
        if (stdout.startsWith('ready\n') && stdout.includes('\nk ')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.on('exit', () => {
        clearTimeout(timer);
        reject(new Error(`writer exited early (${proc.exitCode ?? proc.signalCode}): ${stderr}`));
      });
    });
    await ready;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    expect(proc.exitCode, `writer died on its own: ${stderr}`).toBeNull();
    proc.kill('SIGKILL');
    await closed;
    expect(proc.signalCode).toBe('SIGKILL');
    // Only complete lines count: the kill may cut the last one short.
    const lines = stdout.slice(0, stdout.lastIndexOf('\n')).split('\n').slice(1);
    const keys: string[] = [];
    let lastCounter = 0;
    for (const line of lines) {
      if (line.startsWith('k ')) keys.push(line.slice(2));
      else if (line.startsWith('m ')) lastCounter = Math.max(lastCounter, Number(line.slice(2)));
      else throw new Error(`unexpected writer output ${JSON.stringify(line)}`);
    }
    return { keys, lastCounter };
  }

  it(`keeps every acknowledged write across ${CYCLES} kills`, async () => {
    const seed = Number(process.env.CRASH_SEED ?? Date.now() % 2 ** 32);
    console.log(`crash test seed=${seed} (replay with CRASH_SEED=${seed})`);
    const random = prng(seed);
    dir = mkdtempSync(join(tmpdir(), 'quorumd-crash-'));
    const path = join(dir, 'data.db');
    const acknowledged: string[] = [];
    let counterFloor = 0;
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const delayMs = KILL_DELAY_MIN_MS + Math.floor(random() * (KILL_DELAY_MAX_MS - KILL_DELAY_MIN_MS + 1));
      const { keys, lastCounter } = await runAndKill(path, cycle, delayMs);
      const where = `seed=${seed} cycle=${cycle} delay=${delayMs}ms`;
      console.log(`${where}: ${keys.length} keys acknowledged, counter ${lastCounter}`);
      expect(keys.length, `writer acknowledged nothing (${where})`).toBeGreaterThan(0);
      acknowledged.push(...keys);
      counterFloor = Math.max(counterFloor, lastCounter);

      const store = openSqliteStore(path); // must open cleanly after the kill
      try {
        const missing = acknowledged.filter((k) => {
          const value = store.get(k)?.siblings[0]?.value;
          return value == null || Buffer.from(value).toString() !== `v:${k}|${'.'.repeat(VALUE_PAD)}`;
        });
        expect(missing.slice(0, 5), `${missing.length} acknowledged keys lost or wrong (${where})`).toEqual([]);
        expect(Number(store.getMeta('counter')), `counter went back (${where})`).toBeGreaterThanOrEqual(counterFloor);
        expect(store.stats().totalKeys).toBeGreaterThanOrEqual(acknowledged.length);
        // Every stored record (acknowledged or not) decodes: scan throws StorageCorruptionError otherwise.
        let scanned = 0;
        for (let page = store.scan(undefined, 5_000); page.length > 0; page = store.scan(page[page.length - 1]?.key, 5_000)) {
          scanned += page.length;
        }
        expect(scanned).toBe(store.stats().totalKeys);
      } finally {
        await store.close();
      }
    }
  });
});

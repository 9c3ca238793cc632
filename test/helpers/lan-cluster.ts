// quorumd clusters on the network-namespace LAN testbed (test/helpers/netns.ts): one data dir per device under
// a temp root, the founder's cluster key copied for the others, HTTP from inside the namespaces, the daemons'
// JSON logs kept across restarts (adopted configurations, timings), bulk requests and a background writer run
// as small node scripts inside a device, and a direct read-only look into a device's SQLite store.
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { decodeRecord } from '../../src/wire/record.js';
import {
  DAEMON_HTTP_PORT, type DaemonIn, type Device, type FetchInResponse, type ProcessIn, type Testbed, createTestbed, execIn, fetchIn,
  spawnDaemonIn, spawnIn,
} from './netns.js';
import { BIN } from './procs.js';
import { waitFor } from './wait.js';
import { CLUSTER_KEY_FILE, DATABASE_FILE, TOKEN_FILE } from '../../src/config/files.js';

export type Health = 'alive' | 'suspect' | 'down';

export interface MemberView {
  peerId: string;
  self: boolean;
  connected: boolean;
  state: Health;
  lastSeen: string | null;
  rttMs: number | null;
}

export interface Status {
  peerId: string;
  clusterId: string | null;
  epoch: number;
  role: 'voter' | 'catching-up' | 'learner' | 'removed' | 'waiting' | 'joining' | 'pending';
  joinError?: string;
  voters: MemberView[];
  learners: MemberView[];
  removed: string[];
  pending: { peerId: string }[];
  quorum: { voters: number; reachable: number; needed: number; writable: boolean; joint?: { previousVoters: number; reachable: number; needed: number } };
  keys: number;
  network: Record<string, unknown>;
  membershipChanges: { changes: number; conflicts: number; syncs: number };
}

/** One line of a daemon's pino log. */
export interface LogLine {
  time: number;
  msg: string;
  [field: string]: unknown;
}

/** A configuration as a device logged it when adopting it (src/node/runtime.ts, persistConfig). */
export interface Adoption {
  time: number;
  epoch: number;
  voterIds: string[];
  learnerIds: string[];
  previousVoters: string[];
  removed: string[];
}

export interface BulkOp {
  method: 'GET' | 'PUT' | 'DELETE';
  /** Path and query, e.g. `/kv/a?r=quorum`. */
  path: string;
  body?: string;
}

export interface BulkResult {
  status: number;
  body: string;
}

export interface WriteRecord {
  key: string;
  value: string;
  status: number;
  /** Send time (ms since the epoch) and duration. */
  at: number;
  ms: number;
  body?: string;
}

export interface Writer {
  /** Acknowledged and failed writes so far. */
  results(): Promise<WriteRecord[]>;
  /** Stops the loop (in-flight requests finish) and returns every result. */
  stop(): Promise<WriteRecord[]>;
}

interface Run {
  readonly startedAt: number;
  readonly daemon: DaemonIn;
}

/** `MEASURE name=value` lines, for grepping measurements out of the test output. */
export function measure(values: Record<string, number | string>): void {
  console.log(`MEASURE ${Object.entries(values).map(([k, v]) => `${k}=${typeof v === 'number' ? Math.round(v) : v}`).join(' ')}`);
}

export function shortId(peerId: string): string {
  return peerId.slice(-6);
}

const RUNNER_HELPERS = `
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function request(base, op, timeoutMs) {
  return new Promise((resolve) => {
    const headers = op.token ? { Authorization: 'Bearer ' + op.token } : {};
    const req = http.request(base + op.path, { method: op.method, agent, timeout: timeoutMs, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolve({ status: 0, body: String(e.message) }));
    req.end(op.body === undefined ? undefined : op.body);
  });
}`;

/** Reads a job from stdin, runs its requests with bounded concurrency, prints the results in order. */
const BULK_SCRIPT = `${RUNNER_HELPERS}
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', async () => {
  const job = JSON.parse(input);
  const results = new Array(job.ops.length);
  let next = 0;
  const worker = async () => {
    while (next < job.ops.length) {
      const i = next++;
      results[i] = await request(job.base, { ...job.ops[i], token: job.token }, job.timeoutMs);
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  process.stdout.write(JSON.stringify(results));
  process.exit(0);
});`;

/** Writes `<prefix>-<n>` keys at `level` until the stop file exists; one JSON line per finished request. */
const WRITER_SCRIPT = `${RUNNER_HELPERS}
const fs = require('node:fs');
const [base, prefix, concurrency, level, outFile, stopFile, token] = process.argv.slice(1);
let n = 0;
const worker = async () => {
  while (!fs.existsSync(stopFile)) {
    const i = n++;
    const key = prefix + '-' + i;
    const value = 'value-' + i;
    const at = Date.now();
    const r = await request(base, { method: 'PUT', path: '/kv/' + encodeURIComponent(key) + '?w=' + level, body: value, token }, 10000);
    const line = { key, value, status: r.status, at, ms: Date.now() - at };
    if (r.status >= 300 || r.status === 0) line.body = r.body.slice(0, 300);
    fs.appendFileSync(outFile, JSON.stringify(line) + '\\n');
    if (r.status >= 300 || r.status === 0) await new Promise((res) => setTimeout(res, 20));
  }
};
Promise.all(Array.from({ length: Number(concurrency) }, worker)).then(() => process.exit(0));`;

export class LanCluster {
  readonly bed: Testbed;
  readonly root: string;
  /** A copy of the founder's cluster.key, handed to every other device. */
  readonly keyFile: string;
  private readonly runs = new Map<Device, Run[]>();
  private readonly running = new Map<Device, DaemonIn>();

  private constructor(bed: Testbed, root: string) {
    this.bed = bed;
    this.root = root;
    this.keyFile = join(root, CLUSTER_KEY_FILE);
  }

  static async create(devices: number): Promise<LanCluster> {
    const root = await mkdtemp(join(tmpdir(), 'quorumd-lan-'));
    try {
      return new LanCluster(await createTestbed({ devices }), root);
    } catch (error) {
      await rm(root, { recursive: true, force: true });
      throw error;
    }
  }

  get devices(): readonly Device[] {
    return this.bed.devices;
  }

  device(index: number): Device {
    const device = this.bed.devices[index - 1];
    if (device === undefined) throw new Error(`no device ${index}`);
    return device;
  }

  dataDir(device: Device): string {
    return join(this.root, `d${device.index}`);
  }

  url(device: Device, path = ''): string {
    return `http://${device.ip}:${DAEMON_HTTP_PORT}${path}`;
  }

  daemon(device: Device): DaemonIn {
    const daemon = this.running.get(device);
    if (daemon === undefined) throw new Error(`no daemon runs on ${device.ns}`);
    return daemon;
  }

  peerId(device: Device): string {
    const runs = this.runs.get(device);
    const last = runs?.[runs.length - 1];
    if (last === undefined) throw new Error(`${device.ns} never ran a daemon`);
    return last.daemon.info.peerId;
  }

  /** When the device's current (last) daemon was spawned, ms since the epoch. */
  startedAt(device: Device): number {
    const runs = this.runs.get(device);
    const last = runs?.[runs.length - 1];
    if (last === undefined) throw new Error(`${device.ns} never ran a daemon`);
    return last.startedAt;
  }

  /** First start in an empty data dir without a key: founds a cluster; its key is copied to `keyFile`. */
  async found(device: Device, extraArgs: string[] = []): Promise<DaemonIn> {
    const daemon = await this.spawn(device, extraArgs);
    await copyFile(join(this.dataDir(device), CLUSTER_KEY_FILE), this.keyFile);
    return daemon;
  }

  /** Starts a device holding only a copy of the cluster key (no address: it finds members over mDNS). */
  join(device: Device, extraArgs: string[] = []): Promise<DaemonIn> {
    if (!existsSync(this.keyFile)) throw new Error('found the cluster first');
    return this.spawn(device, ['--cluster-key', this.keyFile, ...extraArgs]);
  }

  async spawn(device: Device, args: string[]): Promise<DaemonIn> {
    if (this.running.has(device)) throw new Error(`a daemon already runs on ${device.ns}`);
    const startedAt = Date.now();
    const daemon = await spawnDaemonIn(device, this.dataDir(device), args);
    const runs = this.runs.get(device) ?? [];
    runs.push({ startedAt, daemon });
    this.runs.set(device, runs);
    this.running.set(device, daemon);
    daemon.child.once('exit', () => {
      if (this.running.get(device) === daemon) this.running.delete(device);
    });
    return daemon;
  }

  /** SIGKILL (a crash or a pulled plug). */
  async kill(device: Device): Promise<void> {
    const daemon = this.running.get(device);
    if (daemon === undefined) return;
    await daemon.kill();
    this.running.delete(device);
  }

  isRunning(device: Device): boolean {
    return this.running.has(device);
  }

  // ------------------------------------------------------------------------------------------ HTTP

  request(device: Device, method: string, path: string, body?: string, timeoutMs = 10_000): Promise<FetchInResponse> {
    // The API's POST bodies are JSON and must say so (curl would send form-urlencoded).
    const type: Record<string, string> = method === 'POST' && body !== undefined ? { 'Content-Type': 'application/json' } : {};
    return fetchIn(device, this.url(device, path), { method, body, timeoutMs, headers: { Authorization: `Bearer ${this.token(device)}`, ...type } });
  }

  /** The device's API token: its API listens on the LAN, so every request needs it. */
  token(device: Device): string {
    return readFileSync(join(this.dataDir(device), TOKEN_FILE), 'utf8').trim();
  }

  async status(device: Device): Promise<Status> {
    const res = await this.request(device, 'GET', '/status', undefined, 5_000);
    if (res.status !== 200 || res.json === undefined) throw new Error(`GET /status on ${device.ns}: ${res.status} ${res.text.slice(0, 200)}`);
    return res.json as unknown as Status;
  }

  put(device: Device, key: string, value: string, w = 'quorum'): Promise<FetchInResponse> {
    return this.request(device, 'PUT', `/kv/${encodeURIComponent(key)}?w=${w}`, value);
  }

  get(device: Device, key: string, r = 'quorum'): Promise<FetchInResponse> {
    return this.request(device, 'GET', `/kv/${encodeURIComponent(key)}?r=${r}`);
  }

  /** Runs many requests against `device`'s API from inside its namespace (one process, keep-alive). */
  async bulk(device: Device, ops: readonly BulkOp[], concurrency = 16, timeoutMs = 10_000): Promise<BulkResult[]> {
    if (ops.length === 0) return [];
    const input = JSON.stringify({ base: this.url(device), ops, concurrency, timeoutMs, token: this.token(device) });
    const result = await execIn(device, [process.execPath, '-e', BULK_SCRIPT], { input, timeoutMs: 120_000 });
    if (result.code !== 0) throw new Error(`bulk requests on ${device.ns} failed (${result.code}): ${result.stderr.slice(-1000)}`);
    return JSON.parse(result.stdout) as BulkResult[];
  }

  /** A loop of writes (`concurrency` at a time) at level `w` against `device`, until stopped. */
  startWriter(device: Device, prefix: string, opts: { concurrency?: number; w?: string } = {}): Writer {
    const outFile = join(this.root, `writer-${prefix}.jsonl`);
    const stopFile = join(this.root, `writer-${prefix}.stop`);
    const proc: ProcessIn = spawnIn(device, [
      process.execPath, '-e', WRITER_SCRIPT, this.url(device), prefix, String(opts.concurrency ?? 4), opts.w ?? 'quorum', outFile, stopFile, this.token(device),
    ]);
    const results = async (): Promise<WriteRecord[]> => {
      const text = existsSync(outFile) ? await readFile(outFile, 'utf8') : '';
      return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as WriteRecord);
    };
    return {
      results,
      stop: async () => {
        await writeFile(stopFile, '');
        await waitFor(`writer ${prefix} to stop`, () => proc.child.exitCode !== null || proc.child.signalCode !== null, 20_000);
        if (proc.child.exitCode !== 0) throw new Error(`writer ${prefix} exited with ${proc.child.exitCode ?? proc.child.signalCode}: ${proc.output().slice(-1000)}`);
        return results();
      },
    };
  }

  /** Runs `quorumd ARGS...` (a CLI command) inside the device. */
  async cli(device: Device, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return execIn(device, [process.execPath, BIN, ...args], { timeoutMs: 30_000 });
  }

  // ------------------------------------------------------------------------------------------ waiting

  /** Polls every listed device's status until `check` accepts the set (all answered); returns them. */
  async waitStatuses(what: string, devices: readonly Device[], check: (statuses: Status[]) => boolean, timeoutMs = 20_000, intervalMs = 50): Promise<Status[]> {
    let last: Status[] | undefined;
    try {
      return await waitFor(
        what,
        async () => {
          last = await Promise.all(devices.map((d) => this.status(d)));
          return check(last) ? last : undefined;
        },
        timeoutMs,
        intervalMs,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}\nlast statuses:\n${last?.map(describeStatus).join('\n') ?? '(none)'}`, { cause: error });
    }
  }

  /**
   * Waits until every listed device reports the same stable (non-joint) configuration with `voters` voters
   * and `learners` learners, each device being one of them with the matching role.
   */
  async waitConverged(devices: readonly Device[], shape: { voters: number; learners?: number }, timeoutMs = 20_000): Promise<Status[]> {
    return this.waitStatuses(
      `${devices.length} devices to agree on ${shape.voters} voters and ${shape.learners ?? 0} learners`,
      devices,
      (all) => converged(all, shape),
      timeoutMs,
    );
  }

  // ------------------------------------------------------------------------------------------ logs

  /** Every JSON log line of every daemon run on the device, oldest first (each run keeps its last 200 kB). */
  logLines(device: Device): LogLine[] {
    const lines: LogLine[] = [];
    for (const run of this.runs.get(device) ?? []) {
      for (const line of run.daemon.output().split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          lines.push(JSON.parse(line) as LogLine);
        } catch {
          // a line cut by the 200 kB window
        }
      }
    }
    return lines;
  }

  adoptions(device: Device): Adoption[] {
    return this.logLines(device)
      .filter((l) => l.msg === 'membership configuration adopted')
      .map((l) => {
        if (!Array.isArray(l.voterIds)) throw new Error('the adoption log line has no voterIds: rebuild (npm run build)');
        return {
          time: l.time,
          epoch: l.epoch as number,
          voterIds: l.voterIds as string[],
          learnerIds: (l.learnerIds as string[] | undefined) ?? [],
          previousVoters: (l.previousVoters as string[] | undefined) ?? [],
          removed: (l.removed as string[] | undefined) ?? [],
        };
      });
  }

  /** When (from the device's log) it first adopted a configuration in which it is a full voter. */
  becameVoterAt(device: Device): number | undefined {
    const self = this.peerId(device);
    return this.adoptions(device).find(
      (a) => a.voterIds.includes(self) && (a.previousVoters.length === 0 || a.previousVoters.includes(self)),
    )?.time;
  }

  readyAt(device: Device): number | undefined {
    const lines = this.logLines(device).filter((l) => l.msg === 'quorumd ready');
    return lines[lines.length - 1]?.time;
  }

  // ------------------------------------------------------------------------------------------ storage

  /**
   * The live keys in the device's own store and their live values, read directly from its SQLite file
   * (read-only; no request reaches the cluster, so nothing is repaired by looking).
   */
  localRecords(device: Device): Map<string, string[]> {
    const db = new Database(join(this.dataDir(device), DATABASE_FILE), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT key, record FROM kv WHERE live = 1').all() as { key: string; record: Buffer }[];
      const out = new Map<string, string[]>();
      for (const row of rows) {
        const record = decodeRecord(new Uint8Array(row.record.buffer, row.record.byteOffset, row.record.byteLength));
        out.set(row.key, record.siblings.filter((s) => s.value !== null).map((s) => Buffer.from(s.value as Uint8Array).toString('utf8')));
      }
      return out;
    } finally {
      db.close();
    }
  }

  async teardown(): Promise<void> {
    await this.bed.teardown();
    await rm(this.root, { recursive: true, force: true });
  }
}

export function sortedVoters(status: Status): string[] {
  return status.voters.map((v) => v.peerId).sort();
}

export function converged(all: readonly Status[], shape: { voters: number; learners?: number }): boolean {
  const first = all[0];
  if (first === undefined) return false;
  const voters = sortedVoters(first).join(',');
  const learners = first.learners.map((l) => l.peerId).sort().join(',');
  return all.every((s) => {
    if (s.epoch !== first.epoch || s.quorum.joint !== undefined) return false;
    if (s.voters.length !== shape.voters || s.learners.length !== (shape.learners ?? 0)) return false;
    if (sortedVoters(s).join(',') !== voters || s.learners.map((l) => l.peerId).sort().join(',') !== learners) return false;
    const isVoter = s.voters.some((v) => v.peerId === s.peerId);
    return s.role === (isVoter ? 'voter' : 'learner');
  });
}

export function describeStatus(s: Status): string {
  const member = (m: MemberView): string => `${shortId(m.peerId)}:${m.state}${m.connected ? '' : '/x'}`;
  return `  ${shortId(s.peerId)} epoch ${s.epoch} ${s.role} voters [${s.voters.map(member).join(' ')}] learners [${s.learners.map(member).join(' ')}]` +
    ` removed [${s.removed.map(shortId).join(' ')}] quorum ${JSON.stringify(s.quorum)} keys ${s.keys}${s.joinError ? ` joinError ${s.joinError}` : ''}`;
}

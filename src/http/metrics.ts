// Prometheus metrics (prom-client): requests, latency and acks observed by the HTTP layer, and the daemon's
// figures (membership, quorum, anti-entropy, hints, storage) read at scrape time, plus process metrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeMetrics } from '../node/status-view.js';

/** What the daemon reports at each scrape (src/node/status-view.ts NodeMetrics). */
export type MetricsSnapshot = NodeMetrics;

export type Operation = 'get' | 'put' | 'delete';

const EVENT_LOOP_PRECISION_MS = 100;

/** Request outcome by HTTP status: few values, so label sets stay small. */
export function outcomeOf(status: number): string {
  if (status === 200 || status === 201 || status === 204) return 'ok';
  if (status === 300) return 'siblings';
  if (status === 404) return 'not_found';
  if (status === 503) return 'unavailable';
  if (status >= 400 && status < 500) return 'rejected';
  return 'error';
}

/** Consistency label: one/quorum/all, n for a number, default when absent, invalid otherwise. */
export function consistencyLabel(raw: string | null): string {
  if (raw === null) return 'default';
  if (raw === 'one' || raw === 'quorum' || raw === 'all') return raw;
  return /^[1-9][0-9]?$/.test(raw) ? 'n' : 'invalid';
}

export class ApiMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'operation' | 'consistency' | 'outcome'>;
  private readonly latency: Histogram<'operation' | 'consistency'>;
  private readonly acks: Histogram<'operation'>;
  private snapshot: MetricsSnapshot | undefined;

  constructor(snapshot: () => MetricsSnapshot) {
    const registers = [this.registry];
    // Event-loop delay sampled every 100 ms, not prom-client's 10 ms: its timer would wake an idle daemon 100
    // times a second (a measurable share of a Pi's idle CPU) for a figure that needs no such resolution.
    collectDefaultMetrics({ register: this.registry, prefix: 'quorumd_', eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS });
    this.requests = new Counter({
      name: 'quorumd_requests_total',
      help: 'Key-value requests by operation, consistency level and outcome',
      labelNames: ['operation', 'consistency', 'outcome'],
      registers,
    });
    this.latency = new Histogram({
      name: 'quorumd_request_duration_seconds',
      help: 'Key-value request latency (answered requests), by operation and consistency level',
      labelNames: ['operation', 'consistency'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.acks = new Histogram({
      name: 'quorumd_write_acks',
      help: 'Replicas that acknowledged a write (or delete) before it was answered',
      labelNames: ['operation'],
      buckets: [1, 2, 3, 4, 5, 7, 9],
      registers,
    });

    // One snapshot per scrape, shared by every collector below (text() clears it first).
    const read = (): MetricsSnapshot => {
      this.snapshot ??= snapshot();
      return this.snapshot;
    };
    const gauge = (name: string, help: string, value: (s: MetricsSnapshot) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(value(read()));
        },
      });
    };
    /** A counter mirroring a cumulative figure of the daemon (incremented by what it grew since the last scrape). */
    const cumulative = (name: string, help: string, value: (s: MetricsSnapshot) => number): void => {
      let last = 0;
      new Counter({
        name,
        help,
        registers,
        collect() {
          const now = value(read());
          if (now > last) this.inc(now - last);
          last = Math.max(last, now);
        },
      });
    };
    gauge('quorumd_epoch', 'Membership configuration epoch this device is on', (s) => s.epoch);
    gauge('quorumd_quorum_writable', '1 when a quorum of voters is reachable from this device', (s) => (s.writable ? 1 : 0));
    gauge('quorumd_catching_up', '1 while this device fills its replica (it answers no reads)', (s) => (s.catchingUp ? 1 : 0));
    new Gauge({
      name: 'quorumd_members',
      help: 'Members of the configuration by role and liveness as seen from this device',
      labelNames: ['role', 'state'],
      registers,
      collect() {
        this.reset();
        for (const m of read().members) this.inc({ role: m.role, state: m.state });
      },
    });
    gauge('quorumd_store_keys', 'Keys with a live value', (s) => s.keysLive);
    gauge('quorumd_store_records', 'Records stored, tombstones included', (s) => s.keysStored);
    gauge('quorumd_store_bytes', 'Size of the database files on disk', (s) => s.storeBytes);
    gauge('quorumd_ops_in_flight', 'Client operations being coordinated', (s) => s.opsInFlight);
    gauge('quorumd_anti_entropy_converged', '1 when digests were equal with every live member at the last round', (s) => (s.antiEntropy.converged ? 1 : 0));
    cumulative('quorumd_anti_entropy_rounds_total', 'Anti-entropy rounds started here that ended', (s) => s.antiEntropy.rounds);
    cumulative('quorumd_anti_entropy_matched_rounds_total', 'Rounds that found equal digests', (s) => s.antiEntropy.matchedRounds);
    cumulative('quorumd_anti_entropy_failed_rounds_total', 'Rounds that failed (timeout, refusal, lost peer)', (s) => s.antiEntropy.failedRounds);
    cumulative('quorumd_anti_entropy_keys_repaired_total', 'Keys found different and exchanged by rounds', (s) => s.antiEntropy.keysRepaired);
    cumulative('quorumd_anti_entropy_bytes_total', 'Bytes moved by rounds started here', (s) => s.antiEntropy.bytes);
    gauge('quorumd_tombstones_waiting', 'Tombstones waiting for every member to hold them before their purge', (s) => s.tombstonesWaiting);
    cumulative('quorumd_tombstones_purged_total', 'Tombstones purged at causal stability', (s) => s.tombstonesPurged);
    gauge('quorumd_hints_queued', 'Hinted-handoff keys waiting for their replica to return', (s) => s.hints.queued);
    cumulative('quorumd_hints_delivered_total', 'Hints handed over and acknowledged', (s) => s.hints.delivered);
    cumulative('quorumd_hints_dropped_total', 'Hints dropped at the bound (anti-entropy repairs those keys)', (s) => s.hints.dropped);
    cumulative('quorumd_hints_expired_total', 'Hints expired before their replica returned', (s) => s.hints.expired);
  }

  /** An answered key-value request. */
  request(operation: Operation, consistency: string, status: number, seconds: number): void {
    this.requests.inc({ operation, consistency, outcome: outcomeOf(status) });
    if (status < 500) this.latency.observe({ operation, consistency }, seconds);
  }

  writeAcks(operation: 'put' | 'delete', acks: number): void {
    this.acks.observe({ operation }, acks);
  }

  async text(): Promise<string> {
    this.snapshot = undefined;
    try {
      return await this.registry.metrics();
    } finally {
      this.snapshot = undefined;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

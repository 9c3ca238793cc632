// Phi-accrual failure detector (Hayashibara et al. 2004, as in Akka and Cassandra): per peer, a bounded window of
// heartbeat inter-arrival times and a smoothed round-trip time, judged alive, suspect or down for /status.
import { assert } from './assert.js';

export type PeerHealth = 'alive' | 'suspect' | 'down';

export interface PeerReport {
  readonly peer: string;
  readonly state: PeerHealth;
  /** Suspicion level, 0 ≤ phi ≤ PHI_MAX (PHI_MAX for a peer never heard from). */
  readonly phi: number;
  /** Monotonic time of the last heartbeat; undefined if none arrived yet. */
  readonly lastSeenMs: number | undefined;
  /** Smoothed round-trip time; undefined until the first sample. */
  readonly rttMs: number | undefined;
}

/**
 * Every field is documented with its default and why; the defaults are a system tuned together for a LAN with
 * 500 ms heartbeats ("a cut link is noticed within about 2 s, without flapping on one lost packet"). If you
 * change heartbeatIntervalMs, scale acceptableHeartbeatPauseMs and downAfterMs with it.
 *
 * With the defaults and a steady history (jitter below the 100 ms deviation floor), after the last heartbeat:
 *   elapsed  1000 ms (one heartbeat lost)   phi ≈ 0.00001  alive
 *   elapsed  1500 ms (two heartbeats lost)  phi ≈ 0.80     alive
 *   elapsed  1706 ms                         phi = 3        suspect
 *   elapsed  1923 ms                         phi = 8        down
 *   elapsed  2000 ms                         downAfterMs    down whatever phi says
 * Right after the first heartbeat (bootstrap deviation 125 ms): suspect at 1783 ms, down at 2000 ms (the cap).
 */
export interface FailureDetectorConfig {
  /**
   * How often peers send heartbeats. Default 500 ms: four chances to hear a peer within the 2 s detection
   * target, at a negligible cost on a LAN. Also the first estimate of the interval before any was measured.
   */
  readonly heartbeatIntervalMs: number;
  /**
   * Inter-arrival samples kept per peer. Default 100 (50 s of history at 500 ms): enough for a stable mean and
   * deviation, a loss rate of a few percent shows up in it, and it is 800 bytes per peer.
   */
  readonly windowSize: number;
  /**
   * Floor on the standard deviation of the intervals. Default 100 ms (Akka's default): a LAN's measured jitter
   * is a few ms, which would make phi jump from 0 to ∞ within a few ms past the mean; the floor spreads the
   * curve so one late packet (a GC pause, a busy Wi-Fi burst) is not a failure.
   */
  readonly minStdDeviationMs: number;
  /**
   * Pause tolerated on top of the mean interval: phi is log10(2) ≈ 0.3 at mean + pause and climbs steeply
   * after it. Default 900 ms, just under two intervals: with the 100 ms floor phi stays below suspectPhi until 1.7 s of silence, so one lost heartbeat
   * (~1 s gap) leaves phi ≈ 0 and two (~1.5 s) leave it below 1, yet phi alone reaches downPhi at 1.92 s,
   * just before the downAfterMs cap.
   */
  readonly acceptableHeartbeatPauseMs: number;
  /**
   * Phi from which a peer is suspect. Default 3 (under the model, a 0.1 % chance it is still sending): an
   * early warning in /status, reached only after three heartbeats in a row are missing. Must exceed
   * log10(2) ≈ 0.301, the phi right after a heartbeat, so a peer is always alive when it has just been heard.
   */
  readonly suspectPhi: number;
  /**
   * Phi from which a peer is down. Default 8, the conviction threshold of both Cassandra and Akka cluster
   * (a 1e-8 chance of a false verdict under the model). Phi adapts: on a lossy link the window holds the long
   * gaps and down comes later, which downAfterMs bounds.
   */
  readonly downPhi: number;
  /**
   * Silence after which a peer is down whatever phi says. Default 2000 ms: the product's "a cut link is
   * noticed within about 2 s". Gaps this long are not recorded as intervals, so the silence of a cut (or a
   * reboot) does not inflate the mean and make the next cut slower to notice.
   */
  readonly downAfterMs: number;
  /**
   * Weight of a new round-trip sample in the smoothed RTT. Default 0.125, the SRTT gain of TCP (RFC 6298): a
   * single slow pong moves the figure by an eighth.
   */
  readonly rttSmoothing: number;
  /**
   * Peers tracked at once. Default 1024, far above any cluster we run (memory ~1 kB per peer). Tracking a new
   * peer when full evicts the one heard from least recently: callers forget() removed members, so a full table
   * means something fed non-members, and that must not grow memory.
   */
  readonly peersMax: number;
}

export const FAILURE_DETECTOR_DEFAULTS: FailureDetectorConfig = Object.freeze({
  heartbeatIntervalMs: 500,
  windowSize: 100,
  minStdDeviationMs: 100,
  acceptableHeartbeatPauseMs: 900,
  suspectPhi: 3,
  downPhi: 8,
  downAfterMs: 2000,
  rttSmoothing: 0.125,
  peersMax: 1024,
});

/** Cap on phi so reports stay finite (JSON has no Infinity); phi 100 already means "certainly gone". */
export const PHI_MAX = 100;

/** Beyond this z, log(1 + e^z) equals z in doubles (e^-37 < half an ulp of 37). */
const SOFTPLUS_LINEAR_FROM = 37;

interface PeerEntry {
  /** Ring buffer of inter-arrival intervals (ms); `count` of them valid, the oldest at `next` when full. */
  readonly intervalsMs: Float64Array;
  count: number;
  next: number;
  /** Mean and deviation of the window, recomputed on every sample (the window is small). */
  meanMs: number;
  stdDeviationMs: number;
  lastSeenMs: number | undefined;
  rttMs: number | undefined;
}

export class FailureDetector {
  private readonly config: FailureDetectorConfig;
  private readonly peers = new Map<string, PeerEntry>();

  constructor(config: FailureDetectorConfig = FAILURE_DETECTOR_DEFAULTS) {
    const c = config;
    assert(Number.isFinite(c.heartbeatIntervalMs) && c.heartbeatIntervalMs > 0, 'heartbeatIntervalMs is positive');
    assert(Number.isSafeInteger(c.windowSize) && c.windowSize >= 2, 'windowSize holds at least the two bootstrap samples');
    assert(Number.isFinite(c.minStdDeviationMs) && c.minStdDeviationMs > 0, 'minStdDeviationMs is positive');
    assert(Number.isFinite(c.acceptableHeartbeatPauseMs) && c.acceptableHeartbeatPauseMs >= 0, 'acceptableHeartbeatPauseMs is not negative');
    assert(c.suspectPhi > Math.log10(2), 'suspectPhi exceeds the phi right after a heartbeat');
    assert(c.suspectPhi <= c.downPhi, 'suspectPhi <= downPhi');
    assert(c.downPhi < PHI_MAX, 'downPhi is below PHI_MAX');
    assert(Number.isFinite(c.downAfterMs) && c.downAfterMs > 0, 'downAfterMs is positive');
    assert(c.rttSmoothing > 0 && c.rttSmoothing <= 1, 'rttSmoothing is in (0, 1]');
    assert(Number.isSafeInteger(c.peersMax) && c.peersMax >= 1, 'peersMax is at least 1');
    this.config = { ...config };
  }

  /** Peers currently tracked (at most peersMax). */
  get size(): number {
    return this.peers.size;
  }

  /**
   * A heartbeat from `peer` arrived at monotonic time `nowMs`. Feed heartbeats only, not every message: the
   * window learns the heartbeat cadence, and arrivals milliseconds apart during busy traffic would shrink the
   * mean until a quiet pause looked like a failure.
   */
  heartbeat(peer: string, nowMs: number): void {
    assert(Number.isFinite(nowMs), 'nowMs is finite');
    const entry = this.entry(peer);
    const last = entry.lastSeenMs;
    entry.lastSeenMs = nowMs;
    if (last === undefined) {
      // Bootstrap as Akka does: two samples one deviation either side of the expected interval (deviation a
      // quarter of it), washed out as real intervals fill the window.
      const expectedMs = this.config.heartbeatIntervalMs;
      this.record(entry, expectedMs - expectedMs / 4);
      this.record(entry, expectedMs + expectedMs / 4);
      return;
    }
    assert(nowMs >= last, 'heartbeat times come from a monotonic clock');
    const intervalMs = nowMs - last;
    // The silence of a cut or a reboot says nothing about the heartbeat cadence.
    if (intervalMs < this.config.downAfterMs) this.record(entry, intervalMs);
  }

  /** A round-trip sample (ping/pong) with `peer`. */
  rtt(peer: string, rttMs: number): void {
    assert(Number.isFinite(rttMs) && rttMs >= 0, 'rttMs is finite and not negative');
    const entry = this.entry(peer);
    const w = this.config.rttSmoothing;
    entry.rttMs = entry.rttMs === undefined ? rttMs : entry.rttMs + w * (rttMs - entry.rttMs);
  }

  /**
   * Suspicion that `peer` is gone at `nowMs`: -log10(1 - CDF(elapsed)) of a normal distribution (Akka's logistic
   * approximation) over the window, shifted by acceptableHeartbeatPauseMs. Non-decreasing in nowMs between
   * heartbeats, in [0, PHI_MAX]; PHI_MAX for a peer never heard from. A nowMs before the last heartbeat counts
   * as no time elapsed.
   */
  phi(peer: string, nowMs: number): number {
    const entry = this.peers.get(peer);
    if (entry === undefined || entry.lastSeenMs === undefined) return PHI_MAX;
    return this.phiOf(entry, entry.lastSeenMs, nowMs);
  }

  /** Down if never heard from, silent for downAfterMs, or phi ≥ downPhi; suspect if phi ≥ suspectPhi. */
  state(peer: string, nowMs: number): PeerHealth {
    return this.report(peer, nowMs).state;
  }

  report(peer: string, nowMs: number): PeerReport {
    const entry = this.peers.get(peer);
    const lastSeenMs = entry?.lastSeenMs;
    const rttMs = entry?.rttMs;
    if (entry === undefined || lastSeenMs === undefined) return { peer, state: 'down', phi: PHI_MAX, lastSeenMs, rttMs };
    const phi = this.phiOf(entry, lastSeenMs, nowMs);
    let state: PeerHealth = 'alive';
    if (nowMs - lastSeenMs >= this.config.downAfterMs || phi >= this.config.downPhi) state = 'down';
    else if (phi >= this.config.suspectPhi) state = 'suspect';
    return { peer, state, phi, lastSeenMs, rttMs };
  }

  /** Stops tracking `peer` (removed from membership); a later heartbeat starts it afresh. */
  forget(peer: string): void {
    this.peers.delete(peer);
  }

  private phiOf(entry: PeerEntry, lastSeenMs: number, nowMs: number): number {
    assert(Number.isFinite(nowMs), 'nowMs is finite');
    const elapsedMs = Math.max(0, nowMs - lastSeenMs);
    const stdMs = Math.max(entry.stdDeviationMs, this.config.minStdDeviationMs);
    const y = (elapsedMs - (entry.meanMs + this.config.acceptableHeartbeatPauseMs)) / stdMs;
    // Logistic approximation of the normal tail: 1 - CDF(y) ≈ 1 / (1 + e^z). Computed on |y| and then signed,
    // so every floating-point step is monotone in elapsedMs and phi never decreases as time passes.
    const w = Math.abs(y);
    const zAbs = w * (1.5976 + 0.070566 * (w * w));
    const z = y < 0 ? -zAbs : zAbs;
    // phi = log10(1 + e^z); linear beyond SOFTPLUS_LINEAR_FROM so e^z never overflows.
    const lnTail = z >= SOFTPLUS_LINEAR_FROM ? z : Math.log1p(Math.exp(z));
    return Math.min(PHI_MAX, lnTail / Math.LN10);
  }

  private entry(peer: string): PeerEntry {
    const existing = this.peers.get(peer);
    if (existing !== undefined) return existing;
    if (this.peers.size >= this.config.peersMax) this.evictLeastRecentlySeen();
    const entry: PeerEntry = {
      intervalsMs: new Float64Array(this.config.windowSize),
      count: 0,
      next: 0,
      meanMs: this.config.heartbeatIntervalMs,
      stdDeviationMs: 0,
      lastSeenMs: undefined,
      rttMs: undefined,
    };
    this.peers.set(peer, entry);
    assert(this.peers.size <= this.config.peersMax, 'at most peersMax peers are tracked');
    return entry;
  }

  private evictLeastRecentlySeen(): void {
    let victim: string | undefined;
    let victimSeenMs = Infinity;
    for (const [peer, entry] of this.peers) {
      const seenMs = entry.lastSeenMs ?? -Infinity;
      if (victim === undefined || seenMs < victimSeenMs) {
        victim = peer;
        victimSeenMs = seenMs;
      }
    }
    assert(victim !== undefined, 'a full table has a peer to evict');
    this.peers.delete(victim);
  }

  private record(entry: PeerEntry, intervalMs: number): void {
    const size = entry.intervalsMs.length;
    entry.intervalsMs[entry.next] = intervalMs;
    entry.next = (entry.next + 1) % size;
    if (entry.count < size) entry.count += 1;
    // Two passes over at most windowSize samples: exact, and no running sums to drift over days.
    let sum = 0;
    for (let i = 0; i < entry.count; i += 1) sum += entry.intervalsMs[i] ?? 0;
    const mean = sum / entry.count;
    let squares = 0;
    for (let i = 0; i < entry.count; i += 1) {
      const d = (entry.intervalsMs[i] ?? 0) - mean;
      squares += d * d;
    }
    entry.meanMs = mean;
    entry.stdDeviationMs = Math.sqrt(squares / entry.count);
  }
}

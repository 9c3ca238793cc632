// Phi-accrual failure detector (src/core/failure-detector.ts): the LAN scenarios from the product issue (one lost
// heartbeat is no failure, a cut is down within 2 s) and the laws (phi monotone, finite, states only escalate).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/core/assert.js';
import {
  FAILURE_DETECTOR_DEFAULTS,
  FailureDetector,
  type FailureDetectorConfig,
  type PeerHealth,
  PHI_MAX,
} from '../../src/core/failure-detector.js';

const D = FAILURE_DETECTOR_DEFAULTS;
const RANK: Record<PeerHealth, number> = { alive: 0, suspect: 1, down: 2 };

/** Deterministic jitter in [-maxMs, maxMs] for heartbeat k (a fixed scramble, no randomness needed). */
function jitterMs(k: number, maxMs: number): number {
  return (((k * 7919) % 201) / 100 - 1) * maxMs;
}

/**
 * Heartbeats every 500 ms ± jitterMaxMs from startMs, skipping the indexes in `lost`; returns the arrival
 * times of the heartbeats that were delivered.
 */
function feed(fd: FailureDetector, peer: string, opts: { count: number; startMs?: number; jitterMaxMs?: number; lost?: ReadonlySet<number> }): number[] {
  const startMs = opts.startMs ?? 10_000;
  const arrivals: number[] = [];
  for (let k = 0; k < opts.count; k += 1) {
    if (opts.lost?.has(k)) continue;
    const t = startMs + k * D.heartbeatIntervalMs + jitterMs(k, opts.jitterMaxMs ?? 0);
    fd.heartbeat(peer, t);
    arrivals.push(t);
  }
  return arrivals;
}

/** First whole ms after `lastMs` at which the peer is suspect-or-worse and down (scanning up to 5 s). */
function transitions(fd: FailureDetector, peer: string, lastMs: number): { suspectMs: number; downMs: number } {
  let suspectMs = Infinity;
  let downMs = Infinity;
  for (let e = 0; e <= 5000; e += 1) {
    const s = fd.state(peer, lastMs + e);
    if (s !== 'alive' && suspectMs === Infinity) suspectMs = e;
    if (s === 'down') {
      downMs = e;
      break;
    }
  }
  return { suspectMs, downMs };
}

function last(xs: readonly number[]): number {
  const x = xs[xs.length - 1];
  if (x === undefined) throw new Error('empty');
  return x;
}

describe('FailureDetector on a LAN with the defaults (500 ms heartbeats)', () => {
  it.each([0, 5, 20, 50])('stays alive with steady heartbeats ±%i ms: phi near 0 up to each next arrival', (jitter) => {
    const fd = new FailureDetector();
    const arrivals = feed(fd, 'p', { count: 300, jitterMaxMs: jitter });
    // A fresh detector replaying the same arrivals, judged the instant before each next one lands.
    const replay = new FailureDetector();
    let maxPhi = 0;
    for (let i = 0; i + 1 < arrivals.length; i += 1) {
      replay.heartbeat('p', arrivals[i] ?? 0);
      const next = arrivals[i + 1] ?? 0;
      expect(replay.state('p', next)).toBe('alive');
      maxPhi = Math.max(maxPhi, replay.phi('p', next));
    }
    expect(maxPhi).toBeLessThan(0.01);
  });

  it('does not suspect a peer when one heartbeat is lost (±20 ms jitter): max phi stays near 0', () => {
    const fd = new FailureDetector();
    const lost = new Set([150]);
    const arrivals = feed(fd, 'p', { count: 300, jitterMaxMs: 20, lost });
    // The gap around the lost heartbeat is ~1000 ms; judge every ms of it, up to the next arrival.
    const before = 10_000 + 149 * 500 + jitterMs(149, 20);
    const after = 10_000 + 151 * 500 + jitterMs(151, 20);
    expect(arrivals).toContain(before);
    const probe = new FailureDetector();
    feed(probe, 'p', { count: 150, jitterMaxMs: 20 });
    let maxPhi = 0;
    for (let t = before; t <= after; t += 1) {
      expect(probe.state('p', t)).toBe('alive');
      maxPhi = Math.max(maxPhi, probe.phi('p', t));
    }
    expect(maxPhi).toBeLessThan(0.001);
    // Recorded as an interval, the 1000 ms gap leaves the peer alive afterwards too.
    expect(fd.state('p', last(arrivals) + 1000)).toBe('alive');
  });

  it('keeps a peer alive through two lost heartbeats (~1.5 s gap), worst jitter 50 ms', () => {
    const fd = new FailureDetector();
    const arrivals = feed(fd, 'p', { count: 200, jitterMaxMs: 50 });
    const t = last(arrivals);
    expect(fd.state('p', t + 1500 + 2 * 50)).toBe('alive');
    expect(fd.phi('p', t + 1500)).toBeLessThan(1);
    expect(fd.phi('p', t + 1600)).toBeLessThan(D.suspectPhi);
  });

  it('notices a cut: suspect after ~1.7 s of silence, down by phi before the 2 s cap', () => {
    const fd = new FailureDetector();
    const t = last(feed(fd, 'p', { count: 200, jitterMaxMs: 20 }));
    const { suspectMs, downMs } = transitions(fd, 'p', t);
    expect(suspectMs).toBeGreaterThan(1600);
    expect(suspectMs).toBeLessThan(1800);
    expect(downMs).toBeGreaterThan(suspectMs);
    expect(downMs).toBeLessThanOrEqual(D.downAfterMs);
    expect(fd.phi('p', t + downMs)).toBeGreaterThanOrEqual(D.downPhi);
    expect(fd.state('p', t + D.downAfterMs)).toBe('down');
    expect(fd.state('p', t + 60_000)).toBe('down');
  });

  it('is down at downAfterMs whatever phi says (a history of long gaps)', () => {
    const fd = new FailureDetector();
    let t = 0;
    for (let k = 0; k < 100; k += 1) {
      t += k % 2 === 0 ? 300 : 1900; // mean 1100 ms, deviation 800 ms: phi stays low for a long time
      fd.heartbeat('p', t);
    }
    expect(fd.phi('p', t + D.downAfterMs)).toBeLessThan(D.suspectPhi);
    expect(fd.state('p', t + D.downAfterMs - 1)).toBe('alive');
    expect(fd.state('p', t + D.downAfterMs)).toBe('down');
  });

  it('judges a peer alive again as soon as a heartbeat returns after a cut', () => {
    const fd = new FailureDetector();
    const t = last(feed(fd, 'p', { count: 200, jitterMaxMs: 20 }));
    expect(fd.state('p', t + 5000)).toBe('down');
    fd.heartbeat('p', t + 5000);
    const r = fd.report('p', t + 5000);
    expect(r.state).toBe('alive');
    expect(r.lastSeenMs).toBe(t + 5000);
    expect(fd.state('p', t + 5000 + 1000)).toBe('alive');
  });

  it('does not record a gap of downAfterMs or more: after a long outage the timings are unchanged', () => {
    const baseline = new FailureDetector();
    const t0 = last(feed(baseline, 'p', { count: 200, jitterMaxMs: 20 }));
    const before = transitions(baseline, 'p', t0);

    const fd = new FailureDetector();
    const t1 = last(feed(fd, 'p', { count: 200, jitterMaxMs: 20 }));
    fd.heartbeat('p', t1 + 30_000); // back after 30 s (a reboot, a cut link)
    const after = transitions(fd, 'p', t1 + 30_000);
    expect(after).toEqual(before);

    // Whereas shorter gaps are history: a link that often loses two heartbeats gets more slack.
    const lossy = new FailureDetector();
    let t = 0;
    for (let k = 0; k < 100; k += 1) {
      t += k % 4 === 0 ? 1500 : 500;
      lossy.heartbeat('p', t);
    }
    const lenient = transitions(lossy, 'p', t);
    expect(lenient.suspectMs).toBeGreaterThan(before.suspectMs);
    expect(lenient.downMs).toBeLessThanOrEqual(D.downAfterMs);
  });

  it('bootstraps from the first heartbeat: alive through two lost heartbeats, down by 2 s', () => {
    const fd = new FailureDetector();
    fd.heartbeat('p', 0);
    expect(fd.state('p', 0)).toBe('alive');
    expect(fd.state('p', 1000)).toBe('alive');
    expect(fd.state('p', 1550)).toBe('alive');
    const { suspectMs, downMs } = transitions(fd, 'p', 0);
    expect(suspectMs).toBeGreaterThan(1550);
    expect(downMs).toBe(D.downAfterMs);
  });
});

describe('FailureDetector bookkeeping', () => {
  it('reports a peer never heard from as down with phi PHI_MAX, and the report is valid JSON', () => {
    const fd = new FailureDetector();
    expect(fd.state('nobody', 123)).toBe('down');
    expect(fd.phi('nobody', 123)).toBe(PHI_MAX);
    const r = fd.report('nobody', 123);
    expect(r).toEqual({ peer: 'nobody', state: 'down', phi: PHI_MAX, lastSeenMs: undefined, rttMs: undefined });
    expect(fd.size).toBe(0); // asking does not start tracking
    expect(JSON.parse(JSON.stringify(r))).toEqual({ peer: 'nobody', state: 'down', phi: PHI_MAX });
  });

  it('caps phi at PHI_MAX after a very long silence, finite for JSON', () => {
    const fd = new FailureDetector();
    feed(fd, 'p', { count: 10, startMs: 0 });
    expect(fd.phi('p', 1e15)).toBe(PHI_MAX);
    expect(JSON.stringify(fd.report('p', 1e15))).toContain(`"phi":${PHI_MAX}`);
  });

  it('smooths round-trip times with an EWMA of weight rttSmoothing, the first sample taken as is', () => {
    const fd = new FailureDetector();
    fd.rtt('p', 10);
    expect(fd.report('p', 0).rttMs).toBe(10);
    fd.rtt('p', 18);
    expect(fd.report('p', 0).rttMs).toBe(10 + 0.125 * 8);
    for (let i = 0; i < 100; i += 1) fd.rtt('p', 4);
    expect(fd.report('p', 0).rttMs).toBeCloseTo(4, 3);
    // A round trip alone is no heartbeat: still never heard from.
    expect(fd.report('p', 0)).toMatchObject({ state: 'down', lastSeenMs: undefined });
    const last = new FailureDetector({ ...D, rttSmoothing: 1 });
    last.rtt('q', 3);
    last.rtt('q', 7);
    expect(last.report('q', 0).rttMs).toBe(7);
  });

  it('forgets a peer: it is unknown again and a later heartbeat bootstraps afresh', () => {
    const fd = new FailureDetector();
    feed(fd, 'p', { count: 5 });
    fd.rtt('p', 3);
    fd.forget('p');
    expect(fd.size).toBe(0);
    expect(fd.report('p', 20_000)).toEqual({ peer: 'p', state: 'down', phi: PHI_MAX, lastSeenMs: undefined, rttMs: undefined });
    fd.forget('p'); // idempotent
    fd.heartbeat('p', 50_000);
    expect(fd.report('p', 50_000)).toMatchObject({ state: 'alive', lastSeenMs: 50_000, rttMs: undefined });
  });

  it('tracks at most peersMax peers, evicting the one heard from least recently', () => {
    const fd = new FailureDetector({ ...D, peersMax: 3 });
    fd.heartbeat('a', 30);
    fd.heartbeat('b', 10);
    fd.heartbeat('c', 20);
    fd.heartbeat('d', 40);
    expect(fd.size).toBe(3);
    expect(fd.report('b', 40).lastSeenMs).toBeUndefined();
    expect(fd.report('a', 40).lastSeenMs).toBe(30);
    fd.rtt('e', 1); // never heard from: evicted first next time
    expect(fd.report('c', 40).lastSeenMs).toBeUndefined();
    fd.heartbeat('f', 50);
    expect(fd.report('e', 50).rttMs).toBeUndefined();
    expect(fd.size).toBe(3);
  });

  it('treats a query before the last heartbeat as no time elapsed', () => {
    const fd = new FailureDetector();
    feed(fd, 'p', { count: 10, startMs: 0 });
    expect(fd.phi('p', 0)).toBe(fd.phi('p', 4500));
    expect(fd.state('p', 0)).toBe('alive');
  });

  it('asserts a monotonic clock, finite times and sane samples', () => {
    const fd = new FailureDetector();
    fd.heartbeat('p', 1000);
    expect(() => fd.heartbeat('p', 999)).toThrow(AssertionError);
    expect(() => fd.heartbeat('p', NaN)).toThrow(AssertionError);
    expect(() => fd.phi('p', Infinity)).toThrow(AssertionError);
    expect(() => fd.rtt('p', -1)).toThrow(AssertionError);
    expect(() => fd.rtt('p', NaN)).toThrow(AssertionError);
    fd.heartbeat('p', 1000); // the same instant twice is fine
  });

  it.each<[string, Partial<FailureDetectorConfig>]>([
    ['zero interval', { heartbeatIntervalMs: 0 }],
    ['window of one', { windowSize: 1 }],
    ['fractional window', { windowSize: 2.5 }],
    ['no deviation floor', { minStdDeviationMs: 0 }],
    ['negative pause', { acceptableHeartbeatPauseMs: -1 }],
    ['suspect below the phi of a fresh heartbeat', { suspectPhi: 0.3 }],
    ['suspect above down', { suspectPhi: 9, downPhi: 8 }],
    ['down at PHI_MAX', { downPhi: PHI_MAX }],
    ['no cap', { downAfterMs: Infinity }],
    ['rtt weight 0', { rttSmoothing: 0 }],
    ['rtt weight above 1', { rttSmoothing: 1.5 }],
    ['no peers', { peersMax: 0 }],
  ])('rejects a config with %s', (_name, patch) => {
    expect(() => new FailureDetector({ ...D, ...patch })).toThrow(AssertionError);
  });

  it('documents a frozen default config', () => {
    expect(Object.isFrozen(FAILURE_DETECTOR_DEFAULTS)).toBe(true);
    expect(FAILURE_DETECTOR_DEFAULTS).toEqual({
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
  });
});

// Arbitrary valid configurations, so the laws hold for any tuning, not just the defaults.
const configArb: fc.Arbitrary<FailureDetectorConfig> = fc
  .record({
    heartbeatIntervalMs: fc.double({ min: 1, max: 10_000, noNaN: true }),
    windowSize: fc.integer({ min: 2, max: 50 }),
    minStdDeviationMs: fc.double({ min: 0.01, max: 2000, noNaN: true }),
    acceptableHeartbeatPauseMs: fc.double({ min: 0, max: 10_000, noNaN: true }),
    suspectPhi: fc.double({ min: 0.31, max: 60, noNaN: true }),
    downPhiExtra: fc.double({ min: 0, max: 39, noNaN: true }),
    downAfterMs: fc.double({ min: 1, max: 60_000, noNaN: true }),
    rttSmoothing: fc.double({ min: 0.001, max: 1, noNaN: true }),
    peersMax: fc.integer({ min: 1, max: 4 }),
  })
  .map(({ downPhiExtra, ...c }) => ({ ...c, downPhi: c.suspectPhi + downPhiExtra }));

const configOrDefaultsArb = fc.oneof(fc.constant(FAILURE_DETECTOR_DEFAULTS), configArb);

/** A heartbeat history: a start time and the intervals that follow (including zero and long gaps). */
const historyArb = fc.record({
  startMs: fc.double({ min: 0, max: 1e9, noNaN: true }),
  intervalsMs: fc.array(
    fc.oneof(
      fc.double({ min: 0, max: 3000, noNaN: true }),
      fc.integer({ min: 480, max: 520 }),
      fc.constantFrom(0, 1000, 1500, 1999.999, 2000, 100_000),
    ),
    { maxLength: 120 },
  ),
});

function replay(config: FailureDetectorConfig, history: { startMs: number; intervalsMs: readonly number[] }): { fd: FailureDetector; lastMs: number } {
  const fd = new FailureDetector(config);
  let t = history.startMs;
  fd.heartbeat('p', t);
  for (const interval of history.intervalsMs) {
    t += interval;
    fd.heartbeat('p', t);
  }
  return { fd, lastMs: t };
}

const elapsedArb = fc.oneof(
  fc.double({ min: 0, max: 5000, noNaN: true }),
  fc.double({ min: 0, max: 1e12, noNaN: true }),
  fc.integer({ min: 0, max: 3000 }),
);

describe('FailureDetector laws', () => {
  it('phi is non-decreasing in elapsed time for a fixed history', () => {
    fc.assert(
      fc.property(configOrDefaultsArb, historyArb, elapsedArb, elapsedArb, (config, history, e1, e2) => {
        const { fd, lastMs } = replay(config, history);
        const [early, late] = e1 <= e2 ? [e1, e2] : [e2, e1];
        expect(fd.phi('p', lastMs + early)).toBeLessThanOrEqual(fd.phi('p', lastMs + late));
      }),
      { numRuns: 500 },
    );
  });

  it('phi is non-decreasing over a fine sweep of elapsed time (no floating-point wobble)', () => {
    fc.assert(
      fc.property(configOrDefaultsArb, historyArb, fc.double({ min: 0, max: 5000, noNaN: true }), fc.double({ min: 1e-9, max: 10, noNaN: true }), (config, history, fromMs, stepMs) => {
        const { fd, lastMs } = replay(config, history);
        let previous = -1;
        for (let i = 0; i < 200; i += 1) {
          const phi = fd.phi('p', lastMs + fromMs + i * stepMs);
          expect(phi).toBeGreaterThanOrEqual(previous);
          previous = phi;
        }
      }),
      { numRuns: 200 },
    );
  });

  it('phi is finite and within [0, PHI_MAX], also for queries before the last heartbeat', () => {
    fc.assert(
      fc.property(configOrDefaultsArb, historyArb, fc.double({ min: -1e12, max: 1e15, noNaN: true }), (config, history, offsetMs) => {
        const { fd, lastMs } = replay(config, history);
        const phi = fd.phi('p', lastMs + offsetMs);
        expect(Number.isFinite(phi)).toBe(true);
        expect(phi).toBeGreaterThanOrEqual(0);
        expect(phi).toBeLessThanOrEqual(PHI_MAX);
      }),
      { numRuns: 500 },
    );
  });

  it('without heartbeats the state only escalates alive → suspect → down, and is down from downAfterMs on', () => {
    fc.assert(
      fc.property(configOrDefaultsArb, historyArb, fc.array(elapsedArb, { minLength: 1, maxLength: 30 }), (config, history, offsets) => {
        const { fd, lastMs } = replay(config, history);
        expect(fd.state('p', lastMs)).toBe('alive'); // just heard from
        let previous = RANK.alive;
        for (const e of [...offsets].sort((a, b) => a - b)) {
          const state = fd.state('p', lastMs + e);
          expect(RANK[state]).toBeGreaterThanOrEqual(previous);
          if (e >= config.downAfterMs) expect(state).toBe('down');
          previous = RANK[state];
        }
      }),
      { numRuns: 500 },
    );
  });

  it('any peer is alive at the instant a heartbeat arrives, whatever came before', () => {
    fc.assert(
      fc.property(configOrDefaultsArb, historyArb, elapsedArb, (config, history, silenceMs) => {
        const { fd, lastMs } = replay(config, history);
        fd.heartbeat('p', lastMs + silenceMs);
        expect(fd.state('p', lastMs + silenceMs)).toBe('alive');
        expect(fd.report('p', lastMs + silenceMs).lastSeenMs).toBe(lastMs + silenceMs);
      }),
      { numRuns: 300 },
    );
  });

  it('never tracks more than peersMax peers, whatever the sequence of calls', () => {
    const callArb = fc.oneof(
      fc.record({ op: fc.constant('heartbeat' as const), peer: fc.integer({ min: 0, max: 9 }), dtMs: fc.nat(3000) }),
      fc.record({ op: fc.constant('rtt' as const), peer: fc.integer({ min: 0, max: 9 }), dtMs: fc.nat(50) }),
      fc.record({ op: fc.constant('forget' as const), peer: fc.integer({ min: 0, max: 9 }), dtMs: fc.constant(0) }),
    );
    fc.assert(
      fc.property(configArb, fc.array(callArb, { maxLength: 100 }), (config, calls) => {
        const fd = new FailureDetector(config);
        let t = 0;
        for (const call of calls) {
          t += call.dtMs;
          const peer = `peer-${call.peer}`;
          if (call.op === 'heartbeat') fd.heartbeat(peer, t);
          else if (call.op === 'rtt') fd.rtt(peer, call.dtMs);
          else fd.forget(peer);
          expect(fd.size).toBeLessThanOrEqual(config.peersMax);
        }
      }),
    );
  });
});

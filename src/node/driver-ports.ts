// The outside world of the device driver (Runtime, MembershipService, HintBook): clocks, timers and a random
// source, injected so the daemon passes the real ones and the simulator virtual time and a seeded generator.
import { GarbageCollector } from './memory.js';

/** A timer set by a TimerPort; opaque to its users. */
export type TimerHandle = unknown;

/** setTimeout/clearTimeout: the real ones keep the process alive only when asked to (`keepAlive`). */
export interface TimerPort {
  set(run: () => void, delayMs: number, keepAlive?: boolean): TimerHandle;
  clear(handle: TimerHandle): void;
}

export interface Clocks {
  /** Wall clock, ms since the epoch (may step). */
  readonly wallMs: () => number;
  /** Monotonic clock, ms (never steps back). */
  readonly monotonicMs: () => number;
}

/** Gives memory back after bulk work (src/node/memory.ts); a no-op where no heap is worth collecting. */
export interface MemoryPort {
  request(): void;
  check(growthBytes: number): void;
  stop(): void;
}

/** Everything time- and chance-dependent a driver needs. */
export interface DriverEnv {
  readonly clocks: Clocks;
  readonly timers: TimerPort;
  /** Uniform random numbers in [0, 1). */
  readonly random: () => number;
}

export const REAL_TIMERS: TimerPort = {
  set: (run, delayMs, keepAlive) => {
    const timer = setTimeout(run, delayMs);
    if (keepAlive !== true) timer.unref();
    return timer;
  },
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export const REAL_CLOCKS: Clocks = { wallMs: () => Date.now(), monotonicMs: () => performance.now() };

export const REAL_RANDOM: () => number = () => Math.random();

/** The process's clocks, timers and Math.random: what the daemon runs with. */
export const REAL_ENV: DriverEnv = { clocks: REAL_CLOCKS, timers: REAL_TIMERS, random: REAL_RANDOM };

/** A collector of V8 garbage after bulk work, at most every `minIntervalMs`. */
export function realMemory(minIntervalMs: number, monotonicMs: () => number): MemoryPort {
  return new GarbageCollector(minIntervalMs, monotonicMs);
}

export const NO_MEMORY: MemoryPort = { request: () => undefined, check: () => undefined, stop: () => undefined };

/** A promise that resolves after `ms` on `timers` (see TimerPort.set for `keepAlive`). */
export function sleepOn(timers: TimerPort, ms: number, keepAlive = false): Promise<void> {
  return new Promise((resolve) => {
    timers.set(resolve, ms, keepAlive);
  });
}

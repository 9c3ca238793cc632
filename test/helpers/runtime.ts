// A Runtime (src/node/runtime.ts) on a memory store with small test settings: the options every runtime-level
// test shares, each overridable.
import { NO_CONFIG } from '../../src/core/membership.js';
import { DotAllocator } from '../../src/node/dots.js';
import { MembershipService, type MembershipOptions } from '../../src/node/membership.js';
import { Runtime, type RuntimeLogger, type RuntimeOptions } from '../../src/node/runtime.js';
import { MemoryStore } from '../../src/storage/memory.js';

export const silentLog: RuntimeLogger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

/** A runtime for `self` on a fresh MemoryStore (or `overrides.store`), dots under `actor` (default `self`). */
export async function testRuntime(
  self: string,
  overrides: Partial<Omit<RuntimeOptions, 'self' | 'dots'>> & { actor?: string } = {},
): Promise<{ runtime: Runtime; store: MemoryStore }> {
  const { actor, ...rest } = overrides;
  const store = (rest.store as MemoryStore | undefined) ?? new MemoryStore();
  const runtime = new Runtime({
    self,
    store,
    dots: await DotAllocator.open(store, actor ?? self, 64),
    config: NO_CONFIG,
    acceptor: undefined,
    requestTimeoutMs: 3_000,
    transferIdleMs: 10_000,
    transferBatchRecords: 100,
    transferBatchBytes: 1_000_000,
    opsInFlightMax: 100,
    opIdBase: 0,
    storeId: `store-${self}`,
    legacySeat: false,
    antiEntropy: { intervalMs: 1_000, bytesPerSec: 1e9, requestTimeoutMs: 5_000, tombstoneGraceMs: 0 },
    hints: { hintsMax: 100, hintTtlMs: 3_600_000 },
    log: silentLog,
    ...rest,
  });
  return { runtime, store };
}

/** A MembershipService for device A of `runtime` with test settings (store-A, autoAdmit, 5 voters at most); `overrides` as each test needs. */
export function testMembership(runtime: Runtime, overrides: Partial<MembershipOptions> = {}): MembershipService {
  return new MembershipService({
    runtime,
    storeId: 'store-A',
    send: () => true,
    log: silentLog,
    autoAdmit: true,
    maxVoters: 5,
    jointTakeoverMs: 60_000,
    changeAttemptsMax: 3,
    addrsOf: () => [],
    isAlive: () => true,
    opIdBase: 1_000,
    ...overrides,
  });
}

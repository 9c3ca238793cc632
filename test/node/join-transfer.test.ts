// The runtime's "receiving" state of a newly admitted device (META_JOIN_TRANSFER): it ends when the admission's
// data arrives, and also when that transfer makes no progress for transferIdleMs (issue 11 #8), after which
// ordinary anti-entropy rounds fill the device and it answers rounds again.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SyncMessage } from '../../src/core/anti-entropy.js';
import { MerkleDigest } from '../../src/core/digest.js';
import { type MembershipConfig, NO_CONFIG } from '../../src/core/membership.js';
import { DotAllocator } from '../../src/node/dots.js';
import { META_JOIN_TRANSFER, Runtime, type RuntimeLogger } from '../../src/node/runtime.js';
import { MemoryStore } from '../../src/storage/memory.js';

const silent: RuntimeLogger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
const TRANSFER_IDLE_MS = 10_000;

function learnerConfig(): MembershipConfig {
  return {
    clusterId: 'c',
    epoch: 2,
    voters: [{ peerId: 'A', addrs: [] }, { peerId: 'B', addrs: [] }],
    learners: [{ peerId: 'L', addrs: [], store: 'store-L' }],
    removed: [],
    previousVoters: [],
  };
}

describe('admission data transfer of a learner', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a stalled transfer ends the receiving state after transferIdleMs: the learner answers rounds again', async () => {
    let now = 0;
    const store = new MemoryStore();
    const dots = await DotAllocator.open(store, 'L', 64);
    const runtime = new Runtime({
      self: 'L',
      store,
      dots,
      config: NO_CONFIG,
      acceptor: undefined,
      requestTimeoutMs: 3_000,
      transferIdleMs: TRANSFER_IDLE_MS,
      transferBatchRecords: 100,
      transferBatchBytes: 1_000_000,
      opsInFlightMax: 100,
      opIdBase: 0,
      storeId: 'store-L',
      legacySeat: false,
      antiEntropy: { intervalMs: 1_000, bytesPerSec: 1e9, requestTimeoutMs: 5_000, tombstoneGraceMs: 0 },
      hints: { hintsMax: 100, hintTtlMs: 3_600_000 },
      log: silent,
      random: () => 0.5,
      wallClockMs: () => 1_700_000_000_000 + now,
      monotonicMs: () => now,
    });
    const sent: Array<{ to: string; msg: SyncMessage }> = [];
    runtime.attachTransport({ send: () => true, isConnected: () => true });
    runtime.attachSync({ send: (to, msg) => (sent.push({ to, msg }), true) }, () => true);
    // Admitted as a learner; the admission's push never arrives (its coordinator failed, the link dropped).
    runtime.adoptConfig(learnerConfig());
    await vi.advanceTimersByTimeAsync(0);
    expect(runtime.joinTransferPending).toBe(true);
    expect(store.getMeta(META_JOIN_TRANSFER)).toBe('pending');

    const digestFromA = (session: number): SyncMessage => ({ type: 'digest', session, epoch: 2, root: new MerkleDigest().root(), keys: 0, level: 0, nodes: [0] });
    const answerTo = (session: number): SyncMessage | undefined => sent.find((s) => s.to === 'A' && s.msg.session === session)?.msg;
    runtime.receiveSync('A', digestFromA(1));
    await vi.advanceTimersByTimeAsync(0);
    expect(answerTo(1)?.type).toBe('refused'); // still waiting for the push: refusing is right

    for (let i = 0; i < 30; i++) {
      now += 1_000; // 30 s without any data: three times transferIdleMs
      await vi.advanceTimersByTimeAsync(1_000);
    }
    expect(runtime.joinTransferPending).toBe(false);
    expect(store.getMeta(META_JOIN_TRANSFER)).toBe('done');
    runtime.receiveSync('A', digestFromA(2));
    await vi.advanceTimersByTimeAsync(0);
    expect(answerTo(2)?.type).toBe('digestReply');
    // And its own rounds run (with the voters), so ordinary rounds fill it.
    expect(sent.some((s) => s.msg.type === 'digest')).toBe(true);
    runtime.stop();
  });
});

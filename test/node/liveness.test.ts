// Liveness (src/node/liveness.ts): heartbeats out, health from the failure detector, hanging up on silent peers,
// and the auto-remove policy's IO (one proposal per period, only from the first alive voter).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FAILURE_DETECTOR_DEFAULTS } from '../../src/core/failure-detector.js';
import type { MembershipConfig } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { Liveness } from '../../src/node/liveness.js';
import { createLogger } from '../../src/node/log.js';

const AFTER_MS = 60_000;

function config(voters: string[]): MembershipConfig {
  return { epoch: 3, voters: voters.map((peerId) => ({ peerId, addrs: [] })), learners: [], removed: [], previousVoters: [] } as unknown as MembershipConfig;
}

function setup(self: string, connected: string[], voters = ['a', 'b', 'c']) {
  const sent: Array<{ to: string; msg: Message }> = [];
  const hungUp: string[] = [];
  const removed: string[] = [];
  const live = new Set(connected);
  const liveness = new Liveness({
    self,
    transport: {
      send: (to, msg) => {
        sent.push({ to, msg });
        return true;
      },
      isConnected: (peer) => live.has(peer),
      connectedPeers: () => [...live],
      hangUp: async (peer) => {
        hungUp.push(peer);
        live.delete(peer);
      },
    },
    local: { config: config(voters), storeId: 'S' },
    log: createLogger('silent'),
    autoRemoveAfterMs: AFTER_MS,
    remove: async (peer) => {
      removed.push(peer);
    },
  });
  for (const peer of connected) liveness.connected(peer);
  /** One heartbeat interval: every connected peer's heartbeat arrives, then ours go out. */
  const interval = (alive: readonly string[]): void => {
    vi.advanceTimersByTime(1_000);
    for (const peer of alive) liveness.heartbeat(peer, { type: 'heartbeat', opId: 1, epoch: 3, store: 'T' });
    liveness.tick();
  };
  return { liveness, sent, hungUp, removed, interval };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['performance', 'Date'], now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Liveness', () => {
  it('greets a new connection with a heartbeat carrying the epoch and store, and counts it alive until one is due', () => {
    const { liveness, sent } = setup('a', ['b']);
    expect(sent).toEqual([{ to: 'b', msg: { type: 'heartbeat', opId: 1, epoch: 3, store: 'S' } }]);
    expect(liveness.isAlive('b')).toBe(true);
    expect(liveness.isAlive('c')).toBe(false); // not connected
    expect(liveness.isAlive('a')).toBe(true); // itself
  });

  it('hangs up on a connected peer that went silent', () => {
    const { hungUp, interval } = setup('a', ['b']);
    for (let i = 0; i * 1_000 < FAILURE_DETECTOR_DEFAULTS.downAfterMs + 1_000; i++) interval([]);
    expect(hungUp).toEqual(['b']);
  });

  it('proposes removing a voter down for autoRemoveAfterMs, once per period', () => {
    const { removed, interval } = setup('a', ['b']);
    for (let i = 0; i < 60; i++) interval(['b']);
    expect(removed).toEqual([]);
    interval(['b']);
    expect(removed).toEqual(['c']);
    for (let i = 0; i < 59; i++) interval(['b']);
    expect(removed).toEqual(['c']);
    interval(['b']);
    expect(removed).toEqual(['c', 'c']);
  });

  it('leaves the proposal to the first alive voter by peer ID', () => {
    const { removed, interval } = setup('b', ['a']);
    for (let i = 0; i < 70; i++) interval(['a']);
    expect(removed).toEqual([]);
  });
});

// The join loop (src/node/join.ts) on injected timers: it asks the connected devices until this store holds a
// seat, pauses between rounds on the TimerPort it is given, wakes early for a new peer, and never asks with a
// store that belongs to an earlier seat.
import { describe, expect, it } from 'vitest';
import type { MembershipConfig } from '../../src/core/membership.js';
import type { TimerPort } from '../../src/node/driver-ports.js';
import { Joiner } from '../../src/node/join.js';
import type { Runtime } from '../../src/node/runtime.js';

const RETRY_MS = 50;
const TIMEOUT_MS = 7;

/** Timers fired by hand: `fire()` runs the pending ones in order. */
function manualTimers(): TimerPort & { pending: () => number; delays: number[]; fire: () => void } {
  const timers = new Map<number, () => void>();
  let next = 0;
  const delays: number[] = [];
  return {
    set: (run, delayMs) => {
      next += 1;
      timers.set(next, run);
      delays.push(delayMs);
      return next;
    },
    clear: (handle) => {
      timers.delete(handle as number);
    },
    pending: () => timers.size,
    delays,
    fire: () => {
      const due = [...timers.entries()];
      timers.clear();
      for (const [, run] of due) run();
    },
  };
}

/** Lets the loop's promise continuations run. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(opts: { keys?: number; answer?: (member: string) => 'seat' | 'refuse' } = {}) {
  let seated = false;
  const asked: Array<{ member: string; timeoutMs: number }> = [];
  const timers = manualTimers();
  const config = { epoch: 0, voters: [], learners: [], removed: [], previousVoters: [] } as unknown as MembershipConfig;
  const runtime = { config, core: { seated: () => seated } } as unknown as Pick<Runtime, 'config' | 'core'>;
  const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
  const joiner = new Joiner({
    self: 'me',
    dataDir: '/tmp/none',
    joinAddrs: [],
    transport: { connectedPeers: () => ['a', 'b'], dial: () => Promise.reject(new Error('no dialing here')) },
    runtime,
    store: { stats: () => ({ totalKeys: opts.keys ?? 0 }) },
    membership: {
      requestJoin: async (member, _addrs, timeoutMs) => {
        asked.push({ member, timeoutMs });
        if ((opts.answer ?? (() => 'refuse'))(member) === 'seat') seated = true;
        else throw new Error('waiting for approval by an operator');
      },
    },
    log: silent,
    listenAddrs: () => [],
    stopping: () => false,
    timers,
    retryMs: RETRY_MS,
    timeoutMs: TIMEOUT_MS,
  });
  return { joiner, asked, timers };
}

describe('Joiner', () => {
  it('asks every connected device, pauses on the injected timers, and asks again after the pause', async () => {
    const { joiner, asked, timers } = setup();
    joiner.start(true);
    await flush();
    expect(asked).toEqual([
      { member: 'a', timeoutMs: TIMEOUT_MS },
      { member: 'b', timeoutMs: TIMEOUT_MS },
    ]);
    expect(joiner.state).toBe('pending');
    expect(timers.pending()).toBe(1);
    expect(timers.delays).toEqual([RETRY_MS]);
    timers.fire();
    await flush();
    expect(asked.map((a) => a.member)).toEqual(['a', 'b', 'a', 'b']);
  });

  it('stops asking once a member seats this store', async () => {
    const { joiner, asked, timers } = setup({ answer: (member) => (member === 'b' ? 'seat' : 'refuse') });
    joiner.start(true);
    await flush();
    expect(asked.map((a) => a.member)).toEqual(['a', 'b']);
    expect(joiner.error).toBe('');
    expect(timers.pending()).toBe(0);
  });

  it('a new peer cuts the pause short (wake), clearing its timer', async () => {
    const { joiner, asked, timers } = setup();
    joiner.start(true);
    await flush();
    expect(timers.pending()).toBe(1);
    joiner.wake();
    await flush();
    expect(asked).toHaveLength(4);
    expect(timers.pending()).toBe(1); // the woken pause's timer cleared, the next round's armed
  });

  it('start() while asking starts no second loop', async () => {
    const { joiner, asked } = setup();
    joiner.start(true);
    joiner.start(true);
    await flush();
    expect(asked).toHaveLength(2);
  });

  it('a store holding records (an earlier seat) never asks', async () => {
    const { joiner, asked, timers } = setup({ keys: 3 });
    joiner.start(true);
    await flush();
    expect(asked).toHaveLength(0);
    expect(joiner.state).toBe('stale-store');
    timers.fire();
    await flush();
    expect(asked).toHaveLength(0);
  });
});

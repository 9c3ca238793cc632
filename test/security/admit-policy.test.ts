// The admission policy of one device (src/node/admission.ts) and its use by MembershipService: a new identity is
// admitted automatically only while the cluster never removed a device (autoAdmit) or within an operator's
// window that no removal closed; re-seating is no admission; operator actions on a non-member are refused with a
// typed error (409), not an assertion (500).
import { describe, expect, it } from 'vitest';
import { MembershipChangeError } from '../../src/core/errors.js';
import type { MembershipConfig } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { AdmissionPolicy } from '../../src/node/admission.js';
import { AdmissionClosedError, MembershipService, type MembershipOptions } from '../../src/node/membership.js';
import type { Runtime } from '../../src/node/runtime.js';
import { silentLog, testRuntime } from '../helpers/runtime.js';

function config(removed: string[], epoch = 3): MembershipConfig {
  return {
    clusterId: 'c',
    epoch,
    voters: [{ peerId: 'A', addrs: [], store: 'store-A' }],
    learners: [],
    removed,
    previousVoters: [],
  };
}

describe('AdmissionPolicy', () => {
  it('is open from genesis until the first removal (autoAdmit), closed after it', () => {
    const policy = new AdmissionPolicy({ autoAdmit: true, monotonicNow: () => 0, wallNow: () => 0 });
    expect(policy.state(config([]))).toEqual({ open: true, reason: 'genesis', untilMs: null });
    expect(policy.allows(config(['R']))).toBe(false);
    expect(policy.state(config(['R'])).reason).toBe('closed');
  });

  it('without autoAdmit is closed from genesis on', () => {
    expect(new AdmissionPolicy({ autoAdmit: false, monotonicNow: () => 0, wallNow: () => 0 }).allows(config([]))).toBe(false);
  });

  it('opens a window until its end; a removal after it opened closes it for good', () => {
    let now = 1_000;
    const policy = new AdmissionPolicy({ autoAdmit: true, monotonicNow: () => now, wallNow: () => now });
    expect(policy.open(config(['R']), 60_000)).toEqual({ open: true, reason: 'window', untilMs: 61_000 });
    now = 60_999;
    expect(policy.allows(config(['R']))).toBe(true);
    now = 61_000;
    expect(policy.allows(config(['R']))).toBe(false);

    now = 0;
    policy.open(config(['R']), 60_000);
    expect(policy.allows(config(['R', 'S']))).toBe(false); // S removed since the window opened
    expect(policy.allows(config(['R']))).toBe(false); // and it stays closed
    // The oldest removed ID forgotten (REMOVED_MAX) and a new one added: still a removal since.
    policy.open(config(['R']), 60_000);
    expect(policy.allows(config(['S']))).toBe(false);
  });

  it('ends a window on the monotonic clock: a wall clock set back does not stretch it', () => {
    let mono = 0;
    let wall = 1_000_000;
    const policy = new AdmissionPolicy({ autoAdmit: false, monotonicNow: () => mono, wallNow: () => wall });
    expect(policy.open(config(['R']), 60_000)).toEqual({ open: true, reason: 'window', untilMs: 1_060_000 });
    mono = 60_000;
    wall = 0; // NTP stepped the clock back
    expect(policy.allows(config(['R']))).toBe(false);
  });

  it('a window works without autoAdmit (an explicit operator decision); 0 closes it', () => {
    const policy = new AdmissionPolicy({ autoAdmit: false, monotonicNow: () => 0, wallNow: () => 0 });
    policy.open(config([]), 10);
    expect(policy.allows(config([]))).toBe(true);
    expect(policy.close(config([]))).toEqual({ open: false, reason: 'closed', untilMs: null });
  });
});

function membershipOf(runtime: Runtime, sent: Array<{ to: string; msg: Message }>, overrides: Partial<MembershipOptions> = {}): MembershipService {
  return new MembershipService({
    runtime,
    storeId: 'store-A',
    send: (to, msg) => (sent.push({ to, msg }), true),
    log: silentLog,
    autoAdmit: true,
    maxVoters: 5,
    jointTakeoverMs: 60_000,
    changeAttemptsMax: 3,
    addrsOf: () => ['/ip4/127.0.0.1/tcp/9'],
    isAlive: () => true,
    opIdBase: 1_000,
    ...overrides,
  });
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

describe('MembershipService admission', () => {
  it('keeps a new identity pending after a removal, without changing the configuration', async () => {
    const { runtime } = await testRuntime('A', { config: config(['OLD']) });
    runtime.attachTransport({ send: () => true, isConnected: () => true });
    const sent: Array<{ to: string; msg: Message }> = [];
    const membership = membershipOf(runtime, sent);
    membership.handle('NEW', { type: 'joinRequest', opId: 5, epoch: 0, addrs: ['/ip4/127.0.0.1/tcp/9'], store: 'store-NEW' });
    await settle();
    expect(runtime.config.epoch).toBe(3);
    expect(membership.pending.map((p) => p.peerId)).toEqual(['NEW']);
    expect(sent).toEqual([{ to: 'NEW', msg: expect.objectContaining({ type: 'joinReply', ok: false, error: expect.stringMatching(/^waiting for approval/) }) }]);
    // The admission itself checks again against the configuration it derives from (a removal may win the epoch
    // between the check and the change).
    await expect(membership.admit({ peerId: 'NEW', addrs: [], store: 'store-NEW' }, false)).rejects.toBeInstanceOf(AdmissionClosedError);
    expect(runtime.config.epoch).toBe(3);
    expect(membership.admissionState()).toMatchObject({ open: false, reason: 'closed' });
    membership.stop();
    runtime.stop();
  });

  it('refuses approve and admission windows on a device that is not a member with a typed error', async () => {
    const { runtime } = await testRuntime('W');
    runtime.attachTransport({ send: () => true, isConnected: () => true });
    const membership = membershipOf(runtime, []);
    await expect(membership.approve('A')).rejects.toBeInstanceOf(MembershipChangeError);
    await expect(membership.approve('A')).rejects.toThrow(/not a member/);
    expect(() => membership.openAdmission(60_000)).toThrow(MembershipChangeError);
    membership.stop();
    runtime.stop();
  });
});

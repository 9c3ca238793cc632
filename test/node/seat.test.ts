// The real Runtime of a device whose storage was wiped (same peer ID, new store): it adopts what it hears, but
// stores no acceptor promise, acknowledges no write and answers no read until its seat names its store (issue 11,
// points 4-6: the acceptor block used to come after the promise).
import { describe, expect, it } from 'vitest';
import type { MembershipConfig } from '../../src/core/membership.js';
import { withSeatReplaced } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { applyWrite, EMPTY_RECORD } from '../../src/core/record.js';
import { META_ACCEPTOR, META_MEMBERSHIP, type Runtime } from '../../src/node/runtime.js';
import type { MemoryStore } from '../../src/storage/memory.js';
import { testMembership, testRuntime } from '../helpers/runtime.js';


function cluster(): MembershipConfig {
  return {
    clusterId: 'c',
    epoch: 4,
    voters: [
      { peerId: 'A', addrs: [], store: 'store-A' },
      { peerId: 'B', addrs: [], store: 'store-B' },
      { peerId: 'W', addrs: [], store: 'store-W-old' },
    ],
    learners: [],
    removed: [],
    previousVoters: [],
  };
}

async function wipedDevice(): Promise<{ runtime: Runtime; store: MemoryStore; sent: Array<{ to: string; msg: Message }> }> {
  const { runtime, store } = await testRuntime('W', { actor: 'W~123', storeId: 'store-W-new' });

  const sent: Array<{ to: string; msg: Message }> = [];
  runtime.attachTransport({ send: (to, msg) => (sent.push({ to, msg }), true), isConnected: () => true });
  return { runtime, store, sent };
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));


describe('a wiped device (new store, old peer ID) driven through the real runtime', () => {
  it('stores no promise and answers a prepare with a refusal', async () => {
    const { runtime, store, sent } = await wipedDevice();
    const prepare: Message = { type: 'configPrepare', opId: 9, epoch: 4, ballot: { round: 3, proposer: 'A' }, config: cluster() };
    // At epoch 0 it is a member of nothing: a prepare is not heard (no base adopted from it, no answer).
    runtime.receive('A', prepare);
    await settle();
    expect(runtime.config.epoch).toBe(0);
    expect(sent).toEqual([]);
    // It asks A to join and A tells it the configuration (which names W): from then on A is heard.
    runtime.askingToJoin('A');
    runtime.receive('A', { type: 'config', epoch: 4, config: cluster() });
    runtime.receive('A', prepare);
    await settle();
    expect(runtime.config.epoch).toBe(4);
    expect(store.getMeta(META_ACCEPTOR)).toBeUndefined();
    expect(sent.filter((s) => s.msg.type === 'configPromise')).toEqual([
      { to: 'A', msg: expect.objectContaining({ type: 'configPromise', ok: false }) },
    ]);
    runtime.receive('A', { type: 'configAccept', opId: 9, epoch: 4, ballot: { round: 3, proposer: 'A' }, config: { ...cluster(), epoch: 5 } });
    await settle();
    expect(store.getMeta(META_ACCEPTOR)).toBeUndefined();
    expect(sent.filter((s) => s.msg.type === 'configAccepted').map((s) => s.msg)).toEqual([expect.objectContaining({ ok: false })]);
  });

  it('acknowledges no write and answers reads "unavailable" until its seat is given to its store', async () => {
    const { runtime, store, sent } = await wipedDevice();
    runtime.adoptConfig(cluster());
    await settle();
    const record = applyWrite(EMPTY_RECORD, {}, { actor: 'A', counter: 1 }, new TextEncoder().encode('v'), { wallMs: 1, logical: 0 });
    runtime.receive('A', { type: 'write', opId: 1, epoch: 4, key: 'k', record });
    runtime.receive('A', { type: 'read', opId: 2, epoch: 4, key: 'k' });
    await settle();
    expect(store.get('k')).toBeUndefined();
    expect(sent.some((s) => s.msg.type === 'writeAck')).toBe(false);
    expect(sent.find((s) => s.msg.type === 'readReply')?.msg).toMatchObject({ unavailable: true });
    await expect(runtime.read('k', 'one')).rejects.toThrow(/storage is new/);

    // The seat goes to this store: it counts from now on (the data comes with the change's sync).
    runtime.adoptConfig(withSeatReplaced(cluster(), 'W', 'store-W-new', []));
    await settle();
    expect(JSON.parse(store.getMeta(META_MEMBERSHIP) ?? '{}')).toMatchObject({ epoch: 5, replaced: ['W'] });
    runtime.receive('A', { type: 'write', opId: 3, epoch: 5, key: 'k', record });
    await settle();
    expect(store.get('k')).toBeDefined();
    expect(sent.some((s) => s.msg.type === 'writeAck' && s.msg.opId === 3)).toBe(true);
    runtime.stop();
  });
});

describe('operator approval', () => {
  it('refuses to re-admit a removed device (issue 11.11): its store may hold values whose deletes were purged', async () => {
    const config: MembershipConfig = {
      clusterId: 'c',
      epoch: 7,
      voters: [{ peerId: 'A', addrs: [], store: 'store-A' }],
      learners: [],
      removed: ['C'],
      previousVoters: [],
    };
    const { runtime } = await testRuntime('A', { config });

    runtime.attachTransport({ send: () => true, isConnected: () => true });
    const membership = testMembership(runtime, { autoAdmit: false, jointTakeoverMs: 10_000, addrsOf: () => ['/ip4/127.0.0.1/tcp/9/p2p/C'] });
    await expect(membership.approve('C')).rejects.toThrow(/removed/);
    expect(runtime.config.epoch).toBe(7);
    membership.stop();
    runtime.stop();
  });
});

describe('learner promotion', () => {
  async function promotionWith(learnerStoreSeen: string): Promise<number> {
    const config: MembershipConfig = {
      clusterId: 'c',
      epoch: 3,
      voters: [{ peerId: 'A', addrs: [], store: 'store-A' }],
      learners: [{ peerId: 'L', addrs: [], store: 'store-L' }],
      removed: [],
      previousVoters: [],
    };
    const { runtime } = await testRuntime('A', { config: { ...config, epoch: 2, learners: [] } });
    runtime.attachTransport({ send: () => true, isConnected: () => true });
    const membership = testMembership(runtime, { storeOf: () => learnerStoreSeen });
    runtime.adoptConfig(config); // a learner and a free voter seat: the first voter proposes the promotion
    await new Promise((resolve) => setTimeout(resolve, 300));
    const epoch = runtime.config.epoch;
    membership.stop();
    runtime.stop();
    return epoch;
  }

  it('promotes a learner alive on its seat\'s store', async () => {
    expect(await promotionWith('store-L')).toBeGreaterThan(3);
  });

  it('does not promote a learner whose device runs on another store (wiped): it gets its learner seat back first', async () => {
    expect(await promotionWith('store-L-wiped')).toBe(3);
  });
});

describe('a device that restarts in a joint phase', () => {
  it('arms the joint-phase takeover for the configuration it starts with (else nobody finishes it while it lives)', async () => {
    const joint: MembershipConfig = {
      clusterId: 'c',
      epoch: 4,
      voters: [
        { peerId: 'A', addrs: [], store: 'store-A' },
        { peerId: 'B', addrs: [], store: 'store-B' },
      ],
      learners: [],
      removed: [],
      previousVoters: ['A'],
    };
    const { runtime } = await testRuntime('A', { config: joint });
    const sent: Message[] = [];
    runtime.attachTransport({ send: (_to, msg) => (sent.push(msg), true), isConnected: () => true });
    const membership = testMembership(runtime, { jointTakeoverMs: 40 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    // It finishes the phase itself: the sync pushes the data to the new voter B.
    expect(sent.some((m) => m.type === 'transfer')).toBe(true);
    membership.stop();
    runtime.stop();
  });
});

describe('finishing a joint phase whose finalize this device already accepted', () => {
  it('proposes at once (phase 1 recovers the accepted value) instead of syncing first from a store that may be gone', async () => {
    // Simulator seeds 208110, 306793: the finalize to epoch 5 was chosen by A and W; W learned it, then lost its
    // store. B is being re-seated (replaced) and W is unseated now, so a sync from the previous voters' stores can
    // never gather enough sources: only a device that proposes without syncing first ends the joint phase.
    const joint: MembershipConfig = {
      clusterId: 'c',
      epoch: 4,
      voters: [
        { peerId: 'A', addrs: [], store: 'store-A' },
        { peerId: 'B', addrs: [], store: 'store-B-new' },
        { peerId: 'W', addrs: [], store: 'store-W' },
      ],
      learners: [],
      removed: [],
      previousVoters: ['A', 'B', 'W'],
      replaced: ['B'],
    };
    const finalizedConfig: MembershipConfig = { ...joint, epoch: 5, previousVoters: [], replaced: [] };
    const acceptor = { slot: 5, promised: { round: 3, proposer: 'W' }, accepted: { ballot: { round: 3, proposer: 'W' }, config: finalizedConfig } };
    const { runtime } = await testRuntime('A', { config: joint, acceptor });
    const sent: Message[] = [];
    runtime.attachTransport({ send: (_to, msg) => (sent.push(msg), true), isConnected: () => true });
    const membership = testMembership(runtime, { jointTakeoverMs: 40 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const first = sent.findIndex((m) => m.type === 'configPrepare');
    expect(first).toBeGreaterThanOrEqual(0);
    expect(sent.slice(0, first).filter((m) => m.type === 'transferRequest' || m.type === 'transfer')).toEqual([]);
    membership.stop();
    runtime.stop();
  });
});

// A write in flight while a seat is given to a new store: the acknowledgement the seat's OLD store sent before
// it was lost must not count for the seat once its store changed. The coordinator kept it in the op's acked set
// across the configuration change (retargetAll re-counts the same set under the new configuration), so the
// write was reported acknowledged at w=quorum while only one voter store held it.
//
// Scenario (voters A, B, C on stores sA, sB, sC1; learner L coordinates; all at epoch 1):
//  1. L writes k=v at w=quorum. Its messages to A and B are slow (held in the network); C (store sC1) stores it
//     and acknowledges: 1 voter ack of the 2 needed.
//  2. C's storage dies: C comes back on store sC2. A gives C's seat to sC2 (joint epoch 2), syncs (gathers from
//     itself and B: neither holds k yet; pushes to sC2) and finalizes (epoch 3). L learns both epochs.
//  3. L's held write reaches A, which answers `stale` (epoch 1 < 3); L re-sends it under epoch 3 and A acks.
//  4. L counts A and C (C's ack came from sC1, a store that no longer exists) = 2 of 3: "written" at quorum.
//  5. Holders among the voters: A only (sC2 never got k; B's copy was never delivered). A dies: a quorum read of
//     B and C answers "not found" for a write acknowledged at w=quorum.
import { describe, expect, it } from 'vitest';
import { type MembershipConfig, finalized, withSeatReplaced } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import type { Action, ClientResult } from '../../src/core/replica.js';
import { Device, TIMEOUT, text } from './seat-net.js';

/** The seat harness's execution rules, with messages that can be held back (a slow link) and released. */
class HoldNet {
  readonly devices = new Map<string, Device>();
  readonly down = new Set<string>();
  readonly held: Array<{ from: string; to: string; msg: Message }> = [];
  hold: (from: string, to: string, msg: Message) => boolean = () => false;
  private readonly queue: Array<{ from: string; to: string; msg: Message }> = [];

  add(id: string, store: string, config: MembershipConfig): Device {
    const d = new Device(id, store, config);
    this.devices.set(id, d);
    return d;
  }

  dev(id: string): Device {
    return this.devices.get(id)!;
  }

  exec(d: Device, actions: readonly Action[]): void {
    for (const a of actions) {
      if (a.type === 'persist') {
        d.records.set(a.key, a.record);
        if (a.then !== undefined) this.queue.push({ from: d.id, to: a.then.to, msg: a.then.msg });
      } else if (a.type === 'persistConfig' || a.type === 'persistAcceptor' || a.type === 'flush') {
        if (a.then !== undefined) this.queue.push({ from: d.id, to: a.then.to, msg: a.then.msg });
      } else if (a.type === 'send') {
        this.queue.push({ from: d.id, to: a.to, msg: a.msg });
      } else if (a.type === 'reply') {
        d.results.push(a.result);
      }
    }
  }

  run(): void {
    for (let steps = 0; this.queue.length > 0; steps++) {
      expect(steps).toBeLessThan(100_000);
      const m = this.queue.shift()!;
      if (this.down.has(m.from)) continue;
      if (m.from !== m.to && this.hold(m.from, m.to, m.msg)) {
        this.held.push(m);
        continue;
      }
      const sender = this.dev(m.from);
      if (this.down.has(m.to) && m.to !== m.from) {
        this.exec(sender, sender.core.sendFailed(m.to, m.msg, sender, 0));
        continue;
      }
      const receiver = this.dev(m.to);
      this.exec(receiver, receiver.core.step(m.from, m.msg, receiver, 0));
    }
  }

  release(pick: (m: { from: string; to: string; msg: Message }) => boolean): void {
    for (let i = this.held.length - 1; i >= 0; i--) {
      const m = this.held[i]!;
      if (pick(m)) {
        this.held.splice(i, 1);
        this.queue.unshift(m);
      }
    }
    this.run();
  }

  start(id: string, run: (d: Device) => { opId: number; actions: Action[] }): number {
    const d = this.dev(id);
    const { opId, actions } = run(d);
    this.exec(d, actions);
    this.run();
    return opId;
  }

  result(id: string, opId: number): ClientResult | undefined {
    return this.dev(id).results.find((r) => r.opId === opId);
  }
}

const config1: MembershipConfig = {
  clusterId: 'c1',
  epoch: 1,
  voters: [
    { peerId: 'A', addrs: [], store: 'sA' },
    { peerId: 'B', addrs: [], store: 'sB' },
    { peerId: 'C', addrs: [], store: 'sC1' },
  ],
  learners: [{ peerId: 'L', addrs: [], store: 'sL' }],
  removed: [],
  previousVoters: [],
};

describe('a write in flight while a voter seat is given to a new store', () => {
  it('does not count the lost store\'s acknowledgement for the seat\'s new store', () => {
    const net = new HoldNet();
    for (const [id, store] of [['A', 'sA'], ['B', 'sB'], ['C', 'sC1'], ['L', 'sL']] as const) net.add(id, store, config1);
    // 1. L's write reaches only C (sC1); the copies for A and B are slow.
    net.hold = (from, to, msg) => from === 'L' && (to === 'A' || to === 'B') && msg.type === 'write';
    const write = net.start('L', (d) =>
      d.core.write({ key: 'k', value: new TextEncoder().encode('v'), context: undefined, level: 'quorum', dot: { actor: 'L', counter: 1 }, nowMs: 0, physicalMs: 1 }, d),
    );
    expect(net.result('L', write)).toBeUndefined();
    expect(net.dev('C').records.has('k')).toBe(true);
    net.hold = () => false;

    // 2. C's store dies; C is back on sC2 and A gives it the seat: joint (2), sync, finalize (3).
    const c2 = net.add('C', 'sC2', { ...config1, epoch: 0, voters: [], learners: [], clusterId: '' });
    net.exec(c2, c2.core.adoptConfig(config1, c2, 0));
    net.run();
    const joint = net.start('A', (d) => d.core.proposeConfig(withSeatReplaced(config1, 'C', 'sC2', []), 0, d));
    expect(net.result('A', joint)).toMatchObject({ type: 'configCommitted' });
    const sync = net.start('A', (d) => d.core.sync(0, d));
    expect(net.result('A', sync)).toMatchObject({ type: 'synced' });
    const fin = net.start('A', (d) => d.core.proposeConfig(finalized(d.core.config), 0, d));
    expect(net.result('A', fin)).toMatchObject({ type: 'configCommitted' });
    expect(net.dev('L').core.config.epoch).toBe(3);
    expect(c2.core.seated()).toBe(true);
    // (Before the fix nobody the sync gathered from held k, so sC2 did not either; with the fix L re-sends the
    // write to the seat's new store once it learns of it.)

    // 3. The slow copy reaches A (epoch 1 < 3): `stale`, re-sent under epoch 3, acknowledged by A.
    net.release((m) => m.to === 'A');
    const result = net.result('L', write) ?? (net.exec(net.dev('L'), net.dev('L').core.tick(TIMEOUT * 10, net.dev('L'))), net.run(), net.result('L', write));
    const voterHolders = ['A', 'B', 'C'].filter((id) => net.dev(id).records.has('k'));
    // 4./5. Either the write is not reported acknowledged, or it is on a majority of the current seats' stores.
    if (result?.type === 'written') {
      expect(voterHolders.length).toBeGreaterThanOrEqual(2);
    }
    // And the read that matters: A down, B and C (on sC2) answer.
    net.down.add('A');
    const read = net.start('B', (d) => d.core.read({ key: 'k', level: 'quorum', nowMs: 0 }, d));
    const answer = net.result('B', read);
    if (result?.type === 'written') {
      expect(answer).toMatchObject({ type: 'read' });
      expect(text((answer as Extract<ClientResult, { type: 'read' }>).record)).toEqual(['v']);
    }
  });

  it('does not count a late acknowledgement from the lost store either (sent before the loss, delivered after)', () => {
    // As above, but C's ack from sC1 is still in the network when L learns of the re-seating; L re-sends the
    // write to sC2, which is slow to answer. The old ack arrives (epoch 1) and must not count for the seat.
    const net = new HoldNet();
    for (const [id, store] of [['A', 'sA'], ['B', 'sB'], ['C', 'sC1'], ['L', 'sL']] as const) net.add(id, store, config1);
    net.hold = (from, to, msg) => (from === 'L' && (to === 'A' || to === 'B') && msg.type === 'write') || (from === 'C' && to === 'L' && msg.type === 'writeAck');
    const write = net.start('L', (d) =>
      d.core.write({ key: 'k', value: new TextEncoder().encode('v'), context: undefined, level: 'quorum', dot: { actor: 'L', counter: 1 }, nowMs: 0, physicalMs: 1 }, d),
    );
    expect(net.dev('C').records.has('k')).toBe(true);
    const c2 = net.add('C', 'sC2', { ...config1, epoch: 0, voters: [], learners: [], clusterId: '' });
    net.exec(c2, c2.core.adoptConfig(config1, c2, 0));
    net.run();
    // From now on, whatever L sends the new store C is slow (held).
    net.hold = (from, to, msg) => from === 'L' && to === 'C' && msg.type === 'write';
    expect(net.result('A', net.start('A', (d) => d.core.proposeConfig(withSeatReplaced(config1, 'C', 'sC2', []), 0, d)))).toMatchObject({ type: 'configCommitted' });
    expect(net.result('A', net.start('A', (d) => d.core.sync(0, d)))).toMatchObject({ type: 'synced' });
    expect(net.result('A', net.start('A', (d) => d.core.proposeConfig(finalized(d.core.config), 0, d)))).toMatchObject({ type: 'configCommitted' });
    expect(net.dev('L').core.config.epoch).toBe(3);
    // The old store's ack (epoch 1) arrives now, then A's (after its `stale` answer and the re-send).
    net.release((m) => m.from === 'C' && m.msg.type === 'writeAck');
    net.release((m) => m.to === 'A');
    const result = net.result('L', write);
    if (result?.type === 'written') {
      expect(['A', 'B', 'C'].filter((id) => net.dev(id).records.has('k')).length).toBeGreaterThanOrEqual(2);
    }
  });
});

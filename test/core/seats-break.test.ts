// Attacks on seats held by (peer, store): an old store put back into a device whose seat went to a new store
// (the old SD card re-inserted). Until it adopts the newer configuration it believes it holds its seat: these
// tests show it acknowledging, answering and gossiping for a seat that is not its own, and never being told.
// The harness is test/core/seat-net.ts (a synchronous network executing the cores' actions).
import { describe, expect, it } from 'vitest';
import { AntiEntropy, type SyncAction, type SyncMessage } from '../../src/core/anti-entropy.js';
import { MerkleDigest } from '../../src/core/digest.js';
import { HLC_ZERO } from '../../src/core/hlc.js';
import { type MembershipConfig, finalized, withSeatReplaced } from '../../src/core/membership.js';
import { EMPTY_RECORD, type VersionedRecord, applyWrite, isDeleted } from '../../src/core/record.js';
import type { ClientResult } from '../../src/core/replica.js';
import { Device, Net, seats, text, CLAIMED } from './seat-net.js';

const config1 = seats(1, [['A', 'sA'], ['B', 'sB'], ['C', 'sC1']]);

/** A device as it starts from a store: the store's records and configuration, nothing else. */
function fromCard(net: Net, card: Device): Device {
  const d = net.add(card.id, card.storeId, card.core.config);
  for (const [k, v] of card.records) d.records.set(k, v);
  d.counter = card.counter + 1000;
  return d;
}

/**
 * A, B, C voters (C on store sC1, holding `old`). C's card is pulled (kept aside), C comes back with an empty
 * store sC2 and the cluster gives it the seat (joint phase, sync, finalize: epoch 3). Returns the old card.
 */
function reseatedC(): { net: Net; oldCard: Device; epoch3: MembershipConfig } {
  const net = new Net();
  for (const [id, store] of [['A', 'sA'], ['B', 'sB'], ['C', 'sC1']] as const) net.add(id, store, config1);
  expect(net.write('A', 'old', 'v0')).toMatchObject({ type: 'written' });
  expect(net.dev('C').records.has('old')).toBe(true);
  const oldCard = net.dev('C');
  const c2 = net.wipe('C', 'sC2');
  net.announce('A', 'C', config1);
  expect(net.propose('A', withSeatReplaced(config1, 'C', 'sC2', []))).toMatchObject({ type: 'configCommitted' });
  net.run();
  expect(net.sync('A')).toMatchObject({ type: 'synced' });
  expect(net.propose('A', finalized(net.dev('A').core.config))).toMatchObject({ type: 'configCommitted' });
  net.run();
  const epoch3 = net.dev('A').core.config;
  expect(epoch3.epoch).toBe(3);
  expect(c2.core.seated()).toBe(true);
  expect(oldCard.core.config.epoch).toBe(1);
  return { net, oldCard, epoch3 };
}

describe('an old store put back after its seat went to a new store (before it hears the newer configuration)', () => {
  it('does not acknowledge a write for the new store\'s seat: an acked write stays on a majority of seats', () => {
    const { net, oldCard } = reseatedC();
    const c2 = net.dev('C');
    fromCard(net, oldCard); // the old card goes back in
    net.down.add('B');
    const w = net.write('A', 'k', 'k1');
    // C's old store acks it (its own configuration, epoch 1, seats it), and A counts that ack as C's seat (sC2).
    net.down.delete('B');
    // The seat's real store comes back (the cards swapped again); A crashes. B and C are a majority.
    net.devices.set('C', c2);
    net.down.add('A');
    const r = net.read('B', 'k');
    if (w.type === 'written') {
      expect(r.type).toBe('read');
      expect(text((r as Extract<ClientResult, { type: 'read' }>).record)).toEqual(['k1']);
    }
  });

  it('does not answer a read for the new store\'s seat with its old data', () => {
    const { net, oldCard } = reseatedC();
    net.down.add('B');
    // Written while B is unreachable: acked by A and C's seat store (sC2).
    expect(net.write('A', 'w', 'w1')).toMatchObject({ type: 'written', acks: 2 });
    net.down.delete('B');
    fromCard(net, oldCard); // the old card goes back in
    net.down.add('A');
    const r = net.read('B', 'w');
    // Either the read finds the acknowledged write, or it cannot make a quorum (C's old store is no seat).
    const seen = r.type === 'read' ? text(r.record) : 'no quorum';
    expect(['no quorum', ['w1']]).toContainEqual(seen);
  });

  it('is told the current configuration when it speaks from an old epoch, even if its peer ID was told before', () => {
    const { net, oldCard, epoch3 } = reseatedC();
    const a = net.dev('A');
    // A already told C's peer ID about epoch 3 during the finalize: C's (new store's) configAccepted, sent from
    // epoch 2, arrived after A adopted epoch 3. So C counts as told for epoch 3 from here on.
    a.core.peerEpoch('C', 2, 0); // (returns nothing today: already told)
    // Now the old card is back: its heartbeats say epoch 1. Nobody else will tell it (it is seated in its own
    // eyes, so it does not ask to join). A must tell it, or it acks, answers and gossips as C for good.
    fromCard(net, oldCard);
    const second = a.core.peerEpoch('C', 1, 0);
    expect(second).toContainEqual(expect.objectContaining({ type: 'send', to: 'C', msg: expect.objectContaining({ type: 'config', epoch: epoch3.epoch }) }));
    // And a stale write ack does not tell it either.
    const ack = a.core.step('C', { type: 'writeAck', opId: 424242, epoch: 1 }, a, 0);
    expect(ack.length + second.length).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------- anti-entropy with an old store put back

const enc = new TextEncoder();

function aeConfig(epoch: number): MembershipConfig {
  return { clusterId: 'c1', epoch, voters: ['A', 'B', 'C'].map((peerId) => ({ peerId, addrs: [] })), learners: [], removed: [], previousVoters: [] };
}

class Rep {
  readonly store = new Map<string, VersionedRecord>();
  readonly digest = new MerkleDigest();
  readonly ae: AntiEntropy;
  counter = 0;
  constructor(
    readonly id: string,
    public config: MembershipConfig,
  ) {
    this.ae = new AntiEntropy({ self: id, intervalMs: 1000, bytesPerSec: 1e9, requestTimeoutMs: 5000, tombstoneGraceMs: 0 });
  }
  get(key: string): VersionedRecord | undefined {
    return this.store.get(key);
  }
  write(key: string, value: string | null): void {
    const before = this.store.get(key);
    this.counter += 1;
    const record = applyWrite(before ?? EMPTY_RECORD, before?.context ?? {}, { actor: this.id, counter: this.counter }, value === null ? null : enc.encode(value), HLC_ZERO);
    this.put(key, record);
    this.ae.noteStored(key, record, 0);
  }
  put(key: string, record: VersionedRecord | undefined): void {
    this.digest.update(key, this.store.get(key), record);
    if (record === undefined) this.store.delete(key);
    else this.store.set(key, record);
  }
}

class AeBus {
  readonly reps = new Map<string, Rep>();
  private readonly queue: Array<{ from: string; to: string; msg: SyncMessage }> = [];
  exec(r: Rep, actions: SyncAction[]): void {
    for (const a of actions) {
      if (a.type === 'persist') r.put(a.key, a.record);
      else if (a.type === 'purge') r.put(a.key, undefined);
      else if (a.type === 'send' || a.type === 'sendDurable') this.queue.push({ from: r.id, to: a.to, msg: a.msg });
    }
  }
  run(): void {
    for (let guard = 0; this.queue.length > 0; guard++) {
      expect(guard).toBeLessThan(100_000);
      const { from, to, msg } = this.queue.shift()!;
      const r = this.reps.get(to)!;
      this.exec(r, r.ae.step(from, msg, 10, r.config, r));
    }
  }
  round(from: string, to: string): void {
    const r = this.reps.get(from)!;
    this.exec(r, r.ae.startRound(to, 10, r.config, r));
    this.run();
  }
  tick(id: string, nowMs: number): void {
    const r = this.reps.get(id)!;
    this.exec(r, r.ae.tick(nowMs, 0.5, r.config, () => true, r));
    this.run();
  }
}

describe('anti-entropy with an old store put back (its seat went to a new store meanwhile)', () => {
  it('a delete purged everywhere stays deleted: the old store\'s rounds do not bring the value back', () => {
    const bus = new AeBus();
    const a = new Rep('A', aeConfig(1));
    const b = new Rep('B', aeConfig(1));
    const oldC = new Rep('C', aeConfig(1));
    for (const r of [a, b, oldC]) bus.reps.set(r.id, r);
    a.write('k', 'v');
    bus.round('A', 'B');
    bus.round('A', 'C');
    expect(oldC.store.has('k')).toBe(true);
    // C's card is pulled; C is re-seated with an empty store (epochs 2 and 3) and gets the data.
    const newC = new Rep('C', aeConfig(3));
    a.config = aeConfig(3);
    b.config = aeConfig(3);
    bus.reps.set('C', newC);
    bus.round('A', 'C');
    // k is deleted, every member holds the tombstone, it is purged everywhere.
    a.write('k', null);
    for (let i = 0; i < 3; i++) {
      bus.round('A', 'B');
      bus.round('A', 'C');
      bus.round('B', 'C');
      for (const id of ['A', 'B', 'C']) bus.tick(id, 1_000 * (i + 1));
    }
    for (const r of [a, b, newC]) expect(r.store.has('k')).toBe(false);
    // The old card goes back in. Its configuration (epoch 1) seats it; it gossips with A and B before it
    // hears of epoch 3 (or never: see the test above on being told).
    bus.reps.set('C', oldC);
    bus.round('C', 'A');
    bus.round('B', 'C');
    for (const r of [a, b]) {
      const k = r.store.get('k');
      expect(k === undefined || isDeleted(k)).toBe(true);
    }
  });
});

describe('a two-voter cluster (two devices) whose second device is re-flashed', () => {
  it('gives the wiped voter\'s seat to its new store: the survivor holds every acknowledged write', () => {
    // README, "When a device's storage dies": "Nothing else: quorumd does the rest by itself." With two voters
    // every quorum write was on both, so A alone holds everything; but slot 2's acceptors are A and the old B,
    // whose new store never votes, so no change (replacement, removal) can ever be decided, and no quorum read
    // or write succeeds again: the cluster is wedged for good by one wiped device.
    const net = new Net();
    const config = seats(1, [['A', 'sA'], ['B', 'sB']]);
    net.add('A', 'sA', config);
    net.add('B', 'sB', config);
    expect(net.write('A', 'k', 'v1')).toMatchObject({ type: 'written' });
    net.wipe('B', 'sB2');
    net.announce('A', 'B', config);
    const replaced = net.propose('A', withSeatReplaced(config, 'B', 'sB2', [], CLAIMED));
    expect(replaced).toMatchObject({ type: 'configCommitted' });
  });
});

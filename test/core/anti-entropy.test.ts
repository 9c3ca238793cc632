// Anti-entropy rounds between in-memory replicas over a synchronous message bus: convergence, cost proportional
// to the difference, the byte budget, refusal of non-members and tombstone purging at causal stability.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AntiEntropy, type SyncAction, type SyncMessage, estimateSyncBytes } from '../../src/core/anti-entropy.js';
import { MerkleDigest, hashesEqual } from '../../src/core/digest.js';
import type { MembershipConfig } from '../../src/core/membership.js';
import { type VersionedRecord, applyWrite, mergeRecords, recordsEqual, EMPTY_RECORD } from '../../src/core/record.js';
import { HLC_ZERO } from '../../src/core/hlc.js';

const enc = new TextEncoder();

function configOf(ids: readonly string[], epoch = 1, learners: readonly string[] = []): MembershipConfig {
  return {
    clusterId: 'c',
    epoch,
    voters: ids.map((peerId) => ({ peerId, addrs: [] })),
    learners: learners.map((peerId) => ({ peerId, addrs: [] })),
    removed: [],
    previousVoters: [],
  };
}

class Rep {
  readonly store = new Map<string, VersionedRecord>();
  readonly digest = new MerkleDigest();
  readonly ae: AntiEntropy;
  counter = 0;
  readonly delivered: string[] = [];
  /** This replica's own configuration, when it differs from the bus's (a device on another epoch). */
  config: MembershipConfig | undefined;
  /** Answers every round request with `refused` (as a device still filling its replica does). */
  refusing = false;
  constructor(
    readonly id: string,
    graceMs = 0,
    bytesPerSec = 1e9,
  ) {
    this.ae = new AntiEntropy({ self: id, intervalMs: 1000, bytesPerSec, requestTimeoutMs: 5000, tombstoneGraceMs: graceMs });
  }
  get(key: string): VersionedRecord | undefined {
    return this.store.get(key);
  }
  /** A local write (as the replica core would persist it). */
  write(key: string, value: string | null, nowMs = 0): void {
    const before = this.store.get(key);
    this.counter += 1;
    const record = applyWrite(before ?? EMPTY_RECORD, before?.context ?? {}, { actor: this.id, counter: this.counter }, value === null ? null : enc.encode(value), HLC_ZERO);
    this.put(key, record);
    this.ae.noteStored(key, record, nowMs);
  }
  put(key: string, record: VersionedRecord | undefined): void {
    this.digest.update(key, this.store.get(key), record);
    if (record === undefined) this.store.delete(key);
    else this.store.set(key, record);
  }
}

class Bus {
  readonly reps = new Map<string, Rep>();
  readonly queue: Array<{ from: string; to: string; msg: SyncMessage }> = [];
  messages = 0;
  bytes = 0;
  config: MembershipConfig;
  constructor(reps: Rep[]) {
    for (const r of reps) this.reps.set(r.id, r);
    this.config = configOf(reps.map((r) => r.id));
  }
  exec(r: Rep, actions: SyncAction[]): void {
    for (const a of actions) {
      if (a.type === 'persist') r.put(a.key, a.record);
      else if (a.type === 'purge') {
        expect(recordsEqual(r.store.get(a.key) as VersionedRecord, a.record)).toBe(true);
        r.put(a.key, undefined);
      } else if (a.type === 'hintsDelivered') r.delivered.push(...a.keys);
      else this.queue.push({ from: r.id, to: a.to, msg: a.msg });
    }
  }
  run(nowMs = 0): void {
    for (let guard = 0; this.queue.length > 0; guard++) {
      expect(guard).toBeLessThan(100_000);
      const { from, to, msg } = this.queue.shift() as { from: string; to: string; msg: SyncMessage };
      this.messages += 1;
      this.bytes += estimateSyncBytes(msg);
      const r = this.reps.get(to) as Rep;
      if (r.refusing && (msg.type === 'digest' || msg.type === 'segments' || msg.type === 'push')) {
        this.queue.push({ from: to, to: from, msg: { type: 'refused', session: msg.session, reason: 'catching up' } });
        continue;
      }
      this.exec(r, r.ae.step(from, msg, nowMs, this.configOf(r), r));
    }
  }
  configOf(r: Rep): MembershipConfig {
    return r.config ?? this.config;
  }
  round(from: string, to: string, nowMs = 0): void {
    const r = this.reps.get(from) as Rep;
    this.exec(r, r.ae.startRound(to, nowMs, this.configOf(r), r));
    this.run(nowMs);
  }
  tick(id: string, nowMs: number): void {
    const r = this.reps.get(id) as Rep;
    this.exec(r, r.ae.tick(nowMs, 0.5, this.configOf(r), () => true, r));
    this.run(nowMs);
  }
}

function union(reps: Rep[]): Map<string, VersionedRecord> {
  const out = new Map<string, VersionedRecord>();
  for (const r of reps) {
    for (const [k, v] of r.store) {
      const cur = out.get(k);
      out.set(k, cur === undefined ? v : mergeRecords(cur, v));
    }
  }
  return out;
}

function expectSame(a: Rep, b: Rep): void {
  expect(hashesEqual(a.digest.root(), b.digest.root())).toBe(true);
  expect([...a.store.keys()].sort()).toEqual([...b.store.keys()].sort());
  for (const [k, v] of a.store) expect(recordsEqual(v, b.store.get(k) as VersionedRecord)).toBe(true);
}

describe('anti-entropy rounds', () => {
  it('an idle round between equal replicas is one small exchange and counts as matched', () => {
    const a = new Rep('a');
    const b = new Rep('b');
    const bus = new Bus([a, b]);
    for (let i = 0; i < 100; i++) a.write(`k${i}`, `v${i}`);
    bus.round('a', 'b');
    bus.round('a', 'b'); // repaired, then matched
    const before = { messages: bus.messages, bytes: bus.bytes };
    bus.round('a', 'b');
    expect(bus.messages - before.messages).toBe(2);
    expect(bus.bytes - before.bytes).toBeLessThan(100);
    expect(a.ae.peerViews(bus.config)[0]).toMatchObject({ peerId: 'b', matched: true, keysDiffering: 0 });
    expect(a.ae.converged(bus.config, () => true)).toBe(true);
    expectSame(a, b);
  });

  it('one differing key among 10,000 costs a handful of round trips and a few KB', () => {
    const a = new Rep('a');
    const b = new Rep('b');
    const bus = new Bus([a, b]);
    for (let i = 0; i < 10_000; i++) a.write(`key-${i}`, 'x'.repeat(20));
    for (const [k, v] of a.store) b.put(k, v);
    b.write('key-42', 'changed');
    const before = { messages: bus.messages, bytes: bus.bytes };
    bus.round('a', 'b');
    expectSame(a, b);
    expect(bus.messages - before.messages).toBeLessThanOrEqual(12); // 4 levels + segments (+ no push needed)
    expect(bus.bytes - before.bytes).toBeLessThan(4096);
    expect(a.ae.peerViews(bus.config)[0]?.keysDiffering).toBe(1);
  });

  it('converges any two replicas in one round, keeping concurrent siblings (property)', () => {
    const op = fc.record({ side: fc.constantFrom('a', 'b', 'both'), key: fc.integer({ min: 0, max: 60 }), del: fc.boolean() });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const a = new Rep('a');
        const b = new Rep('b');
        const bus = new Bus([a, b]);
        ops.forEach((o, i) => {
          const value = o.del ? null : `v${i}`;
          if (o.side === 'both') {
            a.write(`k${o.key}`, value);
            b.put(`k${o.key}`, a.store.get(`k${o.key}`));
          } else (o.side === 'a' ? a : b).write(`k${o.key}`, value);
        });
        const expected = union([a, b]);
        bus.round('a', 'b');
        expectSame(a, b);
        for (const [k, v] of expected) expect(recordsEqual(a.store.get(k) as VersionedRecord, v)).toBe(true);
        bus.round('b', 'a');
        expect(b.ae.peerViews(bus.config)[0]?.matched).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('a big difference is split into bounded messages and still converges', () => {
    const a = new Rep('a');
    const b = new Rep('b');
    const bus = new Bus([a, b]);
    for (let i = 0; i < 20_000; i++) a.write(`key-${i}`, 'y'.repeat(100));
    bus.round('b', 'a');
    expectSame(a, b);
    expect(b.ae.peerViews(bus.config)[0]?.recordsReceived).toBe(20_000);
  });

  it('paces requests by the byte budget', () => {
    const a = new Rep('a', 0, 10_000); // 10 KB/s
    const b = new Rep('b');
    const bus = new Bus([a, b]);
    for (let i = 0; i < 2_000; i++) b.write(`key-${i}`, 'z'.repeat(100));
    let now = 0;
    bus.exec(a, a.ae.startRound('b', now, bus.config, a));
    bus.run(now);
    for (let i = 0; i < 1000 && a.store.size < 2_000; i++) {
      now = Math.max(now + 1, a.ae.nextDeadlineMs() ?? now + 1);
      bus.tick('a', now);
    }
    expect(a.store.size).toBe(2_000);
    // ~2,000 × ~130 B moved at 10 KB/s, less a one-second burst: about 25 s of virtual time.
    expect(now).toBeGreaterThan(15_000);
  });

  it('alternates the compared hash half per peer, and refuses a push naming a key twice', () => {
    const [a, b, c] = [new Rep('a'), new Rep('b'), new Rep('c')];
    const bus = new Bus([a, b, c]);
    a.write('k', 'v');
    const sessions: number[] = [];
    for (const peer of ['b', 'c', 'b', 'c', 'b']) {
      const out = a.ae.startRound(peer, 0, bus.config, a);
      for (const act of out) if (act.type === 'send' && act.to === 'b') sessions.push(act.msg.session);
      bus.exec(a, out);
      bus.run();
    }
    expect(sessions.map((x) => x % 2)).toEqual([0, 1, 0]);
    const record = a.store.get('k') as VersionedRecord;
    const refused = b.ae.step('a', { type: 'push', session: 99, epoch: 1, records: [{ key: 'k', record }, { key: 'k', record }], purged: [] }, 0, bus.config, b);
    expect(refused).toMatchObject([{ type: 'send', msg: { type: 'refused' } }]);
  });

  it('refuses to serve or merge data from a device outside its configuration', () => {
    const a = new Rep('a');
    const x = new Rep('x');
    const bus = new Bus([a, x]);
    bus.config = configOf(['a', 'b']);
    x.write('stolen', 'old');
    bus.round('a', 'x'); // a starts with a non-member: startRound refuses
    expect(bus.messages).toBe(0);
    bus.exec(x, x.ae.startRound('a', 0, configOf(['a', 'x']), x));
    bus.run();
    expect(a.store.has('stolen')).toBe(false);
    expect(x.ae.peerViews(configOf(['a', 'x']))[0]?.failedRounds).toBe(1);
  });
});

describe('hinted handoff', () => {
  it('hands over the current records of missed keys and confirms them; one handover per peer at a time', () => {
    const [a, b] = [new Rep('a'), new Rep('b')];
    const bus = new Bus([a, b]);
    a.write('k1', 'old');
    a.write('k1', 'new'); // the hint names the key: the current record goes, with whatever superseded the miss
    a.write('k2', 'v');
    bus.exec(a, a.ae.handOver('b', ['k1', 'k2', 'gone'], 0, bus.config, a));
    expect(a.ae.handOver('b', ['k1'], 0, bus.config, a)).toEqual([]); // one in flight
    bus.run();
    expect(a.delivered).toEqual(['k1', 'k2', 'gone']);
    expect(recordsEqual(b.store.get('k1') as VersionedRecord, a.store.get('k1') as VersionedRecord)).toBe(true);
    expect(b.store.has('gone')).toBe(false);
    expect(a.ae.handoverStats).toMatchObject({ pushes: 1, keys: 3, inFlight: 0 });
    // A peer outside the configuration gets nothing.
    bus.config = configOf(['a']);
    expect(a.ae.handOver('b', ['k1'], 0, bus.config, a)).toEqual([]);
  });
});

describe('tombstone purge at causal stability', () => {
  it('purges only after every member matched after the delete, and peers follow', () => {
    const [a, b, c] = [new Rep('a', 500), new Rep('b', 500), new Rep('c', 500)];
    const bus = new Bus([a, b, c]);
    a.write('gone', 'v');
    a.write('kept', 'v');
    bus.round('a', 'b');
    bus.round('a', 'c');
    a.write('gone', null, 0);
    bus.round('a', 'b'); // b gets the tombstone
    bus.tick('a', 1000);
    expect(a.ae.tombstoneView(bus.config)).toMatchObject({ waiting: 1, blockedBy: 'b' }); // repaired, not yet matched
    bus.round('a', 'b'); // matched: b holds it
    bus.tick('a', 1000);
    expect(a.store.has('gone')).toBe(true); // c has not got it: c blocks the purge
    expect(a.ae.tombstoneView(bus.config)).toMatchObject({ waiting: 1, blockedBy: 'c' });
    bus.round('a', 'c'); // repairs c
    bus.round('a', 'c'); // matched: c holds it
    bus.round('a', 'b'); // matched again (b was matched before c had it; either way both hold it)
    bus.tick('a', 1000);
    expect(a.store.has('gone')).toBe(false);
    expect(a.ae.tombstoneView(bus.config)).toMatchObject({ waiting: 0, purged: 1 });
    // b still holds the tombstone: a round tells b it was purged; b purges it too and the digests match.
    bus.round('b', 'a');
    expect(b.store.has('gone')).toBe(false);
    bus.round('a', 'c');
    expect(c.store.has('gone')).toBe(false);
    for (const r of [a, b, c]) expect(r.store.has('kept')).toBe(true);
    bus.round('b', 'c');
    expectSame(b, c);
    expectSame(a, b);
  });

  it('a push of a version the purged delete superseded does not bring the value back (simulator seed 202194)', () => {
    // A push is read from the sender's store before it merged the receiver's tombstone; the receiver purges
    // meanwhile; the stale version must not be merged into the now empty key.
    const [a, b] = [new Rep('a', 500), new Rep('b', 500)];
    const bus = new Bus([a, b]);
    a.write('gone', 'v');
    bus.round('a', 'b');
    const stale = b.store.get('gone') as VersionedRecord; // b's copy before the delete
    a.write('gone', null, 0);
    bus.round('a', 'b');
    bus.round('a', 'b'); // matched: b holds the tombstone
    bus.tick('a', 1000);
    expect(a.store.has('gone')).toBe(false); // purged at a
    const push: SyncMessage = { type: 'push', session: 777, epoch: bus.config.epoch, records: [{ key: 'gone', record: stale }], purged: [] };
    bus.exec(a, a.ae.step('b', push, 1001, bus.config, a));
    expect(a.store.has('gone')).toBe(false);
    // A write made after the delete is not covered by it: it is merged.
    b.write('gone', 'again', 0);
    const fresh: SyncMessage = { type: 'push', session: 778, epoch: bus.config.epoch, records: [{ key: 'gone', record: b.store.get('gone') as VersionedRecord }], purged: [] };
    bus.exec(a, a.ae.step('b', fresh, 1002, bus.config, a));
    expect(a.store.get('gone')?.siblings.some((x) => x.value !== null)).toBe(true);
  });

  it('keeps a tombstone younger than the grace period', () => {
    const [a, b] = [new Rep('a', 10_000), new Rep('b', 10_000)];
    const bus = new Bus([a, b]);
    a.write('k', 'v', 0);
    a.write('k', null, 0);
    bus.round('a', 'b');
    bus.round('a', 'b');
    bus.tick('a', 5_000);
    expect(a.store.has('k')).toBe(true);
    bus.tick('a', 10_000);
    expect(a.store.has('k')).toBe(false);
  });
});

describe('choice of the member for a round (issue 11 #8)', () => {
  it('a member that refuses every round does not take all rounds: the others get theirs', () => {
    const [a, b, c] = [new Rep('a'), new Rep('b'), new Rep('c')];
    const bus = new Bus([a, b, c]);
    c.refusing = true; // e.g. still receiving its admission's data
    for (let i = 0; i < 5; i++) b.write(`k${i}`, 'from b');
    for (let now = 2_000; now <= 40_000; now += 2_000) bus.tick('a', now);
    const views = new Map(a.ae.peerViews(bus.config).map((v) => [v.peerId, v]));
    expect(a.store.size).toBe(5); // repaired from b
    expect(views.get('b')?.rounds).toBeGreaterThanOrEqual(10);
    // c is still tried, less and less often while it keeps refusing.
    expect(views.get('c')?.failedRounds).toBeGreaterThanOrEqual(2);
    expect(views.get('c')?.failedRounds).toBeLessThanOrEqual(6);
    expect(views.get('c')?.lastRoundMs).toBeUndefined(); // /status: the last *completed* round
    // Once c answers again it gets its rounds.
    c.refusing = false;
    for (let now = 42_000; now <= 160_000; now += 2_000) bus.tick('a', now);
    expect(a.ae.peerViews(bus.config).find((v) => v.peerId === 'c')?.rounds).toBeGreaterThan(0);
    expectSame(a, c);
  });
});

describe('tombstone purge and membership epochs (issue 11 #10)', () => {
  /**
   * A, B and D are voters at epoch 1. A learner L was admitted at epoch 2 (A and B adopted it, D missed the
   * commit) and received `k = old`. Then k was deleted: A, B and D hold the tombstone, L missed the delete.
   */
  function scenario(): { bus: Bus; a: Rep; b: Rep; d: Rep; l: Rep; epoch1: MembershipConfig; epoch2: MembershipConfig } {
    const [a, b, d, l] = [new Rep('a', 500), new Rep('b', 500), new Rep('d', 500), new Rep('l', 500)];
    const bus = new Bus([a, b, d, l]);
    const epoch1 = configOf(['a', 'b', 'd'], 1);
    const epoch2 = configOf(['a', 'b', 'd'], 2, ['l']);
    bus.config = epoch2;
    d.config = epoch1;
    a.write('k', 'old', 0);
    a.write('kept', 'v', 0);
    for (const r of [b, d, l]) for (const key of ['k', 'kept']) r.put(key, a.store.get(key));
    a.write('k', null, 0);
    for (const r of [b, d]) {
      r.put('k', a.store.get('k'));
      r.ae.noteStored('k', a.store.get('k'), 0);
    }
    for (const r of [a, b, d, l]) for (const key of ['kept']) if (r !== a) r.ae.noteStored(key, r.store.get(key), 0);
    return { bus, a, b, d, l, epoch1, epoch2 };
  }

  const live = (r: Rep, key: string): boolean => r.store.get(key)?.siblings.some((s) => s.value !== null) === true;

  it('a device on an older epoch does not purge, so the new learner cannot bring the value back', () => {
    const { bus, a, b, d, l, epoch2 } = scenario();
    bus.round('d', 'a'); // A and B are at epoch 2: they refuse D's rounds (rounds only within one epoch)
    bus.round('d', 'b');
    expect(d.ae.peerViews(d.config as MembershipConfig).some((v) => v.matched === true)).toBe(false);
    bus.tick('d', 1_000); // past the grace period
    const dPurged = !d.store.has('k');
    // Rounds between everyone. Had D purged (on its stale member list), it would report the purge to A and B,
    // they would purge too, and L's round would bring `old` back to them.
    bus.round('d', 'a');
    bus.round('d', 'b');
    bus.round('l', 'a');
    bus.round('b', 'l');
    expect([a, b, d, l].filter((r) => live(r, 'k')).map((r) => r.id)).toEqual([]);
    expect(dPurged).toBe(false);
    expect(l.store.has('k')).toBe(true); // L got the tombstone

    // D learns epoch 2; once every member of it (L included) matched at epoch 2, the tombstone goes.
    d.config = epoch2;
    for (const peer of ['a', 'b', 'l']) bus.round('d', peer);
    bus.tick('d', 2_000);
    expect(d.store.has('k')).toBe(false);
    for (const peer of ['a', 'b', 'l']) bus.round(peer, 'd'); // the others follow D's purge report
    for (const r of [a, b, d, l]) {
      expect(r.store.has('k')).toBe(false);
      expect(r.store.has('kept')).toBe(true);
    }
  });

  it('a purge report from a peer at another epoch is not applied', () => {
    const { bus, a, d, epoch1 } = scenario();
    // A, B and D all at epoch 1 (L not admitted yet as far as any of them knows): D purges legitimately.
    bus.config = epoch1;
    bus.round('d', 'a');
    bus.round('d', 'b');
    bus.tick('d', 1_000);
    expect(d.store.has('k')).toBe(false);
    // A moves to epoch 2 (L admitted): D's report, made at epoch 1, is not applied there.
    a.config = configOf(['a', 'b', 'd'], 2, ['l']);
    bus.round('a', 'd'); // D answers A's listing with `purged`
    bus.round('d', 'a'); // D pushes `purged` to A
    expect(a.store.has('k')).toBe(true);
    expect(live(a, 'k')).toBe(false);
  });

  it('a match counts only while this device is at the epoch it was made at, with a peer at that epoch', () => {
    const { bus, a, b, d, epoch1 } = scenario();
    const epoch2 = configOf(['a', 'b', 'd'], 2); // say, a member's address changed
    bus.config = epoch2;
    d.config = epoch2;
    a.config = epoch1; // A missed that commit
    bus.round('d', 'a'); // matched, but A was at another epoch: does not count
    bus.round('d', 'b');
    bus.tick('d', 1_000);
    expect(d.store.has('k')).toBe(true);
    expect(d.ae.tombstoneView(epoch2)).toMatchObject({ waiting: 1, blockedBy: 'a' });
    a.config = epoch2;
    bus.round('d', 'a'); // now it counts: A and B matched at epoch 2
    // D's configuration moves on (same members, epoch 3): the marks of epoch 2 no longer count.
    const epoch3 = configOf(['a', 'b', 'd'], 3);
    d.config = epoch3;
    bus.tick('d', 1_000);
    expect(d.store.has('k')).toBe(true);
    a.config = epoch3;
    b.config = epoch3;
    bus.round('d', 'a');
    bus.round('d', 'b');
    bus.tick('d', 1_000);
    expect(d.store.has('k')).toBe(false);
  });

  it('a device that saw a peer at a higher epoch does not purge until it caught up', () => {
    const { bus, a, d, epoch1, epoch2 } = scenario();
    bus.config = epoch1;
    bus.round('d', 'a');
    bus.round('d', 'b'); // matched at epoch 1: these count
    a.config = epoch2;
    bus.round('a', 'd'); // A, now at epoch 2, starts a round with D: D is stale
    bus.tick('d', 1_000);
    expect(d.store.has('k')).toBe(true);
    expect(d.ae.tombstoneView(epoch1).waiting).toBe(1);
  });
});

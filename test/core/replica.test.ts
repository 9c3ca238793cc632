// ReplicaCore (src/core/replica.ts) driven by hand: write/read coordination, acks and timeouts, read repair,
// stale epochs, membership proposals, refusals, and the dot-actor crash hazard. Maps as stores.
import { describe, expect, it } from 'vitest';
import { InvalidConsistencyError, MembershipChangeError, NotMemberError } from '../../src/core/errors.js';
import { type MembershipConfig, withVoterAdded } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import type { ConsistencyLevel } from '../../src/core/quorum.js';
import { EMPTY_RECORD, type VersionedRecord, applyWrite, mergeRecords, recordsEqual } from '../../src/core/record.js';
import { type Action, type ClientResult, type LocalView, ReplicaCore } from '../../src/core/replica.js';
import { type Dot, dotKey } from '../../src/core/vv.js';

const TIMEOUT = 1000;
const value_ = (s: string): Uint8Array => new TextEncoder().encode(s);

function config(epoch: number, ids: readonly string[]): MembershipConfig {
  return { clusterId: 'cluster-1', epoch, voters: ids.map((peerId) => ({ peerId, addrs: [] })), learners: [], removed: [] };
}

/** A replica with a Map store that applies persist actions synchronously, as the runtime must. */
class Node implements LocalView {
  readonly store = new Map<string, VersionedRecord>();
  readonly core: ReplicaCore;
  /** The runtime's dot allocation: actor (the peer ID unless a test says otherwise) and durable counter. */
  actor: string;
  counter = 0;

  constructor(readonly id: string, cfg: MembershipConfig, opIdBase = 0) {
    this.core = new ReplicaCore({ self: id, config: cfg, requestTimeoutMs: TIMEOUT, opIdBase });
    this.actor = id;
  }

  get(key: string): VersionedRecord | undefined {
    return this.store.get(key);
  }

  /** Applies the persists of `actions` to the store and returns the actions unchanged. */
  apply(actions: Action[]): Action[] {
    for (const a of actions) if (a.type === 'persist') this.store.set(a.key, a.record);
    return actions;
  }

  write(key: string, value: string | null, level: ConsistencyLevel = 'quorum', context = {}, nowMs = 0) {
    this.counter += 1;
    const dot: Dot = { actor: this.actor, counter: this.counter };
    const request = { key, value: value === null ? null : new TextEncoder().encode(value), context, level, dot, nowMs, physicalMs: nowMs };
    const { opId, actions } = this.core.write(request, this);
    return { opId, dot, actions: this.apply(actions) };
  }

  /** A write with no causal context at all (the core then uses its local copy's). */
  writeWithoutContext(key: string, value: string | null, level: ConsistencyLevel = 'quorum') {
    this.counter += 1;
    const dot: Dot = { actor: this.actor, counter: this.counter };
    const request = { key, value: value === null ? null : value_(value), context: undefined, level, dot, nowMs: 0, physicalMs: 0 };
    const { opId, actions } = this.core.write(request, this);
    return { opId, dot, actions: this.apply(actions) };
  }

  read(key: string, level: ConsistencyLevel = 'quorum', nowMs = 0) {
    const { opId, actions } = this.core.read({ key, level, nowMs }, this);
    return { opId, actions: this.apply(actions) };
  }

  step(from: string, msg: Message): Action[] {
    return this.apply(this.core.step(from, msg, this));
  }
}

const replies = (actions: readonly Action[]): ClientResult[] =>
  actions.flatMap((a) => (a.type === 'reply' ? [a.result] : []));
const sends = (actions: readonly Action[]): Array<{ to: string; msg: Message }> =>
  actions.flatMap((a) => (a.type === 'send' ? [{ to: a.to, msg: a.msg }] : []));
const persists = (actions: readonly Action[]) => actions.flatMap((a) => (a.type === 'persist' ? [a] : []));
const only = <T>(items: readonly T[]): T => {
  expect(items).toHaveLength(1);
  return items[0] as T;
};
const dots = (r: VersionedRecord | undefined): string[] => (r ?? EMPTY_RECORD).siblings.map((s) => dotKey(s.dot));
const writeAck = (opId: number, epoch = 1): Message => ({ type: 'writeAck', opId, epoch });
const value = (s: string): Uint8Array => value_(s);

function cluster(ids = ['A', 'B', 'C']): Node[] {
  return ids.map((id, i) => new Node(id, config(1, ids), i * 1000));
}

describe('write coordination', () => {
  it('persists locally (acking itself once durable) and sends the record to every other replica', () => {
    const [a] = cluster();
    const { opId, dot, actions } = a!.write('k', 'v1');
    const persist = only(persists(actions));
    expect(actions[0]).toBe(persist);
    expect(persist.then).toEqual({ to: 'A', msg: writeAck(opId) });
    expect(dots(persist.record)).toEqual([dotKey(dot)]);
    expect(sends(actions)).toEqual([
      { to: 'B', msg: { type: 'write', opId, epoch: 1, key: 'k', record: persist.record } },
      { to: 'C', msg: { type: 'write', opId, epoch: 1, key: 'k', record: persist.record } },
    ]);
    expect(replies(actions)).toEqual([]);
    expect(a!.core.opsInFlight).toBe(1);
    expect(a!.core.nextDeadlineMs()).toBe(TIMEOUT);
  });

  it("replies 'written' after its own durable ack plus one replica ack (quorum of 3)", () => {
    const [a, b] = cluster();
    const { opId, actions } = a!.write('k', 'v1');
    const writeMsg = only(sends(actions).filter((s) => s.to === 'B')).msg;
    const replicaActions = b!.step('A', writeMsg);
    const replicaPersist = only(persists(replicaActions));
    expect(replicaPersist.then).toEqual({ to: 'A', msg: writeAck(opId) });
    expect(recordsEqual(b!.store.get('k')!, a!.store.get('k')!)).toBe(true);

    expect(a!.step('A', writeAck(opId))).toEqual([]);
    const result = only(replies(a!.step('B', writeAck(opId))));
    expect(result).toMatchObject({ type: 'written', opId, key: 'k', acks: 2, required: 2 });
    expect(a!.core.opsInFlight).toBe(0);
    // Late and duplicate acks are ignored.
    expect(a!.step('C', writeAck(opId))).toEqual([]);
  });

  it('counts each voter once and ignores acks from non-members', () => {
    const [a] = cluster();
    const { opId } = a!.write('k', 'v1');
    expect(a!.step('A', writeAck(opId))).toEqual([]);
    expect(a!.step('A', writeAck(opId))).toEqual([]);
    expect(a!.step('Z', writeAck(opId))).toEqual([]);
    expect(replies(a!.step('C', writeAck(opId)))).toHaveLength(1);
  });

  it("fails with quorum_unavailable (acks, required, voters) when the deadline passes", () => {
    const [a] = cluster();
    const { opId } = a!.write('k', 'v1', 'quorum', {}, 100);
    a!.step('A', writeAck(opId));
    expect(a!.core.tick(100 + TIMEOUT - 1)).toEqual([]);
    const result = only(replies(a!.core.tick(100 + TIMEOUT)));
    expect(result).toMatchObject({ type: 'failed', opId, code: 'quorum_unavailable', acks: 1, required: 2, voters: 3 });
    expect(a!.core.opsInFlight).toBe(0);
    expect(a!.step('B', writeAck(opId))).toEqual([]);
  });

  it('fails fast once sends to two of three voters failed and its own copy is durable', () => {
    const [a] = cluster();
    const { opId, actions } = a!.write('k', 'v1');
    const [toB, toC] = sends(actions);
    expect(a!.core.sendFailed(toB!.to, toB!.msg, a!)).toEqual([]);
    // Quorum is now out of reach, but the reply waits for the local write so its ack count is the truth.
    expect(a!.core.sendFailed(toC!.to, toC!.msg, a!)).toEqual([]);
    const result = only(replies(a!.step('A', writeAck(opId))));
    expect(result).toMatchObject({ type: 'failed', opId, code: 'quorum_unavailable', acks: 1, required: 2, voters: 3 });
  });

  it('fails fast at the second failed send when its own copy is already durable', () => {
    const [a] = cluster();
    const { opId, actions } = a!.write('k', 'v1');
    a!.step('A', writeAck(opId));
    const [toB, toC] = sends(actions);
    expect(a!.core.sendFailed(toB!.to, toB!.msg, a!)).toEqual([]);
    expect(only(replies(a!.core.sendFailed(toC!.to, toC!.msg, a!)))).toMatchObject({ type: 'failed', opId, acks: 1, required: 2 });
  });

  it('w=one replies after the local ack alone', () => {
    const [a] = cluster();
    const { opId } = a!.write('k', 'v1', 'one');
    expect(only(replies(a!.step('A', writeAck(opId))))).toMatchObject({ type: 'written', acks: 1, required: 1 });
  });

  it('w=all (and w=3) waits for every voter', () => {
    for (const level of ['all', 3] as const) {
      const [a] = cluster();
      const { opId } = a!.write('k', 'v1', level);
      expect(a!.step('A', writeAck(opId))).toEqual([]);
      expect(a!.step('B', writeAck(opId))).toEqual([]);
      expect(only(replies(a!.step('C', writeAck(opId))))).toMatchObject({ type: 'written', acks: 3, required: 3 });
    }
  });

  it('a write with the read context supersedes what was read; a blind one keeps it as a sibling', () => {
    const [a] = cluster();
    const first = a!.write('k', 'v1');
    const ctx = a!.store.get('k')!.context;
    const blind = a!.write('k', 'v2');
    expect(dots(a!.store.get('k'))).toEqual([dotKey(first.dot), dotKey(blind.dot)]);
    const resolved = a!.write('k', 'v3', 'quorum', a!.store.get('k')!.context);
    expect(dots(a!.store.get('k'))).toEqual([dotKey(resolved.dot)]);
    const del = a!.write('k', null, 'quorum', ctx);
    expect(dots(a!.store.get('k'))).toEqual([dotKey(resolved.dot), dotKey(del.dot)]);
  });

  it('a write without context supersedes the local copy; versions only elsewhere stay siblings', () => {
    const [a, b] = cluster();
    const local1 = a!.write('k', 'v1');
    const local2 = a!.write('k', 'v2', 'quorum', {}); // explicit empty context: a true blind write
    expect(dots(a!.store.get('k'))).toEqual([dotKey(local1.dot), dotKey(local2.dot)]);
    // B wrote concurrently; A has not seen it yet.
    const remote = b!.write('k', 'from-b', 'one');
    const noContext = a!.writeWithoutContext('k', 'v3');
    expect(dots(a!.store.get('k'))).toEqual([dotKey(noContext.dot)]);
    const merged = mergeRecords(a!.store.get('k')!, b!.store.get('k')!);
    expect(dots(merged)).toEqual([dotKey(noContext.dot), dotKey(remote.dot)]);
  });

  it('rejects impossible levels with InvalidConsistencyError and changes nothing', () => {
    const [a] = cluster();
    expect(() => a!.write('k', 'v', 4)).toThrow(InvalidConsistencyError);
    expect(() => a!.write('k', 'v', 0)).toThrow(InvalidConsistencyError);
    expect(() => a!.read('k', -1)).toThrow(InvalidConsistencyError);
    expect(() => a!.read('k', 7)).toThrow(InvalidConsistencyError);
    expect(a!.core.opsInFlight).toBe(0);
    expect(a!.store.size).toBe(0);
  });

  it('refuses to coordinate on a device that is not a member (epoch 0)', () => {
    const joiner = new Node('J', { clusterId: 'cluster-1', epoch: 0, voters: [], learners: [], removed: [] });
    expect(() => joiner.write('k', 'v')).toThrow(NotMemberError);
    expect(() => joiner.read('k')).toThrow(NotMemberError);
    expect(() => joiner.core.proposeConfig(config(1, ['J']), 0)).toThrow(NotMemberError);
    // And ignores replication traffic until it joins.
    const [a] = cluster();
    const { actions } = a!.write('k', 'v');
    expect(joiner.step('A', sends(actions)[0]!.msg)).toEqual([]);
    expect(joiner.step('A', { type: 'read', opId: 1, epoch: 1, key: 'k' })).toEqual([]);
  });
});

describe('replica side', () => {
  it('merges a replicated write into its copy and acknowledges after persisting', () => {
    const [a, b] = cluster();
    const mine = b!.write('k', 'from-b', 'one');
    const { opId, actions } = a!.write('k', 'from-a');
    const out = b!.step('A', sends(actions)[0]!.msg);
    const persist = only(persists(out));
    expect(persist.then).toEqual({ to: 'A', msg: writeAck(opId) });
    expect(dots(b!.store.get('k'))).toEqual(['A:1', dotKey(mine.dot)]);
  });

  it('serves reads from its store', () => {
    const [, b] = cluster();
    b!.write('k', 'v');
    const out = b!.step('A', { type: 'read', opId: 9, epoch: 1, key: 'k' });
    expect(out).toEqual([{ type: 'send', to: 'A', msg: { type: 'readReply', opId: 9, epoch: 1, key: 'k', record: b!.store.get('k') } }]);
    const missing = b!.step('A', { type: 'read', opId: 10, epoch: 1, key: 'nope' });
    expect(missing).toEqual([{ type: 'send', to: 'A', msg: { type: 'readReply', opId: 10, epoch: 1, key: 'nope', record: undefined } }]);
  });

  it("refuses requests from an older epoch with 'stale' and its configuration", () => {
    const newer = config(2, ['A', 'B', 'C', 'D']);
    const b = new Node('B', newer);
    const [a] = cluster();
    const { opId, actions } = a!.write('k', 'v');
    expect(b.step('A', sends(actions)[0]!.msg)).toEqual([{ type: 'send', to: 'A', msg: { type: 'stale', opId, epoch: 2, config: newer } }]);
    expect(b.store.size).toBe(0);
    expect(b.step('A', { type: 'read', opId: 5, epoch: 1, key: 'k' })).toEqual([
      { type: 'send', to: 'A', msg: { type: 'stale', opId: 5, epoch: 2, config: newer } },
    ]);
  });

  it('merges repairs from members and ignores repairs from strangers', () => {
    const [a, b] = cluster();
    a!.write('k', 'v');
    const record = a!.store.get('k')!;
    expect(b!.step('Z', { type: 'repair', epoch: 1, key: 'k', record })).toEqual([]);
    expect(persists(b!.step('A', { type: 'repair', epoch: 1, key: 'k', record }))).toHaveLength(1);
    expect(recordsEqual(b!.store.get('k')!, record)).toBe(true);
    expect(b!.step('A', { type: 'repair', epoch: 1, key: 'k', record })).toEqual([]);
  });
});

describe('read coordination', () => {
  function seeded(): { a: Node; b: Node; c: Node; old: VersionedRecord; newer: VersionedRecord } {
    const [a, b, c] = cluster();
    const old = applyWrite(EMPTY_RECORD, {}, { actor: 'C', counter: 1 }, value('old'), { wallMs: 1, logical: 0 });
    const newer = applyWrite(old, old.context, { actor: 'C', counter: 2 }, value('new'), { wallMs: 2, logical: 0 });
    a!.store.set('k', old);
    b!.store.set('k', newer);
    return { a: a!, b: b!, c: c!, old, newer };
  }

  it('merges a quorum of replies, answers, and read-repairs the stale local copy and late repliers', () => {
    const { a, newer } = seeded();
    const { opId, actions } = a.read('k');
    expect(sends(actions)).toEqual([
      { to: 'B', msg: { type: 'read', opId, epoch: 1, key: 'k' } },
      { to: 'C', msg: { type: 'read', opId, epoch: 1, key: 'k' } },
    ]);
    expect(replies(actions)).toEqual([]);
    const out = a.step('B', { type: 'readReply', opId, epoch: 1, key: 'k', record: newer });
    const result = only(replies(out));
    expect(result).toMatchObject({ type: 'read', opId, key: 'k', replies: 2, required: 2 });
    expect(result.type === 'read' && recordsEqual(result.record!, newer)).toBe(true);
    // The coordinator's own copy was stale: repaired in place; B was current: nothing sent.
    expect(persists(out)).toHaveLength(1);
    expect(recordsEqual(a.store.get('k')!, newer)).toBe(true);
    expect(sends(out)).toEqual([]);
    // C answers late with nothing: it is repaired with what the client was told.
    const late = a.step('C', { type: 'readReply', opId, epoch: 1, key: 'k', record: undefined });
    expect(late).toEqual([{ type: 'send', to: 'C', msg: { type: 'repair', epoch: 1, key: 'k', record: result.type === 'read' ? result.record : undefined } }]);
    expect(a.core.opsInFlight).toBe(0);
  });

  it('returns concurrent siblings from different replicas together and repairs both sides', () => {
    const [a] = cluster();
    const mine = applyWrite(EMPTY_RECORD, {}, { actor: 'A', counter: 1 }, value('a'), { wallMs: 1, logical: 0 });
    const theirs = applyWrite(EMPTY_RECORD, {}, { actor: 'B', counter: 1 }, value('b'), { wallMs: 1, logical: 0 });
    a!.store.set('k', mine);
    const { opId } = a!.read('k');
    const out = a!.step('B', { type: 'readReply', opId, epoch: 1, key: 'k', record: theirs });
    const result = only(replies(out));
    expect(result.type === 'read' && dots(result.record)).toEqual(['A:1', 'B:1']);
    expect(dots(a!.store.get('k'))).toEqual(['A:1', 'B:1']);
    expect(only(sends(out))).toMatchObject({ to: 'B', msg: { type: 'repair', key: 'k', record: mergeRecords(mine, theirs) } });
  });

  it('r=one answers from the local copy at once; r=all waits for every voter', () => {
    const { a, b, newer } = seeded();
    const one = a.read('k', 'one');
    expect(only(replies(one.actions))).toMatchObject({ type: 'read', replies: 1, required: 1 });
    const all = b.read('k', 'all');
    expect(replies(b.step('A', { type: 'readReply', opId: all.opId, epoch: 1, key: 'k', record: undefined }))).toEqual([]);
    const done = b.step('C', { type: 'readReply', opId: all.opId, epoch: 1, key: 'k', record: undefined });
    const result = only(replies(done));
    expect(result).toMatchObject({ type: 'read', replies: 3, required: 3 });
    expect(result.type === 'read' && recordsEqual(result.record!, newer)).toBe(true);
    expect(sends(done).map((s) => s.to).sort()).toEqual(['A', 'C']);
  });

  it('answers an absent key with no record and repairs nothing', () => {
    const [a] = cluster();
    const { opId } = a!.read('nope');
    const out = a!.step('B', { type: 'readReply', opId, epoch: 1, key: 'nope', record: undefined });
    expect(only(replies(out))).toMatchObject({ type: 'read', record: undefined, replies: 2 });
    expect(out.filter((x) => x.type !== 'reply')).toEqual([]);
  });

  it('fails on timeout and fast on unreachable voters', () => {
    const [a] = cluster();
    const slow = a!.read('k', 'quorum', 50);
    expect(only(replies(a!.core.tick(50 + TIMEOUT)))).toMatchObject({ type: 'failed', opId: slow.opId, acks: 1, required: 2, voters: 3 });
    const fast = a!.read('k', 'all');
    const [toB] = sends(fast.actions);
    expect(only(replies(a!.core.sendFailed(toB!.to, toB!.msg, a!)))).toMatchObject({ type: 'failed', code: 'quorum_unavailable', required: 3 });
  });
});

describe('stale epochs', () => {
  it("a coordinator told 'stale' adopts the newer configuration and resends its write to the new replicas", () => {
    const [a] = cluster();
    const newer = config(2, ['A', 'B', 'C', 'D']);
    const { opId } = a!.write('k', 'v');
    const out = a!.step('B', { type: 'stale', opId, epoch: 2, config: newer });
    expect(out[0]).toEqual({ type: 'persistConfig', config: newer, then: undefined });
    expect(a!.core.epoch).toBe(2);
    expect(sends(out).map((s) => s.to)).toEqual(['B', 'C', 'D']);
    for (const s of sends(out)) expect(s.msg).toMatchObject({ type: 'write', opId, epoch: 2, key: 'k' });
    // Its own copy had not acknowledged yet: it is persisted again under the new epoch.
    expect(only(persists(out)).then).toEqual({ to: 'A', msg: writeAck(opId, 2) });
    // Now a majority of 4 is needed.
    a!.step('A', writeAck(opId, 2));
    expect(a!.step('B', writeAck(opId, 2))).toEqual([]);
    expect(only(replies(a!.step('D', writeAck(opId, 2))))).toMatchObject({ type: 'written', acks: 3, required: 3 });
  });

  it('a stale reply to a read re-sends the read to the new voters', () => {
    const [a] = cluster();
    const { opId } = a!.read('k');
    const out = a!.step('C', { type: 'stale', opId, epoch: 2, config: config(2, ['A', 'B', 'C', 'D']) });
    expect(sends(out).map((s) => s.to)).toEqual(['B', 'C', 'D']);
    expect(replies(a!.step('B', { type: 'readReply', opId, epoch: 2, key: 'k', record: undefined }))).toEqual([]);
    expect(only(replies(a!.step('D', { type: 'readReply', opId, epoch: 2, key: 'k', record: undefined })))).toMatchObject({ required: 3, replies: 3 });
  });

  it('ignores a stale message that is not newer than its configuration', () => {
    const [a] = cluster();
    const { opId } = a!.write('k', 'v');
    expect(a!.step('B', { type: 'stale', opId, epoch: 1, config: config(1, ['A', 'B', 'C']) })).toEqual([]);
    expect(a!.core.epoch).toBe(1);
  });

  it('fails an operation whose level became impossible in the new configuration', () => {
    const [a] = cluster();
    const { opId } = a!.write('k', 'v', 3);
    const out = a!.step('B', { type: 'stale', opId, epoch: 2, config: config(2, ['A', 'B']) });
    expect(only(replies(out))).toMatchObject({ type: 'failed', opId, code: 'quorum_unavailable', voters: 2 });
  });
});

describe('membership proposals', () => {
  const member = { peerId: 'D', addrs: [] };

  it('commits once a majority of the old voters accepted durably, then announces the configuration', () => {
    const [a, b] = cluster();
    const proposed = withVoterAdded(a!.core.config, member);
    const { opId, actions } = a!.core.proposeConfig(proposed, 0);
    expect(actions[0]).toEqual({
      type: 'persistConfig',
      config: proposed,
      then: { to: 'A', msg: { type: 'configAck', opId, epoch: 2, accepted: true, config: undefined } },
    });
    expect(sends(actions).map((s) => s.to)).toEqual(['B', 'C']);
    expect(a!.step('A', { type: 'configAck', opId, epoch: 2, accepted: true, config: undefined })).toEqual([]);

    const voterOut = b!.step('A', sends(actions)[0]!.msg);
    expect(voterOut).toEqual([
      { type: 'persistConfig', config: proposed, then: { to: 'A', msg: { type: 'configAck', opId, epoch: 2, accepted: true, config: undefined } } },
    ]);
    expect(b!.core.epoch).toBe(2);

    const out = a!.step('B', { type: 'configAck', opId, epoch: 2, accepted: true, config: undefined });
    expect(only(replies(out))).toEqual({ type: 'configCommitted', opId, config: proposed });
    expect(sends(out).map((s) => s.to)).toEqual(['B', 'C', 'D']);
    for (const s of sends(out)) expect(s.msg).toEqual({ type: 'config', epoch: 2, config: proposed });
    expect(a!.core.epoch).toBe(2);
  });

  it('fails when a majority of the old voters refused or could not be reached', () => {
    const [a] = cluster();
    // C already moved to a different epoch-2 configuration: it refuses and says which.
    const other = config(2, ['A', 'B', 'C', 'E']);
    const c = new Node('C', other);
    const proposed = withVoterAdded(a!.core.config, member);
    const { opId, actions } = a!.core.proposeConfig(proposed, 0);
    a!.step('A', { type: 'configAck', opId, epoch: 2, accepted: true, config: undefined });
    const toB = sends(actions)[0]!;
    expect(a!.core.sendFailed(toB.to, toB.msg, a!)).toEqual([]);
    const refusal = only(sends(c.step('A', sends(actions)[1]!.msg)));
    expect(refusal.msg).toEqual({ type: 'configAck', opId, epoch: 2, accepted: false, config: other });
    const out = a!.step('C', refusal.msg);
    expect(only(replies(out))).toMatchObject({ type: 'failed', opId, code: 'membership_change_failed', acks: 1, required: 2, voters: 3 });
  });

  it('times out like any other operation', () => {
    const [a] = cluster();
    const { opId } = a!.core.proposeConfig(withVoterAdded(a!.core.config, member), 10);
    expect(only(replies(a!.core.tick(10 + TIMEOUT)))).toMatchObject({ type: 'failed', opId, code: 'membership_change_failed' });
  });

  it('allows one change at a time, for the next epoch only', () => {
    const [a] = cluster();
    expect(() => a!.core.proposeConfig(config(3, ['A', 'B', 'C', 'D']), 0)).toThrow(MembershipChangeError);
    expect(() => a!.core.proposeConfig({ ...withVoterAdded(a!.core.config, member), clusterId: 'other' }, 0)).toThrow(MembershipChangeError);
    const b = new Node('B', config(1, ['A', 'B', 'C']));
    b.core.proposeConfig(withVoterAdded(b.core.config, member), 0);
    // B adopted its own proposal; a proposal for the same epoch again is refused while the first is in flight.
    expect(() => b.core.proposeConfig(withVoterAdded(config(2, ['A', 'B', 'C']), { peerId: 'E', addrs: [] }), 0)).toThrow(
      MembershipChangeError,
    );
  });

  it('a voter refuses a proposal from a non-voter or for a non-adjacent epoch', () => {
    const [, b] = cluster();
    const proposed = withVoterAdded(config(1, ['A', 'B', 'C']), member);
    expect(b!.step('Z', { type: 'configPropose', opId: 1, epoch: 1, config: proposed })).toEqual([
      { type: 'send', to: 'Z', msg: { type: 'configAck', opId: 1, epoch: 1, accepted: false, config: b!.core.config } },
    ]);
    const skip = config(3, ['A', 'B', 'C', 'D']);
    expect(b!.step('A', { type: 'configPropose', opId: 2, epoch: 2, config: skip })).toMatchObject([
      { type: 'send', msg: { type: 'configAck', accepted: false } },
    ]);
    expect(b!.core.epoch).toBe(1);
  });
});

describe('crash recovery and dot actors', () => {
  const msgTo = (actions: readonly Action[], to: string): Message => only(sends(actions).filter((s) => s.to === to)).msg;

  /**
   * 1. A write W is acknowledged at w=all: every replica holds it durably.
   * 2. A client that read W overwrites it through B (an RMW). B stages it, sends it, A persists it; then B
   *    crashes before its own copy is durable (and before C got it): the RMW's client gets no answer.
   * 3. B restarts from its durable store; its runtime names the next dot with `actorAfterRestart` (counter
   *    from the durable dot counter, so no dot is reused).
   * 4. A blind write through B reaches A.
   * Returns W, the RMW, and the merge of each majority {A,B}, {A,C}, {B,C} (what r=quorum reads).
   */
  function crashLosesStagedWrite(actorAfterRestart: string): { w: string; rmw: string; quorums: VersionedRecord[] } {
    const [a, b, c] = cluster();
    const w = a!.write('k', 'w', 'all');
    for (const peer of [b!, c!]) a!.step(peer.id, only(persists(peer.step('A', msgTo(w.actions, peer.id)))).then!.msg);
    expect(only(replies(a!.step('A', writeAck(w.opId))))).toMatchObject({ type: 'written', acks: 3, required: 3 });
    const durableAtB = b!.store.get('k')!;

    const rmw = b!.write('k', 'x', 'quorum', durableAtB.context);
    a!.step('B', msgTo(rmw.actions, 'A'));

    const restarted = new Node('B', config(1, ['A', 'B', 'C']), 500);
    restarted.store.set('k', durableAtB);
    restarted.actor = actorAfterRestart;
    restarted.counter = actorAfterRestart === 'B' ? b!.counter : 0;
    const blind = restarted.write('k', 'y', 'quorum', {});
    a!.step('B', msgTo(blind.actions, 'A'));

    const stores = [a!.store.get('k')!, restarted.store.get('k')!, c!.store.get('k')!] as const;
    const quorums = [mergeRecords(stores[0], stores[1]), mergeRecords(stores[0], stores[2]), mergeRecords(stores[1], stores[2])];
    return { w: dotKey(w.dot), rmw: dotKey(rmw.dot), quorums };
  }

  // Why the runtime takes a fresh dot actor after an unclean stop (src/node/daemon.ts nextDotActor): a
  // record's context is a version vector, so dot (B, n) in it claims "B has seen all of B's earlier dots for
  // this key". A device that crashed with a staged (not yet durable) write that had already left it breaks that
  // claim if it keeps its actor: its next write's context covers the lost dot, every replica holding that dot
  // drops it, and with it the writes it had superseded -- here W, acknowledged by all three replicas. The
  // durable dot counter prevents reuse of a dot, not this coverage. The simulator checks it too ('reuseActor').
  it.fails('the hazard: reusing the dot actor after a crash loses a write acknowledged by all', () => {
    const { w, rmw, quorums } = crashLosesStagedWrite('B');
    for (const q of quorums) expect(dots(q).some((d) => d === w || d === rmw)).toBe(true);
  });

  it('with a fresh dot actor after the crash, every majority keeps W or the write that superseded it', () => {
    const { w, rmw, quorums } = crashLosesStagedWrite('B~1');
    for (const q of quorums) expect(dots(q).some((d) => d === w || d === rmw)).toBe(true);
    expect(dots(quorums[0])).toEqual([rmw, 'B~1:1']);
  });
});

// fast-check generators for well-formed records and replication messages, shared by the wire codec tests.
import fc from 'fast-check';
import { WireFormatError } from '../../src/wire/errors.js';
import { expect } from 'vitest';
import type { ConfigProof, MemberInfo, MembershipConfig } from '../../src/core/membership.js';
import type { Ballot } from '../../src/core/paxos.js';
import type { SyncMessage } from '../../src/core/anti-entropy.js';
import type { Hash64 } from '../../src/core/digest.js';
import type { KeyedRecord, Message } from '../../src/core/messages.js';
import { DOT_COUNTER_MAX, type Sibling, type VersionedRecord, compareSiblings } from '../../src/core/record.js';

const actor = fc.string({ minLength: 1, maxLength: 12 }).filter((a) => a !== '__proto__');
const counter = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: DOT_COUNTER_MAX }));
const uint = fc.oneof(fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const value = fc.option(fc.uint8Array({ maxLength: 64 }), { nil: null, freq: 3 });

export const recordArb: fc.Arbitrary<VersionedRecord> = fc
  .uniqueArray(fc.record({ actor, counter, value, wallMs: uint, logical: uint }), {
    selector: (s) => `${s.actor}\u0000${s.counter}`,
    maxLength: 5,
  })
  .chain((sibs) =>
    fc.dictionary(actor, counter, { maxKeys: 4 }).map((extra) => {
      const context: Record<string, number> = { ...extra };
      for (const s of sibs) context[s.actor] = Math.max(Object.hasOwn(context, s.actor) ? (context[s.actor] as number) : 0, s.counter);
      const siblings: Sibling[] = sibs
        .map((s) => ({ dot: { actor: s.actor, counter: s.counter }, value: s.value, hlc: { wallMs: s.wallMs, logical: s.logical } }))
        .sort(compareSiblings);
      return { context, siblings };
    }),
  );

/** A seat claim (MemberInfo.claim, joinRequest.claim): any epoch, a signature string of a plausible length. */
const claimArb = fc.record({ from: fc.string({ maxLength: 32 }), since: uint, signature: fc.string({ minLength: 1, maxLength: 100 }) });

const memberArb: fc.Arbitrary<MemberInfo> = fc
  .record({
    peerId: fc.string({ minLength: 1, maxLength: 10 }),
    addrs: fc.array(fc.string({ maxLength: 30 }), { maxLength: 3 }),
    store: fc.option(fc.string({ minLength: 1, maxLength: 32 }), { nil: undefined }),
    claim: fc.option(claimArb, { nil: undefined }),
  })
  .map(({ store, claim, ...m }) => ({ ...m, ...(store === undefined ? {} : { store }), ...(claim === undefined ? {} : { claim }) }));

const proofArb: fc.Arbitrary<ConfigProof> = fc.record({
  ballot: fc.record({ round: fc.nat(), proposer: fc.string({ maxLength: 10 }) }),
  signatures: fc.array(fc.record({ peerId: fc.string({ minLength: 1, maxLength: 10 }), signature: fc.string({ minLength: 1, maxLength: 88 }) }), { maxLength: 3 }),
});

export const configArb: fc.Arbitrary<MembershipConfig> = fc
  .record({
    clusterId: fc.string({ minLength: 1, maxLength: 10 }),
    epoch: uint,
    members: fc.uniqueArray(memberArb, { selector: (m) => m.peerId, maxLength: 5 }),
    nVoters: fc.nat(5),
    removed: fc.array(fc.string({ minLength: 1, maxLength: 10 }), { maxLength: 3 }),
    previousVoters: fc.array(fc.string({ minLength: 1, maxLength: 10 }), { maxLength: 3 }),
    proof: fc.option(proofArb, { nil: undefined }),
  })
  .map(({ clusterId, epoch, members, nVoters, removed, previousVoters, proof }) => {
    const voters = members.slice(0, Math.max(nVoters, epoch > 0 ? 1 : 0));
    const learners = members.slice(voters.length);
    const ids = new Set(members.map((m) => m.peerId));
    // A committed configuration needs a voter; with no members at all it stays "not yet a member".
    // A replaced seat is a previous voter that is still a voter (with its new store).
    const replaced = previousVoters.filter((p) => voters.some((v) => v.peerId === p)).slice(0, 1);
    const config = { clusterId, epoch: voters.length === 0 ? 0 : epoch, voters, learners, removed: removed.filter((p) => !ids.has(p)), previousVoters, replaced };
    return proof === undefined ? config : { ...config, proof };
  });

const ballotArb: fc.Arbitrary<Ballot> = fc.record({ round: uint, proposer: fc.string({ maxLength: 10 }) });

const keyArb = fc.string({ maxLength: 20 });
const keyedArb: fc.Arbitrary<KeyedRecord> = fc.record({ key: keyArb, record: recordArb });

export const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc
    .record({ type: fc.constant('write' as const), opId: uint, epoch: uint, key: keyArb, record: recordArb, dot: fc.option(fc.record({ actor, counter }), { nil: undefined }) })
    .map(({ dot, ...m }) => (dot === undefined ? m : { ...m, dot })),
  fc.record({ type: fc.constant('writeAck' as const), opId: uint, epoch: uint }),
  fc.record({ type: fc.constant('read' as const), opId: uint, epoch: uint, key: keyArb }),
  fc.record({ type: fc.constant('readReply' as const), opId: uint, epoch: uint, key: keyArb, record: fc.option(recordArb, { nil: undefined }) }),
  fc.record({ type: fc.constant('readReply' as const), opId: uint, epoch: uint, key: keyArb, record: fc.constant(undefined), unavailable: fc.constant(true as const) }),
  fc.record({ type: fc.constant('repair' as const), epoch: uint, key: keyArb, record: recordArb }),
  fc
    .record({ type: fc.constant('stale' as const), opId: uint, epoch: uint, config: configArb, chain: fc.array(configArb, { maxLength: 2 }) })
    .map(({ chain, ...m }) => (chain.length === 0 ? m : { ...m, chain })),
  fc.record({ type: fc.constant('configPrepare' as const), opId: uint, epoch: uint, ballot: ballotArb, config: configArb }),
  fc.record({
    type: fc.constant('configPromise' as const),
    opId: uint,
    epoch: uint,
    ballot: ballotArb,
    ok: fc.boolean(),
    accepted: fc.option(fc.record({ ballot: ballotArb, config: configArb }), { nil: undefined }),
    promised: fc.option(ballotArb, { nil: undefined }),
    config: fc.option(configArb, { nil: undefined }),
  }),
  fc.record({ type: fc.constant('configAccept' as const), opId: uint, epoch: uint, ballot: ballotArb, config: configArb }),
  fc.record({
    type: fc.constant('configAccepted' as const),
    opId: uint,
    epoch: uint,
    ballot: ballotArb,
    ok: fc.boolean(),
    promised: fc.option(ballotArb, { nil: undefined }),
    config: fc.option(configArb, { nil: undefined }),
    signature: fc.option(fc.string({ minLength: 1, maxLength: 88 }), { nil: undefined }),
  }).map(({ signature, ...m }) => (signature === undefined ? m : { ...m, signature })),
  fc
    .record({ type: fc.constant('heartbeat' as const), opId: uint, epoch: uint, store: fc.option(fc.string({ minLength: 1, maxLength: 32 }), { nil: undefined }) })
    .map(({ store, ...m }) => (store === undefined ? m : { ...m, store })),
  fc.record({ type: fc.constant('heartbeatAck' as const), opId: uint, epoch: uint }),
  fc
    .record({ type: fc.constant('config' as const), epoch: uint, config: configArb, chain: fc.array(configArb, { maxLength: 2 }) })
    .map(({ chain, ...m }) => (chain.length === 0 ? m : { ...m, chain })),
  fc
    .record({
      type: fc.constant('joinRequest' as const),
      opId: uint,
      epoch: uint,
      addrs: fc.array(fc.string({ maxLength: 30 }), { maxLength: 3 }),
      store: fc.option(fc.string({ minLength: 1, maxLength: 32 }), { nil: undefined }),
      claim: fc.option(claimArb, { nil: undefined }),
    })
    .map(({ store, claim, ...m }) => ({ ...m, ...(store === undefined ? {} : { store }), ...(claim === undefined ? {} : { claim }) })),
  fc.record({ type: fc.constant('joinReply' as const), opId: uint, epoch: uint, ok: fc.boolean(), error: fc.string({ maxLength: 20 }), config: fc.option(configArb, { nil: undefined }) }),
  fc.record(
    { type: fc.constant('transfer' as const), opId: uint, epoch: uint, seq: uint, records: fc.array(keyedArb, { maxLength: 3 }), done: fc.boolean(), total: uint },
    { requiredKeys: ['type', 'opId', 'epoch', 'seq', 'records', 'done'] },
  ),
  fc.record({ type: fc.constant('transferAck' as const), opId: uint, epoch: uint, seq: uint, resumeAfter: keyArb }, { requiredKeys: ['type', 'opId', 'epoch', 'seq'] }),
  fc.record({ type: fc.constant('transferRequest' as const), opId: uint, epoch: uint }),
);

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const hashArb: fc.Arbitrary<Hash64> = fc.record({ hi: u32, lo: u32 });
const session = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const syncEpoch = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const keyed = fc.record({ key: keyArb, record: recordArb });
const entry = fc.record({ key: keyArb, hash: u32 });
const purgedEntry = fc.record({ key: keyArb, hash: hashArb });

/** Every anti-entropy message kind, with small lists. */
export const syncArb: fc.Arbitrary<SyncMessage> = fc.oneof(
  fc.record({ type: fc.constant('digest' as const), session, epoch: syncEpoch, root: hashArb, keys: fc.nat(), level: fc.nat(8), nodes: fc.array(u32, { maxLength: 20 }) }),
  fc.record({ type: fc.constant('digestReply' as const), session, epoch: syncEpoch, root: hashArb, keys: fc.nat(), level: fc.nat(8), hashes: fc.array(u32, { maxLength: 40 }) }),
  fc.record({ type: fc.constant('segments' as const), session, epoch: syncEpoch, segments: fc.array(u32, { maxLength: 20 }), entries: fc.array(entry, { maxLength: 10 }) }),
  fc.record({
    type: fc.constant('segmentsReply' as const),
    session,
    epoch: syncEpoch,
    done: fc.nat(600),
    records: fc.array(keyed, { maxLength: 4 }),
    want: fc.array(keyArb, { maxLength: 5 }),
    purged: fc.array(purgedEntry, { maxLength: 5 }),
  }),
  fc.record({ type: fc.constant('push' as const), session, epoch: syncEpoch, records: fc.array(keyed, { maxLength: 4 }), purged: fc.array(purgedEntry, { maxLength: 5 }) }),
  fc.record({ type: fc.constant('pushAck' as const), session }),
  fc.record({ type: fc.constant('refused' as const), session, reason: fc.string({ maxLength: 50 }) }),
);

/** Asserts that `decode` either succeeds or throws WireFormatError, never anything else. */
export function expectOnlyWireErrors(decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array): void {
  try {
    decode(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(WireFormatError);
  }
}

/** Feeds `decode` the encoding cut short at `at` and with bit `bit` of byte `at` flipped. */
export function expectCorruptionsRejected(decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array, at: number, bit: number): void {
  if (bytes.length === 0) return;
  const i = at % bytes.length;
  expectOnlyWireErrors(decode, bytes.subarray(0, i));
  const flipped = bytes.slice();
  flipped[i] = (flipped[i] as number) ^ (1 << bit);
  expectOnlyWireErrors(decode, flipped);
}

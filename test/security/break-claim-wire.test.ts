// Seat claims from the wire and from disk (src/wire/replica.ts claimFromPb, src/core/membership.ts
// seatClaimShapeProblem, src/node/data-dir.ts loadMembership): odd claims are refused as WireFormatError (never
// another exception, and no bytes that are not UTF-8), and a configuration with claims round-trips through a frame
// and through the stored JSON with its proof intact.
import { describe, expect, it } from 'vitest';
import { acceptPayload, proofProblem, signSeatClaim } from '../../src/core/config-proof.js';
import { type MembershipConfig, configsEqual, withSeatReplaced } from '../../src/core/membership.js';
import { loadMembership } from '../../src/node/data-dir.js';
import { META_MEMBERSHIP } from '../../src/node/runtime.js';
import { MemoryStore } from '../../src/storage/memory.js';
import { WireFormatError } from '../../src/wire/errors.js';
import { decodeFrame, encodeFrame } from '../../src/wire/replica.js';
import * as pb from '../../src/wire/gen/replica.pb.js';
import { newKey } from '../helpers/keys.js';

const blank: pb.Message = {
  type: pb.MessageType.JOIN_REQUEST, opId: 1n, epoch: 0n, key: '', accepted: false, addrs: [], ok: false, error: '', records: [], done: false, seq: 0n, unavailable: false, store: 's2', chain: [], signature: '',
};

const joinRequest = (claim: pb.SeatClaim): Uint8Array => pb.Frame.encode({ messages: [{ ...blank, claim }] });
const seatConfig = (claim: pb.SeatClaim): Uint8Array =>
  pb.Frame.encode({
    messages: [
      {
        ...blank,
        type: pb.MessageType.CONFIG,
        store: '',
        config: { clusterId: 'c', epoch: 2n, voters: [{ peerId: 'p', addrs: [], store: 's2', claim }], learners: [], removed: [], previousVoters: [], replaced: [] },
      },
    ],
  });

describe('seat claims on the wire', () => {
  const sig = 'A'.repeat(88);
  it('refuses odd claims with WireFormatError only', () => {
    const bad: Array<[string, pb.SeatClaim]> = [
      ['since 2^53', { from: 's1', since: 2n ** 53n, signature: sig }],
      ['since 2^64 - 1', { from: 's1', since: 2n ** 64n - 1n, signature: sig }],
      ['an empty claim message', { from: 's1', since: 0n, signature: '' }],
      ['a signature of 257 characters', { from: 's1', since: 1n, signature: 'A'.repeat(257) }],
      ['a lone surrogate', { from: 's1', since: 1n, signature: 'A\ud800' }],
      ['a from-store of 65 characters', { from: 'a'.repeat(65), since: 1n, signature: sig }],
    ];
    for (const [what, claim] of bad) {
      for (const bytes of [joinRequest(claim), seatConfig(claim)]) {
        expect(() => decodeFrame(bytes), what).toThrow(WireFormatError);
      }
    }
    // The largest safe epoch is a claim's shape; it proves nothing before that epoch (seatClaimProblem).
    const [msg] = decodeFrame(joinRequest({ from: 's1', since: BigInt(Number.MAX_SAFE_INTEGER), signature: sig }));
    expect(msg).toMatchObject({ type: 'joinRequest', claim: { since: Number.MAX_SAFE_INTEGER } });
  });

  it('refuses a signature of bytes that are no UTF-8 (WireFormatError)', async () => {
    const d = await newKey();
    const good = signSeatClaim(d.auth, d.id, 's1', 's2', 1);
    for (const bytes of [joinRequest({ from: 's1', since: 1n, signature: good.signature }), seatConfig({ from: 's1', since: 1n, signature: good.signature })]) {
      expect(decodeFrame(bytes)).toHaveLength(1);
      // Overwrite the signature's first two bytes with 0xff 0xfe (no UTF-8).
      const at = Buffer.from(bytes).indexOf(Buffer.from(good.signature));
      bytes[at] = 0xff;
      bytes[at + 1] = 0xfe;
      expect(() => decodeFrame(bytes)).toThrow(WireFormatError);
    }
  });

  it('round-trips a configuration whose seat carries a claim, and its proof still verifies', async () => {
    const [x, d] = await Promise.all([newKey(), newKey()]);
    const base: MembershipConfig = {
      clusterId: 'c', epoch: 1, voters: [{ peerId: x.id, addrs: [], store: 'sx' }, { peerId: d.id, addrs: [], store: 's1' }], learners: [], removed: [], previousVoters: [],
    };
    const next = withSeatReplaced(base, d.id, 's2', [], signSeatClaim(d.auth, d.id, 's1', 's2', 1));
    const ballot = { round: 1, proposer: x.id };
    const proven = { ...next, proof: { ballot, signatures: [{ peerId: x.id, signature: x.auth.sign(acceptPayload(next, ballot)) }] } };
    const [msg] = decodeFrame(encodeFrame([{ type: 'config', epoch: 2, config: proven }]));
    if (msg?.type !== 'config') throw new Error('no config decoded');
    expect(configsEqual(msg.config, proven)).toBe(true);
    expect(proofProblem(base, msg.config, d.auth)).toBeUndefined();
  });
});

describe('seat claims on disk', () => {
  it('a configuration with a claim round-trips through the stored membership and keeps its proof', async () => {
    const [a, d] = await Promise.all([newKey(), newKey()]);
    const base: MembershipConfig = {
      clusterId: 'c', epoch: 4, voters: [{ peerId: a.id, addrs: [], store: 'sA' }, { peerId: d.id, addrs: [], store: 'sD1' }], learners: [], removed: [], previousVoters: [],
    };
    const next = withSeatReplaced(base, d.id, 'sD2', ['/ip4/10.0.0.2/tcp/4001'], signSeatClaim(d.auth, d.id, 'sD1', 'sD2', 4));
    const ballot = { round: 3, proposer: a.id };
    const proven = { ...next, proof: { ballot, signatures: [{ peerId: a.id, signature: a.auth.sign(acceptPayload(next, ballot)) }] } };
    expect(proofProblem(base, proven, a.auth)).toBeUndefined();
    const store = new MemoryStore();
    await store.setMeta(META_MEMBERSHIP, JSON.stringify(proven));
    const loaded = loadMembership(store);
    expect(loaded).toEqual(proven);
    expect(proofProblem(base, loaded, d.auth)).toBeUndefined();
  });

  it('a stored claim of a bad shape is a startup error, not a crash elsewhere', async () => {
    const store = new MemoryStore();
    const config = { clusterId: 'c', epoch: 2, voters: [{ peerId: 'p', addrs: [], store: 's', claim: { from: 's1', since: -1, signature: 'x' } }], learners: [], removed: [], previousVoters: [] };
    await store.setMeta(META_MEMBERSHIP, JSON.stringify(config));
    expect(() => loadMembership(store)).toThrow(/stored membership is invalid/);
  });
});

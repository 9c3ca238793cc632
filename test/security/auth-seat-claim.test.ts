// A member re-seats a device that came back with a new store only on the device's own signed claim on that store
// (src/node/membership.ts onJoinRequest; src/core/config-proof.ts seatClaimProblem): a claim signed by another key
// is refused, one signed against an older epoch than the member's is sent back to be signed again, and a good
// one gives the seat to the new store carrying the claim, so that any device can check the change's proof.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { describe, expect, it } from 'vitest';
import { type ConfigAuth, signSeatClaim } from '../../src/core/config-proof.js';
import type { MembershipConfig, SeatClaim } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { configAuth } from '../../src/node/config-auth.js';
import { SEAT_CLAIM_STALE } from '../../src/node/membership.js';
import { testMembership, testRuntime } from '../helpers/runtime.js';

interface Key {
  readonly id: string;
  readonly auth: ConfigAuth;
}

async function newKey(): Promise<Key> {
  const privateKey = await generateKeyPair('Ed25519');
  return { id: peerIdFromPrivateKey(privateKey).toString(), auth: configAuth(privateKey) };
}

type Reply = Extract<Message, { type: 'joinReply' }>;

/** Member A of a two-voter cluster {A, D} at epoch 8; D asks with store sD2 and `claim`. */
async function ask(a: Key, d: Key, claim: SeatClaim | undefined): Promise<{ replies: Reply[]; config: MembershipConfig }> {
  const epoch8: MembershipConfig = {
    clusterId: 'c',
    epoch: 8,
    voters: [
      { peerId: a.id, addrs: [], store: 'store-A' },
      { peerId: d.id, addrs: [], store: 'sD1' },
    ],
    learners: [],
    removed: [],
    previousVoters: [],
  };
  const { runtime } = await testRuntime(a.id, { config: epoch8, storeId: 'store-A', auth: a.auth });
  runtime.attachTransport({ send: () => true, isConnected: () => true });
  const replies: Reply[] = [];
  const membership = testMembership(runtime, {
    storeId: 'store-A',
    auth: a.auth,
    changeAttemptsMax: 1,
    send: (to, msg) => {
      if (to === d.id && msg.type === 'joinReply') replies.push(msg);
      return true;
    },
  });
  membership.handle(d.id, { type: 'joinRequest', opId: 3, epoch: 0, addrs: [], store: 'sD2', ...(claim === undefined ? {} : { claim }) });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const config = runtime.config;
  membership.stop();
  runtime.stop();
  return { replies, config };
}

describe('a device back with a new store in a two-voter cluster', () => {
  it('gets its seat on its own claim, signed against the member\'s epoch', async () => {
    const [a, d] = await Promise.all([newKey(), newKey()]);
    const { config } = await ask(a, d, signSeatClaim(d.auth, d.id, 'sD2', 8));
    expect(config.epoch).toBeGreaterThanOrEqual(9);
    expect(config.voters.find((m) => m.peerId === d.id)).toMatchObject({ store: 'sD2', claim: { since: 8 } });
  });

  it('is asked to sign again when its claim is older than the member\'s configuration', async () => {
    const [a, d] = await Promise.all([newKey(), newKey()]);
    const { replies, config } = await ask(a, d, signSeatClaim(d.auth, d.id, 'sD2', 0));
    expect(replies).toEqual([expect.objectContaining({ ok: false, error: SEAT_CLAIM_STALE, epoch: 8 })]);
    expect(config.epoch).toBe(8);
  });

  it('is refused on a claim another key signed (a removed voter naming a store for the device)', async () => {
    const [a, d, r] = await Promise.all([newKey(), newKey(), newKey()]);
    const { replies, config } = await ask(a, d, signSeatClaim(r.auth, d.id, 'sD2', 8));
    expect(replies).toEqual([expect.objectContaining({ ok: false, error: expect.stringMatching(/not signed by the device/) })]);
    expect(config.epoch).toBe(8);
  });
});

// A device of a version from before seat claims, back with a new store in a two-voter cluster: since 74bb54d its
// re-seat is an ordinary change (a majority of both voters, src/core/membership.ts goneAcceptor) and its own old
// store is gone, so it is never re-seated, and the other voter alone can change nothing else either (removing it
// needs both voters too) until the device runs this version. What the member tells it is misleading.
import { describe, expect, it } from 'vitest';
import type { MembershipConfig, SeatClaim } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import type { MessageTransport } from '../../src/node/runtime.js';
import { testMembership, testRuntime } from '../helpers/runtime.js';
import { type Key, newKey } from '../helpers/keys.js';

type Reply = Extract<Message, { type: 'joinReply' }>;

/** Member A of {A, D} at epoch 8; D (new store sD2, not seated: it refuses every prepare) asks with `claim`. */
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
  const transport: MessageTransport = {
    send: (to, m) => {
      if (to === d.id && m.type === 'configPrepare') {
        const refusal: Message = { type: 'configPromise', opId: m.opId, epoch: m.epoch, ballot: m.ballot, ok: false, accepted: undefined, promised: undefined, config: undefined };
        queueMicrotask(() => runtime.receive(d.id, refusal));
      }
      return true;
    },
    isConnected: () => true,
  } as MessageTransport;
  runtime.attachTransport(transport);
  const replies: Reply[] = [];
  const membership = testMembership(runtime, {
    storeId: 'store-A',
    auth: a.auth,
    changeAttemptsMax: 2,
    send: (to, msg) => {
      if (to === d.id && msg.type === 'joinReply') replies.push(msg);
      return true;
    },
  });
  membership.handle(d.id, { type: 'joinRequest', opId: 3, epoch: 0, addrs: [], store: 'sD2', ...(claim === undefined ? {} : { claim }) });
  for (let i = 0; i < 100 && replies.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  const config = runtime.config;
  membership.stop();
  runtime.stop();
  return { replies, config };
}

describe('an old-version device (no claim) back with a new store in a two-voter cluster', () => {
  it('is never re-seated: the change needs its own gone store (by design since 74bb54d)', async () => {
    const [a, d] = await Promise.all([newKey(), newKey()]);
    const { replies, config } = await ask(a, d, undefined);
    expect(replies).toEqual([expect.objectContaining({ ok: false })]);
    expect(config.epoch).toBe(8);
  });

  // Found by review: the member used to answer "another membership change won epoch 9; retry from epoch 8" (the
  // unseated store's refusal counted as a conflict) and the device retried for ever. A member asks a device back
  // with a new store for its claim before proposing anything; the answer says to upgrade a device that cannot.
  it('is told to upgrade, not that another change won', async () => {
    const [a, d] = await Promise.all([newKey(), newKey()]);
    const { replies } = await ask(a, d, undefined);
    expect(replies[0]?.error).toMatch(/upgrade|claim/i);
  });
});

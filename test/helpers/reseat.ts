// A device back with a new store asking a member to join, in a two-voter cluster {A, D} at epoch 8 (D's seat on
// store sD1): the member's runtime and membership service (real auth), D's join request naming sD2 with `claim`,
// and what came of it. D is not seated on sD2, so it refuses every prepare (as the daemon's core does).
import type { MembershipConfig, SeatClaim } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import type { MessageTransport } from '../../src/node/runtime.js';
import type { Key } from './keys.js';
import { testMembership, testRuntime } from './runtime.js';

export type JoinReply = Extract<Message, { type: 'joinReply' }>;

/**
 * A (member) handles D's join request on store sD2 with `claim`; resolves with A's replies to D and A's
 * configuration once A answered, or after `waitMs` (a re-seat's joint phase waits for D's sync, so it may not answer).
 */
export async function askToReseat(a: Key, d: Key, claim: SeatClaim | undefined, waitMs: number): Promise<{ replies: JoinReply[]; config: MembershipConfig }> {
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
  };
  runtime.attachTransport(transport);
  const replies: JoinReply[] = [];
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
  for (let waited = 0; waited < waitMs && replies.length === 0; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  const config = runtime.config;
  membership.stop();
  runtime.stop();
  return { replies, config };
}

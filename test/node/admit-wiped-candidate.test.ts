// A new device admitted with one store, wiped before it learned of its admission, asks again with its new store
// through a member that has not seen the admission yet. That member's admit() loses its epoch to the chosen
// admission (Paxos phase 1 recovers it), re-derives from the winner, finds the device "already a member" and
// answers the join OK — with a configuration whose seat names the device's OLD store. The device adopts it, is
// unseated there, and its join loop (src/node/join.ts runJoinLoop) returns after any successful join: it never
// asks again, so nobody gives the seat to its store. Unseated for good (found by the simulator, seed 75 without
// the silentPushTarget workaround: "n5 (epoch 5, store n5.s2, not seated)").
//
// Scenario (voters A, B at epoch 3; B is scripted):
//  1. D (store sD1) asked B to join; B's proposal "add D on sD1" (epoch 4) was accepted by B's acceptor.
//  2. D's storage dies; D (store sD2) asks A, still at epoch 3.
//  3. A proposes "add D on sD2"; B's promise carries the accepted "add D on sD1": A must propose that, commits
//     it, and its own change failed with membership_conflict.
//  4. A retries: finishes the joint phase (the push to D is ignored, D is unseated: it falls back to B), then
//     re-derives from epoch 5: D is a member -> nothing to do -> join reply OK, config with D on sD1.
//  The reply must not be an OK that leaves D unseated: either D's seat names sD2, or the join is refused (D asks
//  again and is re-seated).
import { describe, expect, it } from 'vitest';
import { type MembershipConfig, seatOf, withVoterAdded } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { testMembership, testRuntime } from '../helpers/runtime.js';

const epoch3: MembershipConfig = {
  clusterId: 'c',
  epoch: 3,
  voters: [
    { peerId: 'A', addrs: [], store: 'store-A' },
    { peerId: 'B', addrs: [], store: 'store-B' },
  ],
  learners: [],
  removed: [],
  previousVoters: [],
};

describe('a device wiped before it learned of its own admission', () => {
  it('is not told "joined" with a configuration whose seat names its lost store', async () => {
    const addedOnOldStore = withVoterAdded(epoch3, { peerId: 'D', addrs: [], store: 'sD1' });
    const { runtime } = await testRuntime('A', { config: epoch3, transferIdleMs: 300, requestTimeoutMs: 2_000 });
    const replies: Array<Extract<Message, { type: 'joinReply' }>> = [];
    const answerAsB = (msg: Message): Message | undefined => {
      switch (msg.type) {
        case 'configPrepare':
          return {
            type: 'configPromise', opId: msg.opId, epoch: msg.epoch, ballot: msg.ballot, ok: true,
            accepted: msg.epoch === 3 ? { ballot: { round: 1, proposer: 'B' }, config: addedOnOldStore } : undefined,
            promised: undefined, config: undefined,
          };
        case 'configAccept':
          return { type: 'configAccepted', opId: msg.opId, epoch: msg.epoch, ballot: msg.ballot, ok: true, promised: undefined, config: undefined };
        case 'transfer':
          return { type: 'transferAck', opId: msg.opId, epoch: msg.epoch, seq: msg.seq };
        default:
          return undefined;
      }
    };
    runtime.attachTransport({
      send: (to: string, msg: Message) => {
        if (to === 'B') {
          const reply = answerAsB(msg);
          if (reply !== undefined) setTimeout(() => runtime.receive('B', reply), 1);
        }
        // D runs on a new store: unseated, it ignores pushes; it only collects its join reply.
        return true;
      },
      isConnected: () => true,
    });
    const membership = testMembership(runtime, {
      send: (to, msg) => {
        if (to === 'D' && msg.type === 'joinReply') replies.push(msg);
        return true;
      },
      changeAttemptsMax: 5,
    });
    membership.handle('D', { type: 'joinRequest', opId: 7, epoch: 0, addrs: [], store: 'sD2' });
    for (let i = 0; i < 100 && replies.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    membership.stop();
    runtime.stop();
    expect(replies).toHaveLength(1);
    const reply = replies[0]!;
    if (reply.ok) {
      // An OK reply ends the device's join loop: the configuration it carries must seat the device's store.
      expect(seatOf(reply.config!, 'D')?.store).toBe('sD2');
    }
  });
});

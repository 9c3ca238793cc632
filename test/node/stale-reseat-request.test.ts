// A join request from a store the device has already lost again must not take the seat back. Found by the
// simulator (seed 901565, wipes of unsettled devices allowed: flags takeoverAfterRestart,finalizeConflict,
// hintClockStep,acceptedFinalize): n6 asked n2 on store s3; n2's re-seating waited behind other changes; n6 was
// wiped again, came back on s4 and got its seat through n4 (epoch 8, data pushed to s4). n2 then re-derived its
// queued change from epoch 8 — "D's seat names s4, the request says s3: re-seat" — and gave the seat back to s3,
// a store that no longer exists. The store s4, holding data, was unseated: an unseated store with data is taken
// for an old card put back (role stale-store) and never asks again. Unseated for good.
//
// The member knows which store the device runs now (its heartbeats and its latest join request name it): a
// request naming another store is stale and re-seats nothing.
import { describe, expect, it } from 'vitest';
import type { MembershipConfig } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { testMembership, testRuntime } from '../helpers/runtime.js';

const epoch8: MembershipConfig = {
  clusterId: 'c',
  epoch: 8,
  voters: [
    { peerId: 'A', addrs: [], store: 'store-A' },
    { peerId: 'B', addrs: [], store: 'store-B' },
    { peerId: 'D', addrs: [], store: 'sD4' },
  ],
  learners: [],
  removed: [],
  previousVoters: [],
};

describe('a join request from a store the device no longer runs', () => {
  it('does not give the seat back to that store', async () => {
    const { runtime } = await testRuntime('A', { config: epoch8 });
    const sent: Message[] = [];
    runtime.attachTransport({ send: (_to, msg) => (sent.push(msg), true), isConnected: () => true });
    const replies: Array<Extract<Message, { type: 'joinReply' }>> = [];
    const membership = testMembership(runtime, {
      send: (to, msg) => {
        if (to === 'D' && msg.type === 'joinReply') replies.push(msg);
        return true;
      },
      changeAttemptsMax: 2,
      // D's heartbeats say it runs sD4 (the store its seat names).
      storeOf: (peer) => (peer === 'D' ? 'sD4' : undefined),
    });
    membership.handle('D', { type: 'joinRequest', opId: 3, epoch: 0, addrs: [], store: 'sD3' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    membership.stop();
    runtime.stop();
    // No proposal to give D's seat to sD3.
    expect(sent.filter((m) => m.type === 'configPrepare')).toEqual([]);
    expect(runtime.config.epoch).toBe(8);
  });
});

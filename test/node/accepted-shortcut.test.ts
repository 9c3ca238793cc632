// A device finishing a joint phase whose acceptor already accepted a value for the next slot proposes at once,
// without a data sync, on the ground that Paxos phase 1 "recovers the accepted value". It proposed the
// FINALIZED configuration, though, and phase 1 recovers that value only if this device's own promise is among
// the first majority counted — its own promise waits for its fsync, while the others' may come first. If they
// report nothing (the accepted value was seen by this acceptor alone, so it was not chosen), the finalize is
// proposed and chosen with no data sync ever done: a voter being added becomes a full voter with an empty
// store, and writes that were on a majority of the old voters (2 of 3) are on 2 of 4 — one storage loss later a
// re-seat's gather can miss them.
//
// Scenario (joint epoch 4 adding D to A, B, C; this is B):
//  1. B's acceptor accepted "abandon D's addition" (epoch 5) from a proposer that then died; nobody else did.
//  2. B restarts in the joint phase and takes it over: acceptedNextSlot -> propose without syncing first.
//  3. A, C and D promise (nothing accepted) before B's own promise is durable: 3 of 4, a majority.
//  The value B then sends in phase 2 must be one that was proposed under the rules (the accepted value, which
//  needed no sync), not a finalize no sync preceded.
import { describe, expect, it } from 'vitest';
import { type MembershipConfig, finalized, withJointAborted } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { MembershipService } from '../../src/node/membership.js';
import { META_ACCEPTOR } from '../../src/node/runtime.js';
import { MemoryStore } from '../../src/storage/memory.js';
import { silentLog, testRuntime } from '../helpers/runtime.js';

/** A store whose acceptor writes are slow to become durable (a slow fsync). */
class SlowAcceptorStore extends MemoryStore {
  override setMeta(name: string, value: string): Promise<void> {
    const done = super.setMeta(name, value);
    if (name !== META_ACCEPTOR) return done;
    return done.then(() => new Promise((resolve) => setTimeout(resolve, 100)));
  }
}

const joint: MembershipConfig = {
  clusterId: 'c',
  epoch: 4,
  voters: [
    { peerId: 'A', addrs: [], store: 'store-A' },
    { peerId: 'B', addrs: [], store: 'store-B' },
    { peerId: 'C', addrs: [], store: 'store-C' },
    { peerId: 'D', addrs: [], store: 'store-D' },
  ],
  learners: [],
  removed: [],
  previousVoters: ['A', 'B', 'C'],
};

describe('finishing a joint phase whose next slot this acceptor alone accepted', () => {
  it('proposes the accepted value, never a finalize that no data sync preceded', async () => {
    const aborted = withJointAborted(joint, 'D');
    const acceptor = { slot: 5, promised: { round: 7, proposer: 'A' }, accepted: { ballot: { round: 7, proposer: 'A' }, config: aborted } };
    const { runtime } = await testRuntime('B', { config: joint, acceptor, store: new SlowAcceptorStore(), storeId: 'store-B' });
    const accepts: MembershipConfig[] = [];
    runtime.attachTransport({
      send: (to: string, msg: Message) => {
        if (msg.type === 'configPrepare') {
          const reply: Message = { type: 'configPromise', opId: msg.opId, epoch: msg.epoch, ballot: msg.ballot, ok: true, accepted: undefined, promised: undefined, config: undefined };
          setTimeout(() => runtime.receive(to, reply), 1);
        } else if (msg.type === 'configAccept') {
          accepts.push(msg.config);
        }
        return true;
      },
      isConnected: () => true,
    });
    const membership = new MembershipService({
      runtime,
      storeId: 'store-B',
      send: () => true,
      log: silentLog,
      autoAdmit: true,
      maxVoters: 5,
      jointTakeoverMs: 40,
      changeAttemptsMax: 3,
      addrsOf: () => [],
      isAlive: () => false,
      opIdBase: 1_000,
    });
    for (let i = 0; i < 40 && accepts.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    membership.stop();
    runtime.stop();
    expect(accepts.length).toBeGreaterThan(0);
    expect(accepts[0]).not.toEqual(finalized(joint));
    expect(accepts[0]).toEqual(aborted);
  });
});

// A write with `wait=LEVEL` that does not reach LEVEL in time is still answered 202 "accepted at w" when its
// acknowledgements reach w. Those acknowledgements must be the ones w counts: voter acks (and, while joint, the
// previous voters' majority). A learner's ack (or any replica outside the quorum set) says nothing about a
// quorum read, which never asks learners.
//
// Scenario (3 voters A, B, C and a learner L; B and C cut off from A, L still connected):
//  1. a client PUTs k at A with w=quorum&wait=all&timeoutMs=200;
//  2. A stores it, L stores it and acks; B and C never answer;
//  3. at the deadline the write fails at wait=all with 2 acks (A and L) — and the runtime answered "accepted at
//     w=quorum" (202) because 2 >= majority(3): only one voter (A) holds the write;
//  4. a quorum read served by B and C (2 of 3 voters, no learner) does not see it. If A's store dies, the
//     write acknowledged at quorum is gone from every voter.
import { describe, expect, it } from 'vitest';
import type { MembershipConfig } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { testRuntime } from '../helpers/runtime.js';

function cluster(): MembershipConfig {
  return {
    clusterId: 'c',
    epoch: 3,
    voters: [
      { peerId: 'A', addrs: [], store: 'store-A' },
      { peerId: 'B', addrs: [], store: 'store-B' },
      { peerId: 'C', addrs: [], store: 'store-C' },
    ],
    learners: [{ peerId: 'L', addrs: [], store: 'store-L' }],
    removed: [],
    previousVoters: [],
  };
}

describe('a write with wait=LEVEL answered "accepted at w" (202)', () => {
  it('counts only voter acknowledgements toward w (a learner ack is not a quorum ack)', async () => {
    const { runtime } = await testRuntime('A', { config: cluster() });
    runtime.attachTransport({
      send: (to: string, msg: Message) => {
        // L is connected and acks at once; B and C are partitioned away (messages vanish, no error).
        if (to === 'L' && msg.type === 'write') queueMicrotask(() => runtime.receive('L', { type: 'writeAck', opId: msg.opId, epoch: msg.epoch }));
        return true;
      },
      isConnected: () => true,
    });
    let outcome: unknown;
    try {
      outcome = await runtime.write('k', new TextEncoder().encode('v'), undefined, 'quorum', { level: 'all', timeoutMs: 200 });
    } catch (error) {
      outcome = error;
    }
    runtime.stop();
    // Held by one voter of three: not acknowledged at w=quorum. It must fail (quorum_unavailable), not be
    // reported accepted with acks >= required.
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as { code?: string }).code).toBe('quorum_unavailable');
  });

  it('still answers "accepted" when a majority of voters acknowledged (C silent)', async () => {
    const { runtime } = await testRuntime('A', { config: cluster() });
    runtime.attachTransport({
      send: (to: string, msg: Message) => {
        if ((to === 'L' || to === 'B') && msg.type === 'write') queueMicrotask(() => runtime.receive(to, { type: 'writeAck', opId: msg.opId, epoch: msg.epoch }));
        return true;
      },
      isConnected: () => true,
    });
    const outcome = await runtime.write('k', new TextEncoder().encode('v'), undefined, 'quorum', { level: 'all', timeoutMs: 200 });
    runtime.stop();
    expect(outcome).toMatchObject({ complete: false, acks: 2, required: 3 });
  });

  it('waits for w when the wait level is impossible (a voter is down): answered "accepted", not failed at once', async () => {
    // C is down (its sends fail at once), so wait=all can never be met; B acks a little later. The write is
    // on A and B, a majority: the client asked w=quorum and must get "accepted at w", not 503.
    const { runtime } = await testRuntime('A', { config: cluster() });
    runtime.attachTransport({
      send: (to: string, msg: Message) => {
        if (to === 'C') return false;
        if (to === 'B' && msg.type === 'write') setTimeout(() => runtime.receive('B', { type: 'writeAck', opId: msg.opId, epoch: msg.epoch }), 20);
        return true;
      },
      isConnected: () => true,
    });
    const outcome = await runtime.write('k', new TextEncoder().encode('v'), undefined, 'quorum', { level: 'all', timeoutMs: 1_000 });
    runtime.stop();
    expect(outcome).toMatchObject({ complete: false, acks: 2 });
  });
});
